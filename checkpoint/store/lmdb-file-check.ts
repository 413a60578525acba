/**
 * A check of an LMDB data file (`data.mdb`) BEFORE lmdb maps it. LMDB trusts its file: a file cut
 * short, a damaged meta page or a damaged B-tree page makes it read through the map past the end
 * of the file or of a page, and the process dies of SIGBUS/SIGSEGV instead of getting an error.
 * This reads the file with plain reads and says what is wrong, so that the store can refuse it.
 * docs/checkpoint.md ("A damaged LMDB file") has what is covered, what is not, and the cost.
 *
 * Layout (lmdb-js 3.x's LMDB, mdb.c, data version 2; little-endian, 64-bit page numbers):
 * - every page starts with a 24-byte header: u64 page number, u64 txnid, u16 pad, u16 flags,
 *   u16 lower, u16 upper (lower and upper count from the end of the header; lower = 2 × keys,
 *   the node offsets that follow the header count from there too);
 * - pages 0 and 1 are the meta pages. After the header: u32 magic 0xBEEFC0DE, u32 version,
 *   u64 fixed-map address, u64 map size, the free-page and main databases' records (48 bytes
 *   each: u32 pad — the page size, in the free-page record —, u16 flags, u16 depth, u64 branch,
 *   leaf and overflow page counts, u64 entries, u64 root), u64 last used page, u64 txnid;
 * - the page size is the one in meta page 0 (lmdb-js creates files with the OS page size);
 * - LMDB opens the meta page with the larger txnid WITHOUT checking it (it checks only page 0's
 *   flag, magic and version) and reads through meta page (txnid mod 2);
 * - a node: u16 lo, u16 hi, u16 flags, u16 key size, key. In a branch, lo | hi << 16 | flags << 32
 *   is the child's page number; in a leaf, lo | hi << 16 is the data size and the data follows
 *   the key, or for F_BIGDATA the u64 number of the first of the overflow pages holding it, or
 *   for F_SUBDATA a database record (a named database, in the main database's leaves).
 *
 * The recorded last page number is not held against the file size: lmdb-js leaves files that end
 * before it (pages allocated at the end and freed in the same transaction are never written), so
 * only a page in use past the end is a cut file.
 *
 * A writer committing while this runs can reuse pages of the snapshot being walked (this reads
 * without LMDB's reader registration), and writes them before its meta page: a problem is
 * reported only when the meta pages and the file size stayed the same from before the walk until
 * QUIET_BEFORE_REPORT_MS after it; otherwise the walk is repeated, and a store that is written
 * all the while is left to LMDB (its writer evidently has it open). A walk that found nothing
 * costs no wait. (Without the wait, `checkpoint inspect` of a live store could report damage:
 * a CI run's kv-kill-restore test read the store while `waterbear run` wrote it.)
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const PAGE_HEADER_BYTES = 24;
const META_MAGIC = 0xbeefc0de;
const META_DATA_VERSION = 2;
const NUM_META_PAGES = 2;
const MIN_PAGE_BYTES = 256;
const MAX_PAGE_BYTES = 65536;
/** LMDB's cursor stack: a deeper tree is refused by LMDB itself, and bounds the walk. */
const MAX_TREE_DEPTH = 32;
/** "No page" (an empty database's root), as `pageNumber` gives it. */
const P_INVALID = -1;
const P_BRANCH = 0x01;
const P_LEAF = 0x02;
const P_META = 0x08;
const P_LEAF2 = 0x20;
const F_BIGDATA = 0x01;
const F_SUBDATA = 0x02;
const F_DUPDATA = 0x04;
const NODE_HEADER_BYTES = 8;
const DB_RECORD_BYTES = 48;
/** Offsets inside a meta page (after the page header). */
const META = { magic: 0, version: 4, mapBytes: 16, freeDb: 24, mainDb: 72, lastPage: 120, txnid: 128, end: 136 } as const;
/** Offsets inside a database record. */
const DB = { pad: 0, entries: 32, root: 40 } as const;
/** How often the walk is repeated when a writer commits meanwhile. */
const MAX_WALKS = 5;
/** A problem is reported only if no commit happened this long after the walk (a live writer checkpoints far more often). */
const QUIET_BEFORE_REPORT_MS = 500;

interface Meta { index: number; magic: number; version: number; pageBytes: number; mapBytes: number; lastPage: number; txnid: bigint; freeDb: DbRecord; mainDb: DbRecord }
interface DbRecord { entries: number; root: number }

/**
 * The u64 at `at` as a number (exact below 2^53; a larger page number or count lies outside every
 * file anyway). Numbers, not bigints: a 1 GiB guest's store has 262,144 nodes to check.
 */
