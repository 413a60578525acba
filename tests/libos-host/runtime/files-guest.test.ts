import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startGuest } from '../../helpers/lvm.js';

function hostDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'wb-files-'));
  mkdirSync(join(d, 'sub'));
  writeFileSync(join(d, 'sub', 'seed.txt'), 'from the host\n');
  return d;
}

for (const withListener of [false, true]) {
  test(`a C guest's file-system checks all pass in the library OS${withListener ? ' with a listener pre-opened before /data' : ''}`, async (t) => {
    const g = await startGuest('test/files', { dirs: [{ guestPath: '/data', hostPath: hostDir() }], listen: withListener ? 1 : 0 });
    const exit = await g.run();
    const out = g.stdout();
    t.deepEqual(exit, { kind: 'exit', code: 0 }, out + g.stderr());
    t.notRegex(out, /^FAIL/m);
    t.regex(out, /files: \d+ passed, 0 failed/);
  });
}

test('host files copied with --dir are readable, and guest writes stay inside the LVM', async (t) => {
  const dir = hostDir();
  const g = await startGuest('test/files', { dirs: [{ guestPath: '/data', hostPath: dir }] });
  await g.run();
  // The guest's writes went to the virtual file system, never to the host directory.
  const { readdirSync } = await import('node:fs');
  t.deepEqual(readdirSync(dir).sort(), ['sub']);
  t.deepEqual(readdirSync(join(dir, 'sub')), ['seed.txt']);
});
