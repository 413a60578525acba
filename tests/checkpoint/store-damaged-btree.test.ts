import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { describeLoad, flipBytes, hideLeafKeys, isLeafWithKeys, lmdbLayout, storeLoader, type LoadOutcome } from './helpers/damaged-store.js';

// Damage inside LMDB's own pages (not our page records, whose checksums catch it): a damaged
// B-tree page can hide the page database's entries from a walk, and the restore came back with
// zeros where the guest's memory was (found by an audit: `waterbear restore` then trapped, or a
// guest that did not trap would have resumed empty). Each early file page is damaged in turn, in
// its own copy, and loaded in a child process:
// - bytes inverted in its header: LMDB crashed with SIGSEGV on page 8, the main database's root,
//   until the store checked the B-tree pages before opening the file;
// - for a leaf, its key count cut to one (a page LMDB reads well, that hides entries), before the
//   store is opened (the check before opening counts the entries) and after (the restore counts
//   the pages and VFS records it read).
const FIRST_PAGE = 2; // 0 and 1 are LMDB's meta pages
const LAST_PAGE = 12;

test('a store with a damaged LMDB page never restores a wrong image: it restores the right one or refuses', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wb-btree-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const orig = join(dir, 'orig');
  t.is((await storeLoader('make', orig)).line, 'made');
  const { pageBytes } = lmdbLayout(join(orig, 'data.mdb'));
  const damages: Record<string, (copy: string, page: number) => Promise<LoadOutcome> | null> = {
    'flipped': (copy, page) => { flipBytes(join(copy, 'data.mdb'), page * pageBytes + 20); return storeLoader('load', copy); },
    'keys hidden': (copy, page) => (hideLeafKeys(join(copy, 'data.mdb'), page, pageBytes) ? storeLoader('load', copy) : null),
    'keys hidden once open': (copy, page) => (isLeafWithKeys(join(copy, 'data.mdb'), page, pageBytes) ? storeLoader('load', copy, 'rw', `hide-after-open=${page}`) : null),
  };
  const outcomes: string[] = [];
  for (let page = FIRST_PAGE; page <= LAST_PAGE; page++) {
    for (const [name, damage] of Object.entries(damages)) {
      const copy = join(dir, `p${page}-${name.replace(/\W+/g, '-')}`);
      cpSync(orig, copy, { recursive: true });
      const loaded = damage(copy, page);
      if (loaded === null) continue;
      const r = await loaded;
      outcomes.push(`page ${page} ${name}: ${describeLoad(r)}`);
      t.not(r.line, 'DIFFERENT', `page ${page} ${name}: a wrong image was restored`);
      t.is(r.signal, null, `page ${page} ${name}: the process crashed`);
    }
  }
  t.log(outcomes.join('\n'));
  const seen = (re: RegExp): void => { t.true(outcomes.some((o) => re.test(o)), `${re}\n${outcomes.join('\n')}`); };
  // The damage LMDB crashed on is refused before LMDB opens the file.
  seen(/flipped: refused WB_CHECKPOINT_CORRUPT .*data\.mdb is damaged \(page \d+ of the main database/);
  // The damage that hides the page database's entries (page 5 here) or the VFS deltas (page 6):
  // refused before opening by the entry count of every tree, and after opening by the restore's
  // count of what it read against the database's own count.
  seen(/keys hidden: refused WB_CHECKPOINT_CORRUPT .*data\.mdb is damaged \(database "pages" lists \d+ entries but its pages hold 1\)/);
  seen(/keys hidden once open: refused WB_CHECKPOINT_CORRUPT .*the page database lists \d+ pages but 1 could be read/);
  seen(/keys hidden once open: refused WB_CHECKPOINT_CORRUPT .*the VFS database lists \d+ records but 1 could be read/);
});
