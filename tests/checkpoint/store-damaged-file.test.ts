import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { LMDB_META_OFFSETS, describeLoad, flipBytes, lmdbLayout, storeLoader } from './helpers/damaged-store.js';

// A store whose LMDB file was cut short or whose meta pages were damaged crashed the process
// (SIGBUS/SIGSEGV inside lmdb) or, opened for writing, was silently made a new empty store (found
// by an audit). Each damage is made in its own copy and loaded in a child process, for writing (a
// replica) and read-only (`waterbear restore`, `checkpoint inspect`): refused with
// WB_CHECKPOINT_CORRUPT naming the file, never a signal, and the file left as it was.

/** A temp dir holding `orig`, a 3-epoch synthetic store; its data file, size and LMDB layout. */
async function madeStore(t: ExecutionContext): Promise<{ dir: string; file: string; bytes: number; pageBytes: number; newerMeta: 0 | 1 }> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-damaged-file-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.is((await storeLoader('make', join(dir, 'orig'))).line, 'made');
  const file = join(dir, 'orig', 'data.mdb');
  return { dir, file, bytes: statSync(file).size, ...lmdbLayout(file) };
}

/**
 * Copy `orig` to a dir named `name`, damage it, load it both ways; return each outcome as the test
 * logs it. Asserts that both loads `expect` ('refused': WB_CHECKPOINT_CORRUPT naming the data file,
 * the file unchanged; 'same': the right image) and that no load crashed.
 */
async function loadDamaged(t: ExecutionContext, dir: string, name: string, damage: (file: string) => void, expect: 'refused' | 'same'): Promise<string[]> {
  const out: string[] = [];
  for (const access of ['rw', 'ro'] as const) {
    const copy = join(dir, `${name.replace(/\W+/g, '-')}-${access}`);
    cpSync(join(dir, 'orig'), copy, { recursive: true });
    const file = join(copy, 'data.mdb');
    damage(file);
    const before = readFileSync(file);
    const r = await storeLoader('load', copy, access);
    out.push(`${name} (${access}): ${describeLoad(r)}`);
    t.is(r.signal, null, `${name} (${access}): the process crashed`);
    if (expect === 'same') {
      t.is(r.line, 'same', `${name} (${access})`);
      continue;
    }
    t.true(r.line.startsWith(`refused WB_CHECKPOINT_CORRUPT the checkpoint store file ${file} is damaged`), `${name} (${access}): ${r.line}`);
    t.true(readFileSync(file).equals(before), `${name} (${access}): the refused file was changed`);
  }
  return out;
}

test('a store whose LMDB file was cut short is refused with WB_CHECKPOINT_CORRUPT, never a crash, and left as it is', async (t) => {
  const { dir, bytes, pageBytes } = await madeStore(t);
  const cuts: Record<string, number> = {
    'empty': 0,
    'half a page': pageBytes / 2,
    'one page': pageBytes,
    'the meta pages only': 2 * pageBytes,
    'half the pages': Math.floor(bytes / pageBytes / 2) * pageBytes,
    'the last page cut': bytes - pageBytes,
    'half the last page cut': bytes - pageBytes / 2,
  };
  const outcomes: string[] = [];
  for (const [name, size] of Object.entries(cuts)) outcomes.push(...await loadDamaged(t, dir, name, (file) => truncateSync(file, size), 'refused'));
  t.log(outcomes.join('\n'));
  // The intact store still restores, both ways.
  t.is((await storeLoader('load', join(dir, 'orig'), 'ro')).line, 'same');
  t.is((await storeLoader('load', join(dir, 'orig'))).line, 'same');
});

test('a store whose newer LMDB meta page is damaged is refused; damage to the older one, which LMDB does not read, is not', async (t) => {
  const { dir, pageBytes, newerMeta } = await madeStore(t);
  const at = (meta: number, field: keyof typeof LMDB_META_OFFSETS) => (file: string) => flipBytes(file, meta * pageBytes + LMDB_META_OFFSETS[field]);
  const older = 1 - newerMeta;
  const outcomes: string[] = [];
  const refused: Record<string, (file: string) => void> = {
    'page 0 magic': at(0, 'magic'), // LMDB reads its page size there
    'newer magic': at(newerMeta, 'magic'),
    'newer page size': at(newerMeta, 'pageSize'),
    'newer last page': at(newerMeta, 'lastPage'),
    'newer main root': at(newerMeta, 'mainRoot'),
    'newer txnid': at(newerMeta, 'txnid'),
    'older txnid made the larger': at(older, 'txnid'),
    'both meta pages inverted': (file) => { for (const m of [0, 1]) flipBytes(file, m * pageBytes, pageBytes); },
  };
  for (const [name, damage] of Object.entries(refused)) outcomes.push(...await loadDamaged(t, dir, name, damage, 'refused'));
  // LMDB checks only page 0's magic and version, and opens the meta page with the larger txnid.
  const harmless: Record<string, (file: string) => void> = {
    'older last page': at(older, 'lastPage'),
    'older main root': at(older, 'mainRoot'),
  };
  for (const [name, damage] of Object.entries(harmless)) outcomes.push(...await loadDamaged(t, dir, name, damage, 'same'));
  t.log(outcomes.join('\n'));
});
