import { cpSync, mkdtempSync, openSync, readSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { spawnTs, watch } from './helpers/child.js';

// Damage inside LMDB's own pages (not our page records, whose checksums catch it): a damaged
// B-tree page can hide the page database's entries from a walk, and the restore came back with
// zeros where the guest's memory was (found by an audit: `waterbear restore` then trapped, or a
// guest that did not trap would have resumed empty). Each early file page is damaged in turn, in
// its own copy, and loaded in a child process (LMDB itself may crash on some damage).
const FIRST_PAGE = 2; // 0 and 1 are LMDB's meta pages
const LAST_PAGE = 12;

async function child(mode: string, dir: string): Promise<{ line: string; code: number | null }> {
  const w = watch(spawnTs('tests/checkpoint/helpers/store-loader.ts', [mode, dir]));
  const code = await w.exited;
  return { line: w.stdout().trim().split('\n').at(-1) ?? '', code };
}

function damage(file: string, offset: number): void {
  const fd = openSync(file, 'r+');
  const b = Buffer.alloc(8);
  readSync(fd, b, 0, 8, offset);
  for (let i = 0; i < 8; i++) b[i] ^= 0xff;
  writeSync(fd, b, 0, 8, offset);
  closeSync(fd);
}

test('a store with a damaged LMDB page never restores a wrong image: it restores the right one or refuses', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wb-btree-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.is((await child('make', join(dir, 'orig'))).line, 'made');
  const outcomes: string[] = [];
  for (let page = FIRST_PAGE; page <= LAST_PAGE; page++) {
    const copy = join(dir, `p${page}`);
    cpSync(join(dir, 'orig'), copy, { recursive: true });
    damage(join(copy, 'data.mdb'), page * 4096 + 20);
    const r = await child('load', copy);
    outcomes.push(`page ${page}: ${r.code === 0 ? r.line : `crashed (exit ${r.code})`}`);
    t.not(r.line, 'DIFFERENT', `page ${page}: a wrong image was restored`);
  }
  t.log(outcomes.join('\n'));
  // The damage that hides the page database's entries is among these (page 5 here): the count check refuses it.
  t.true(outcomes.some((o) => /refused WB_CHECKPOINT_CORRUPT .*pages but \d+ could be read/.test(o)), outcomes.join('\n'));
});