const u64 = (b: Buffer, at: number): number => b.readUInt32LE(at + 4) * 2 ** 32 + b.readUInt32LE(at);

/** The page number at `at`: P_INVALID for all ones, else `u64`. */
function pageNumber(b: Buffer, at: number): number {
  return b.readUInt32LE(at) === 0xffff_ffff && b.readUInt32LE(at + 4) === 0xffff_ffff ? P_INVALID : u64(b, at);
}

/** A database record (free, main, or a named database's) at `at` in `b`. */
function dbRecord(b: Buffer, at: number): DbRecord {
  return { entries: u64(b, at + DB.entries), root: pageNumber(b, at + DB.root) };
}

function parseMeta(page: Buffer, index: number): Meta {
  const m = PAGE_HEADER_BYTES;
  return {
    index, magic: page.readUInt32LE(m + META.magic), version: page.readUInt32LE(m + META.version) & 0xffff,
    pageBytes: page.readUInt32LE(m + META.freeDb + DB.pad), mapBytes: u64(page, m + META.mapBytes), lastPage: u64(page, m + META.lastPage),
    txnid: page.readBigUInt64LE(m + META.txnid), freeDb: dbRecord(page, m + META.freeDb), mainDb: dbRecord(page, m + META.mainDb),
  };
}

/** Why `page` is not a meta page LMDB accepts as page 0 (the only checks LMDB makes), or null. */
function metaHeaderProblem(m: Meta, page: Buffer): string | null {
  if ((page.readUInt16LE(18) & P_META) === 0) return 'is not marked as a meta page';
  if (m.magic !== META_MAGIC) return `has magic 0x${m.magic.toString(16)}, not LMDB's 0xbeefc0de`;
  if (m.version !== META_DATA_VERSION) return `has LMDB data version ${m.version}, not ${META_DATA_VERSION}`;
  return null;
}

/** Why meta page `m` is not a snapshot LMDB can start from, or null. */
function metaProblem(m: Meta, page: Buffer, pageBytes: number): string | null {
  const header = metaHeaderProblem(m, page);
  if (header !== null) return header;
  if (m.pageBytes !== pageBytes) return `gives the page size as ${m.pageBytes} bytes, page 0 ${pageBytes}`;
  // LMDB never uses a page past its map, and records the map size with the last page.
  if (m.lastPage < NUM_META_PAGES - 1 || m.lastPage >= Math.floor(m.mapBytes / pageBytes)) return `gives ${m.lastPage} as the last used page, with a map of ${m.mapBytes} bytes`;
  if (m.txnid % 2n !== BigInt(m.index)) return `holds txn ${m.txnid}, which LMDB would look for in meta page ${m.txnid % 2n}`;
  for (const [name, db] of [['free-page', m.freeDb], ['main', m.mainDb]] as const) {
    if (db.root !== P_INVALID && (db.root < NUM_META_PAGES || db.root > m.lastPage)) return `gives page ${db.root} as the root of the ${name} database, outside pages 2..${m.lastPage}`;
  }
  return null;
}

const validPageSize = (n: number): boolean => n >= MIN_PAGE_BYTES && n <= MAX_PAGE_BYTES && (n & (n - 1)) === 0;

/** A database's tree: its name, the entry count its record gives, the entries its leaves hold. */
interface Tree { name: string; entries: number; found: number; duplicates: boolean }

/** A page of a tree still to check: its number, depth, what points to it, and its tree. */
interface PendingPage { pgno: number; level: number; what: string; tree: Tree }

/** A readable name for a database's key (lmdb-js ends them with a NUL). */
const databaseName = (key: Buffer): string => `database "${key.toString('latin1').replace(/\0$/, '').replace(/[^\x20-\x7e]/g, '?')}"`;

/** A walk of the trees of one snapshot, over an open file. */
class TreeWalk {
  private readonly page: Buffer;
  private readonly filePages: number;
  /** Pages reached so far (one bit per page of the file). */
  private readonly seen: Uint8Array;

  constructor(private readonly fd: number, private readonly pageBytes: number, fileBytes: number, private readonly lastPage: number) {
    this.page = Buffer.alloc(pageBytes);
    this.filePages = fileBytes / pageBytes;
    this.seen = new Uint8Array(Math.ceil(this.filePages / 8));
  }

