/**
 * Guests behave the same under an image with store instrumentation and yield points as under a
 * plain image: same output, same exit, same replies.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { RespClient } from '../../../chaos/clients/resp-client.js';
import { LineClient, startTrackedGuest, type TrackedGuestOptions } from '../../checkpoint/trackers/helpers.js';

const INSTRUMENTED: TrackedGuestOptions = { dirtyTracking: 'instrument', yieldPoints: true };

function hostDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'wb-files-'));
  mkdirSync(join(d, 'sub'));
  writeFileSync(join(d, 'sub', 'seed.txt'), 'from the host\n');
  return d;
}

const batch: Array<[string, TrackedGuestOptions]> = [
  ['test/hello', { args: ['one', 'two words'], env: ['GREETING=hi there', 'EXIT_CODE=7'] }],
  ['test/allocstress', { env: ['SEED=11'] }],
  ['test/compute', { env: ['ROUNDS=10'] }],
  ['test/trap', {}],
  ['test/memhog', { memoryLimitBytes: 8 * 1024 * 1024 }],
  ['test/files', { dirs: [{ guestPath: '/data', hostPath: '' }] }],
];

for (const [name, options] of batch) {
  test(`${name} runs the same with store instrumentation and yield points`, async (t) => {
    const withDirs = (o: TrackedGuestOptions): TrackedGuestOptions => (o.dirs ? { ...o, dirs: o.dirs.map((d) => ({ ...d, hostPath: hostDir() })) } : o);
    const plain = await startTrackedGuest(name, withDirs(options));
    const instrumented = await startTrackedGuest(name, withDirs({ ...options, ...INSTRUMENTED }));
    t.truthy(instrumented.image.stats.dirtyInstrumentation, 'image is instrumented');
    const a = await plain.run();
    const b = await instrumented.run();
    t.is(b.kind, a.kind);
    if (a.kind === 'exit' && b.kind === 'exit') t.is(b.code, a.code);
    if (a.kind === 'trap' && b.kind === 'trap') t.is(b.error.code, a.error.code);
    t.is(instrumented.stdout(), plain.stdout());
    t.true(plain.stdout().length > 0 || a.kind === 'trap');
  });
}

test('memstress replies the same with store instrumentation and yield points', async (t) => {
  const replies: string[][] = [];
  for (const o of [{}, INSTRUMENTED]) {
    const g = await startTrackedGuest('memstress', { ...o, listen: 1, env: ['MEMSTRESS_MB=8'] });
    const running = g.run();
    const c = await LineClient.connect(g.port());
    const r: string[] = [];
    for (let i = 0; i < 30; i++) r.push(await c.request(`TOUCH ${(i * 37) % 1500}`));
    r.push(await c.request('SIZE'));
    c.close();
    g.lvm.stop();
    await running;
    replies.push(r);
  }
  t.deepEqual(replies[1], replies[0]);
  t.false(replies[0].some((r) => r.startsWith('ERR')));
});

test('kv replies the same with store instrumentation and yield points', async (t) => {
  const replies: unknown[][] = [];
  for (const o of [{}, INSTRUMENTED]) {
    const g = await startTrackedGuest('kv', { ...o, listen: 1 });
    const running = g.run();
    const c = await RespClient.connect(g.port());
    const r: unknown[] = [];
    for (let i = 0; i < 50; i++) {
      r.push(await c.call('SET', `k${i % 7}`, 'v'.repeat((i * 997) % 20_000)));
      r.push(await c.call('APPEND', `k${i % 5}`, `-${i}`));
      r.push(await c.call('INCR', 'n'));
      r.push(await c.call('GET', `k${i % 3}`));
    }
    r.push(await c.call('DBSIZE'));
    c.close();
    g.lvm.stop();
    await running;
    replies.push(r);
  }
  t.deepEqual(replies[1], replies[0]);
});
