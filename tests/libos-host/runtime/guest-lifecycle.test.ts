import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { freePort } from '../../../bench/support/servers.js';
import { WaterbearError } from '../../../libos-host/errors.js';
import { startGuest } from '../../helpers/lvm.js';

test('a guest sees its args and env, writes stdout and stderr, and its exit code is reported', async (t) => {
  const g = await startGuest('test/hello', { args: ['one', 'two words'], env: ['GREETING=hi there', 'EXIT_CODE=7'] });
  const exit = await g.run();
  t.deepEqual(exit, { kind: 'exit', code: 7 });
  t.regex(g.stdout(), /arg\[1\]=one/);
  t.regex(g.stdout(), /arg\[2\]=two words/);
  t.regex(g.stdout(), /hi there/);
  t.regex(g.stderr(), /to-stderr/);
});

test('a guest trap is reported with the trapping guest function and does not crash the host', async (t) => {
  const g = await startGuest('test/trap');
  const exit = await g.run();
  t.is(exit.kind, 'trap');
  if (exit.kind !== 'trap') return;
  t.is(exit.error.code, 'WB_GUEST_TRAP');
  t.regex(exit.error.message, /guest_crash_here/);
  t.regex(exit.error.message, /unreachable/);
});

test('a guest over its memory limit sees allocation fail, and the host is unharmed', async (t) => {
  const limit = 32 * 1024 * 1024;
  const g = await startGuest('test/memhog', { memoryLimitBytes: limit });
  const exit = await g.run();
  t.deepEqual(exit, { kind: 'exit', code: 0 });
  const m = /allocated (\d+) MiB/.exec(g.stdout());
  t.truthy(m, g.stdout());
  const mib = Number(m![1]);
  t.true(mib > 8 && mib < 32, `allocated ${mib} MiB under a 32 MiB limit`);
  t.true(g.lvm.memory.buffer.byteLength <= limit + g.image.layout.reservedPages * 65536);
});

test('heavy allocation never touches the reserved region', async (t) => {
  const g = await startGuest('test/allocstress', { env: ['SEED=7'] });
  const exit = await g.run();
  t.deepEqual(exit, { kind: 'exit', code: 0 }, g.stdout() + g.stderr());
  t.regex(g.stdout(), /^ok /m);
});

test('a CPU-bound guest runs to completion with deterministic output', async (t) => {
  const a = await startGuest('test/compute', { env: ['ROUNDS=20'] });
  const b = await startGuest('test/compute', { env: ['ROUNDS=20'] });
  t.deepEqual(await a.run(), { kind: 'exit', code: 0 });
  t.deepEqual(await b.run(), { kind: 'exit', code: 0 });
  t.regex(a.stdout(), /done /);
  t.is(a.stdout(), b.stdout());
});

test('a launch that fails after binding its listeners leaves none bound', async (t) => {
  const port = await freePort();
  const file = join(mkdtempSync(join(tmpdir(), 'wb-launch-')), 'not-a-dir');
  writeFileSync(file, 'x');
  await t.throwsAsync(startGuest('kv', { listeners: [{ uri: `tcp.srv:127.0.0.1:${port}`, name: null }], dirs: [{ guestPath: '/d', hostPath: file }] }),
    { instanceOf: WaterbearError, message: /not-a-dir is a file, not a directory/ });
  // The address is free again: nothing of the failed launch holds it.
  const server = createServer();
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', resolve); });
  await new Promise((resolve) => server.close(resolve));
  t.pass();
});