  /**
   * Why the pages `first`..`first + count - 1` cannot be read ("is page …", to follow what uses
   * them), or null; marks them reached.
   */
  private reach(first: number, count: number): string | null {
    const last = first + count - 1;
    if (first < NUM_META_PAGES || last > this.lastPage) return `is page ${first}${count > 1 ? `..${last}` : ''}, outside the pages in use (2..${this.lastPage})`;
    if (last >= this.filePages) return `is page ${last}, past the end of the file (${this.filePages} pages): the file was cut short`;
    for (let p = first; p <= last; p++) {
      if ((this.seen[p >> 3] & (1 << (p & 7))) !== 0) return `is page ${p}, which another part of the file uses too`;
      this.seen[p >> 3] |= 1 << (p & 7);
    }
    return null;
  }

  /**
   * Why the tree of database `name` (its record), or of a database named in it, is damaged, or
   * null. Each tree's leaves must hold as many entries as its record says: a page that reads well
   * but lists fewer nodes hides entries (LMDB would then find nothing where data is).
   */
  database(name: string, record: DbRecord): string | null {
    if (record.root === P_INVALID) return null;
    const trees: Tree[] = [{ name, entries: record.entries, found: 0, duplicates: false }];
    const stack: PendingPage[] = [{ pgno: record.root, level: 1, what: `the root of ${name}`, tree: trees[0] }];
    while (stack.length > 0) {
      const next = stack.pop()!;
      if (next.level > MAX_TREE_DEPTH) return `${next.tree.name} is deeper than ${MAX_TREE_DEPTH} levels at page ${next.pgno}`;
      const unreachable = this.reach(next.pgno, 1);
      if (unreachable !== null) return `${next.what} ${unreachable}`;
      const problem = this.treePage(next, stack, trees);
      if (problem !== null) return problem;
    }
    // With duplicates (none in the store), a record counts items inside sub-pages: not compared.
    const short = trees.find((t) => !t.duplicates && t.found !== t.entries);
    return short === undefined ? null : `${short.name} lists ${short.entries} entries but its pages hold ${short.found}`;
  }

  /** Check branch or leaf page `pgno`; push its children and the roots of the databases it names onto `stack` (and their trees onto `trees`). */
  private treePage({ pgno, level, tree }: PendingPage, stack: PendingPage[], trees: Tree[]): string | null {
    const p = this.page;
    if (readSync(this.fd, p, 0, this.pageBytes, pgno * this.pageBytes) !== this.pageBytes) return `page ${pgno} of ${tree.name} could not be read whole`;
    const bad = (what: string): string => `page ${pgno} of ${tree.name} ${what}`;
    if (pageNumber(p, 0) !== pgno) return bad(`is labelled page ${u64(p, 0)}`);
    const flags = p.readUInt16LE(18);
    const branch = (flags & P_BRANCH) !== 0;
    if (branch === ((flags & P_LEAF) !== 0)) return bad(`has page flags 0x${flags.toString(16)}, neither a branch nor a leaf`);
    const lower = p.readUInt16LE(20);
    const upper = p.readUInt16LE(22);
    const room = this.pageBytes - PAGE_HEADER_BYTES;
    if (lower % 2 !== 0 || lower > upper || upper > room) return bad(`has its free space at ${lower}..${upper}, outside its ${room} bytes`);
    const keys = lower / 2;
    if ((flags & P_LEAF2) !== 0) { // fixed-size keys, no nodes: only in sub-trees of duplicates
      tree.duplicates = true;
      return null;
    }
    if (branch && keys === 0) return bad('is a branch with no children');
    if (!branch) tree.found += keys;
    for (let i = 0; i < keys; i++) {
      const at = p.readUInt16LE(PAGE_HEADER_BYTES + 2 * i) + PAGE_HEADER_BYTES;
      if (at < PAGE_HEADER_BYTES + upper || at + NODE_HEADER_BYTES > this.pageBytes) return bad(`has node ${i} at offset ${at}, outside its node area`);
      const lo = p.readUInt16LE(at);
      const hi = p.readUInt16LE(at + 2);
      const nodeFlags = p.readUInt16LE(at + 4);
      const keyEnd = at + NODE_HEADER_BYTES + p.readUInt16LE(at + 6);
      if (branch) {
        if (keyEnd > this.pageBytes) return bad(`has node ${i} running past the page`);
        const child = lo + hi * 2 ** 16 + nodeFlags * 2 ** 32;
        stack.push({ pgno: child, level: level + 1, what: `child ${i} of page ${pgno} of ${tree.name}`, tree });
        continue;
      }
      const dataBytes = lo + hi * 65536;
      if (keyEnd + ((nodeFlags & F_BIGDATA) !== 0 ? 8 : dataBytes) > this.pageBytes) return bad(`has node ${i} running past the page`);
      if ((nodeFlags & F_DUPDATA) !== 0) tree.duplicates = true;
      if ((nodeFlags & F_BIGDATA) !== 0) {
        const pages = Math.floor((PAGE_HEADER_BYTES - 1 + dataBytes) / this.pageBytes) + 1;
        const unreachable = this.reach(pageNumber(p, keyEnd), pages);
        if (unreachable !== null) return `the value of node ${i} of page ${pgno} of ${tree.name} ${unreachable}`;
      } else if ((nodeFlags & F_SUBDATA) !== 0) {
        if (dataBytes !== DB_RECORD_BYTES) return bad(`has a database record of ${dataBytes} bytes in node ${i}`);
        const record = dbRecord(p, keyEnd);
        if (record.root === P_INVALID) continue;
        const sub: Tree = { name: databaseName(p.subarray(at + NODE_HEADER_BYTES, keyEnd)), entries: record.entries, found: 0, duplicates: (nodeFlags & F_DUPDATA) !== 0 };
        trees.push(sub);
        stack.push({ pgno: record.root, level: 1, what: `the root of ${sub.name}`, tree: sub });
      }
    }
    return null;
  }
}

