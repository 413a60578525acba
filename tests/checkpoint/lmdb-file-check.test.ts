import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { open } from 'lmdb';
import { lmdbFileProblem } from '../../checkpoint/store/lmdb-file-check.js';
import { killHard, spawnTs, watch } from './helpers/child.js';
import { lmdbLayout } from './helpers/damaged-store.js';

/** How long the check runs beside a busy writer (ms). */
const BUSY_CHECK_MS = 3000;

test('an LMDB file that ends before its last page number, as lmdb-js leaves it, is not taken for a cut one', (t) => {
  // A transaction that fills pages at the end of the file and frees them again commits a last
  // page number past the pages it wrote ("the file may be shorter if the freeDB lists the final
  // pages", mdb.c). Refusing such a file would refuse a healthy store.
  const dir = mkdtempSync(join(tmpdir(), 'wb-lmdb-short-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'data.mdb');
  const env = open({ path: dir, overlappingSync: false, compression: false, maxDbs: 8 });
  const db = env.openDB<Buffer, number>('x', { keyEncoding: 'uint32', encoding: 'binary' });
  let short = false;
  let kept = 0; // one key of each transaction
  for (let i = 0; i < 50 && !short; i++, kept++) {
    env.transactionSync(() => {
      for (let k = 0; k < 400; k++) db.putSync(i * 10_000 + k, Buffer.alloc(100));
      for (let k = 1; k < 400; k++) db.removeSync(i * 10_000 + k);
    });
    const { pageBytes, lastPage } = lmdbLayout(file);
    short = statSync(file).size < (lastPage + 1) * pageBytes;
  }
  env.close();
  t.true(short, 'lmdb-js did not leave a file shorter than its last page number');
  t.is(lmdbFileProblem(file), null);
  const again = open({ path: dir, overlappingSync: false, compression: false, maxDbs: 8, readOnly: true });
  t.is([...again.openDB<Buffer, number>('x', { keyEncoding: 'uint32', encoding: 'binary' }).getKeys({})].length, kept);
  again.close();
});

test('a store that a writer commits to meanwhile is not taken for a damaged one', async (t) => {
  // The check reads the file without LMDB's reader registration, so the writer may reuse pages of
  // the snapshot being walked: a walk that saw the meta pages change is repeated, never reported.
  const dir = mkdtempSync(join(tmpdir(), 'wb-lmdb-busy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const writer = spawnTs('tests/checkpoint/helpers/store-writer.ts', [dir, 'staged']);
  t.teardown(() => killHard(writer));
  const w = watch(writer);
  await w.until(/committed 2\b/);
  const problems = new Set<string>();
  let checks = 0;
  for (const end = Date.now() + BUSY_CHECK_MS; Date.now() < end; checks++) {
    const problem = lmdbFileProblem(join(dir, 'data.mdb'));
    if (problem !== null) problems.add(problem);
    await new Promise((r) => setImmediate(r));
  }
  await killHard(writer);
  const committed = [...w.stdout().matchAll(/committed (\d+)/g)].length;
  t.log(`${checks} checks while ${committed} epochs were committed`);
  t.deepEqual([...problems], []);
  t.true(committed > 20, `only ${committed} epochs were committed meanwhile`);
  t.is(lmdbFileProblem(join(dir, 'data.mdb')), null);
});