/** Read up to `bytes` bytes at `offset`; fewer at the end of the file. */
function readAt(fd: number, bytes: number, offset: number): Buffer {
  const b = Buffer.alloc(bytes);
  return b.subarray(0, readSync(fd, b, 0, bytes, offset));
}

/** Bytes of a meta page that the check reads. */
const META_READ_BYTES = PAGE_HEADER_BYTES + META.end;

/** The file's size and the start of both meta pages: what a writer's commit changes. */
function metaSnapshot(fd: number): Buffer {
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(fstatSync(fd).size));
  const first = readAt(fd, META_READ_BYTES, 0);
  const pageBytes = first.length === META_READ_BYTES ? parseMeta(first, 0).pageBytes : 0;
  return Buffer.concat([size, first, validPageSize(pageBytes) ? readAt(fd, META_READ_BYTES, pageBytes) : Buffer.alloc(0)]);
}

/** One look at the file: what is wrong with it, or null. */
function inspectOnce(fd: number): string | null {
  const fileBytes = fstatSync(fd).size;
  const first = readAt(fd, META_READ_BYTES, 0);
  if (first.length < META_READ_BYTES) return `it has ${fileBytes} bytes, less than an LMDB meta page`;
  const m0 = parseMeta(first, 0);
  const p0 = metaHeaderProblem(m0, first);
  if (p0 !== null) return `meta page 0 ${p0}`;
  const pageBytes = m0.pageBytes;
  if (!validPageSize(pageBytes)) return `meta page 0 gives the page size as ${pageBytes} bytes`;
  if (fileBytes < NUM_META_PAGES * pageBytes) return `it has ${fileBytes} bytes, less than LMDB's two ${pageBytes}-byte meta pages`;
  if (fileBytes % pageBytes !== 0) return `it has ${fileBytes} bytes, not a whole number of ${pageBytes}-byte pages: the file was cut short`;
  const second = readAt(fd, META_READ_BYTES, pageBytes);
  // LMDB takes the meta page with the larger txnid (page 0 on a tie), whatever else it holds.
  const m1 = parseMeta(second, 1);
  const [m, page] = m0.txnid >= m1.txnid ? [m0, first] : [m1, second];
  const pm = metaProblem(m, page, pageBytes);
  if (pm !== null) return `meta page ${m.index}, the newer one (txn ${m.txnid}), ${pm}`;
  const walk = new TreeWalk(fd, pageBytes, fileBytes, m.lastPage);
  return walk.database('the free-page database', m.freeDb) ?? walk.database('the main database', m.mainDb);
}

/**
 * What is wrong with the LMDB data file `file` (see the module comment), or null when LMDB can
 * open it safely or it does not exist (a new store). Only reads; throws the fs error when the
 * file exists but cannot be read.
 */
export function lmdbFileProblem(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    for (let walk = 1; walk <= MAX_WALKS; walk++) {
      const before = metaSnapshot(fd);
      const problem = inspectOnce(fd);
      if (problem === null) return null;
      // A writer writes a transaction's pages (reusing freed ones this walk may have read) before
      // its meta page: a walk between the two sees damage that its commit then replaces. Report
      // only what stays while no commit happens for a while (a live writer commits within it).
      if (!metaSnapshot(fd).equals(before)) continue;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, QUIET_BEFORE_REPORT_MS);
      if (metaSnapshot(fd).equals(before)) return problem;
    }
    return null; // a writer commits all the while: the file is in use, LMDB's readers are safe
  } finally {
    closeSync(fd);
  }
}
