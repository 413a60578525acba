/**
 * The checkpoint store: the latest complete checkpoint of one LVM, durable in LMDB (npm `lmdb`).
 *
 * Atomicity and durability. Each epoch is applied in ONE synchronous write transaction
 * (`transactionSync`) on an environment opened with `overlappingSync: false`, so LMDB writes and
 * fdatasync()s the data pages, then the meta page, before the call returns. LMDB's copy-on-write
 * B-tree with two meta pages means a crash at any moment (kill -9 of the writer mid-transaction,
 * power loss) leaves either the previous epoch or the new one, never a mix: an epoch becomes
 * visible only when complete. A failed write (full disk, I/O error) aborts the transaction, so
 * nothing of the epoch is applied.
 *
 * Layout (STORE_FORMAT_VERSION 1). Named databases:
 * - "meta" (string keys, binary values): "format" → JSON {version}; "head" → the latest
 *   checkpoint WITHOUT its pages and VFS bytes, encoded by format/checkpoint-codec.ts (so it
 *   carries a format version and a CRC-32C); "pagesDb" → the name of the active page database
 *   (absent: "pages", as in every store written before staging existed); "staging" → the token of
 *   the open staging area (absent: none).
 * - "pages" and "pages-b" (uint32 key = page index): u32 CRC-32C | u32 epoch written (0: staged)
 *   | 4096 bytes. The ACTIVE one holds the latest version of every page of the chain: a page
 *   written again replaces the old one, a full checkpoint (new chain) replaces them all. Pages
 *   absent are zero. The other one is the STAGING area, empty unless one is open.
 * - "vfs" (uint32 key): 0 → a full VFS image, N → the VFS delta of epoch N, each u32 CRC-32C |
 *   bytes. When the deltas outgrow the base image they are folded into a new base (compaction),
 *   so the VFS part is bounded by about twice the VFS size.
 * - "epochs" (uint32 key = epoch): JSON summary of the last MAX_EPOCH_SUMMARIES epochs, for
 *   `waterbear checkpoint inspect`.
 * Storage is thus bounded by memory size (twice that while a staging area is open) + ~2 × VFS
 * size + a few KiB, whatever the run length.
 *
 * Staging (iterative pre-copy of a large full image). `beginStagingAsync(token)` empties the
 * staging database and opens a staging area named `token`; `stagePagesAsync(token, pages)` adds
 * pages to it, each call its own small transaction, so the event loop never waits for a whole
 * image; then a full checkpoint with `stagedFrom: token` completes it in ONE transaction: its pages
 * go into the staging database, which becomes the active one, and the previously active one is
 * emptied. Until then the active chain is untouched and restorable; a crash or a refused commit
 * leaves it so.
 *
 * Reads (`latestEpoch`, `loadImage`) verify every checksum and refuse what does not check out:
 * WB_CHECKPOINT_CORRUPT / _VERSION / _TRUNCATED. One writer process at a time; readers may run
 * in other processes concurrently.
 */
import { existsSync, mkdirSync, statSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { WaterbearError, isWaterbearError } from '../../libos-host/errors.js';
import { Vfs } from '../../libos-host/wasi/vfs.js';
import { decodeVfsDelta } from '../../libos-host/wasi/vfs-delta.js';
import { CHECKPOINT_PAGE_BYTES, sealPages, type CheckpointData, type CheckpointPage } from '../checkpoint-data.js';
import { crc32c, verifyPageChecksums } from '../format/crc32c.js';
import { decodeCheckpoint, encodeCheckpoint } from '../format/checkpoint-codec.js';
import type { MemoryContents } from '../../libos-host/runtime/lvm.js';
import { populateWhile } from '../memory-populate.js';
import { lmdbFileProblem } from './lmdb-file-check.js';
import type { RestoreImage } from '../restore-image.js';

/** Version of the on-disk layout; a store written by another version is refused. */
export const STORE_FORMAT_VERSION = 1;
/** How many epoch summaries `inspect` can show; older ones are dropped. */
export const MAX_EPOCH_SUMMARIES = 256;
/** VFS deltas are folded into the base image once they exceed max(base size, this). */
export const VFS_COMPACT_MIN_BYTES = 1024 * 1024;
/** At most this many VFS deltas are kept before they are folded into the base image. */
export const VFS_MAX_DELTAS = 64;
/** Longest staging-area token (characters). */
export const MAX_STAGING_TOKEN_CHARS = 256;
/** Per-page bytes in the store: CRC-32C, epoch, data. */
const PAGE_HEADER_BYTES = 8;
const STORED_PAGE_BYTES = PAGE_HEADER_BYTES + CHECKPOINT_PAGE_BYTES;
/** LMDB (lmdb-js's mdb.c): page header, leaf node header, and a leaf's u16 offset per node. */
const LMDB_PAGE_HEADER_BYTES = 24;
const LMDB_NODE_HEADER_BYTES = 8;
const LMDB_NODE_OFFSET_BYTES = 2;
/** A page record's key (uint32) and an overflow node's u64 first-page number. */
const PAGE_KEY_BYTES = 4;
const LMDB_OVERFLOW_POINTER_BYTES = 8;

/**
 * The bytes of an LMDB file of `lmdbPageBytes` pages that one page record takes (at most). A value
 * too big for half a leaf goes to overflow pages of its own, which it fills only in part: on 4 KiB
 * LMDB pages (lmdb-js uses the OS page size) a 4,104-byte record (a 4 KiB page and its header)
 * takes two, so the store on disk is about twice the guest memory it holds, and the byte limit
 * counts that, not the record's length. (Larger LMDB pages would pack pages tighter but rewrite a
 * whole leaf of them for every dirty page: session 27 in docs/checkpoint.md.)
 */
export function storedPageFootprint(lmdbPageBytes: number): number {
  const nodeMax = (((lmdbPageBytes - LMDB_PAGE_HEADER_BYTES) / 2) & ~1) - LMDB_NODE_OFFSET_BYTES;
  const inline = LMDB_NODE_HEADER_BYTES + PAGE_KEY_BYTES + STORED_PAGE_BYTES;
  if (inline <= nodeMax) {
    // Records in the leaves (LMDB pages of 16 KiB and more): a split leaves a leaf half full.
    const perLeaf = Math.floor((lmdbPageBytes - LMDB_PAGE_HEADER_BYTES) / (inline + LMDB_NODE_OFFSET_BYTES));
    return Math.ceil(lmdbPageBytes / Math.ceil(perLeaf / 2));
  }
  const overflowPages = Math.floor((LMDB_PAGE_HEADER_BYTES - 1 + STORED_PAGE_BYTES) / lmdbPageBytes) + 1;
  return overflowPages * lmdbPageBytes + LMDB_NODE_HEADER_BYTES + PAGE_KEY_BYTES + LMDB_OVERFLOW_POINTER_BYTES + LMDB_NODE_OFFSET_BYTES;
}
/** Page indices a wasm32 memory can have (4 GiB / 4 KiB). */
const MAX_PAGE_INDEX_EXCLUSIVE = 65536 * 65536 / CHECKPOINT_PAGE_BYTES;
/** The two page databases; meta "pagesDb" names the active one, absent meaning the first. */
const PAGE_DB_NAMES = ['pages', 'pages-b'] as const;
type PageDbName = typeof PAGE_DB_NAMES[number];
const otherPageDb = (name: PageDbName): PageDbName => (name === 'pages' ? 'pages-b' : 'pages');
const META_PAGES_DB = 'pagesDb';
const META_STAGING = 'staging';
/** The file lmdb keeps an environment in, inside the store directory. */
const LMDB_DATA_FILE = 'data.mdb';

/** One epoch as `inspect` shows it. */
export interface EpochSummary {
  epoch: number;
  full: boolean;
  /** Pages in the checkpoint. */
  pages: number;
  /** Pages the tracker reported (before the Asyncify pages). */
  trackerPages: number;
  /** A full checkpoint completing a staging area: the pages it took from there (`pages` counts only its own). */
  stagedPages?: number;
  /** Bytes of page data, VFS data and everything else in the checkpoint. */
  pageBytes: number;
  vfsBytes: number;
  memoryBytes: number;
  pauseUs: number;
  capturedAtMs: number;
  tracker: string;
}

export interface StoreStats {
  latestEpoch: number;
  /** Pages held (the latest version of each). */
  pages: number;
  /** Pages in the staging area (0 when none is open). */
  stagedPages: number;
  /**
   * Bytes the store's records take in its LMDB file: pages (staged ones too) as LMDB lays them
   * out (`storedPageFootprint`: about twice their size on 4 KiB LMDB pages), VFS images/deltas and
   * the head record. What `maxBytes` limits.
   */
  bytes: number;
  /** Size of the LMDB data file: `bytes`, plus free pages LMDB keeps for reuse and its bookkeeping. */
  fileBytes: number;
  vfsBytes: number;
  memoryBytes: number;
}

export interface CheckpointStoreOptions {
  /**
   * Most bytes the store may hold (`StoreStats.bytes`: pages as laid out on disk, VFS, head); a
   * commit that would exceed it is refused with WB_STORE_FULL before anything is written. The data
   * file can be larger by the free pages LMDB keeps for reuse (about what recent commits
   * rewrote). Default: no limit besides the disk.
   */
  maxBytes?: number;
  /** Open for reading only (inspect, tests): commit throws. */
  readOnly?: boolean;
  /** Fold VFS deltas into the base once they exceed max(base size, this). Default VFS_COMPACT_MIN_BYTES. */
  vfsCompactMinBytes?: number;
  /**
   * TEST AND CHAOS ONLY: asked at every write (commit, beginStaging, stagePages) whether to
   * simulate a slow or failing disk (see StoreFault). Never set from a config file; the replica
   * sets it only under WATERBEAR_CHAOS_CONTROL.
   */
  faultHook?: () => StoreFault | null;
}

/**
 * A simulated disk fault for one commit (test and chaos only). `delayMs` blocks the commit
 * synchronously, as a slow fdatasync would; `errno` makes the write transaction fail after the
 * epoch's records were written into it (so it is aborted, as a failing fdatasync or a full disk
 * would abort it): ENOSPC surfaces as WB_STORE_FULL, EIO as WB_STORE_IO.
 */
export interface StoreFault { delayMs?: number; errno?: 'ENOSPC' | 'EIO' }

/** Longest simulated commit delay (ms): a fault hook cannot block the process for longer. */
export const MAX_STORE_FAULT_DELAY_MS = 10_000;

function storeIo(what: string, cause?: unknown): WaterbearError {
  return new WaterbearError('WB_STORE_IO', `checkpoint store: ${what}`, cause === undefined ? undefined : { cause });
}

function storeCorrupt(what: string): WaterbearError {
  return new WaterbearError('WB_CHECKPOINT_CORRUPT', `the checkpoint store is corrupt (${what}); nothing was restored: restore from another replica or an older copy of the store`);
}

function storeFull(path: string, what: string, needed: number, limit: number, latest: number): WaterbearError {
  return new WaterbearError('WB_STORE_FULL',
    `the checkpoint store ${path} is full: ${what} needs ${needed} bytes, the limit is ${limit}; ` +
    `it was not applied (the store still holds epoch ${latest}): raise the store limit or give the guest less memory`,
    { details: { needed, limit, latest } });
}

/**
 * Refuse an LMDB data file that lmdb would crash on (SIGBUS/SIGSEGV) or misread: cut short, a
 * damaged meta page, a damaged B-tree page (see lmdb-file-check.ts). Before lmdb opens it.
 */
function checkDataFile(dir: string): void {
  const file = join(dir, LMDB_DATA_FILE);
  let problem: string | null;
  try {
    problem = lmdbFileProblem(file);
  } catch (err) {
    throw storeIo(`cannot read ${file}: ${(err as Error).message}`, err);
  }
  if (problem === null) return;
  throw new WaterbearError('WB_CHECKPOINT_CORRUPT',
    `the checkpoint store file ${file} is damaged (${problem}); it was not opened and is left as it is: ` +
    'put back a copy of the store directory, or, for a replica while another replica serves, ' +
    'move the directory aside and start the replica again (it receives a full image from the primary)',
    { details: { file, problem } });
}

/** Refuse a staging token that is not 1 to MAX_STAGING_TOKEN_CHARS characters. */
function checkStagingToken(token: unknown): asserts token is string {
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_STAGING_TOKEN_CHARS) {
    throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `a staging token must be a string of 1 to ${MAX_STAGING_TOKEN_CHARS} characters: got ${JSON.stringify(token)?.slice(0, 80)}`);
  }
}

/** A page sent for staging, checked: index, size and CRC-32C (the sender's, recomputed). */
/**
 * Entries in `db`, from LMDB's own count (mdb_stat; the open write transaction's view inside
 * one). Not `getCount()`, which walks every key: with 65,536 pages that took ~2 ms, twice per
 * checkpoint and per pre-copy slice, and made re-protecting a large guest quadratic.
 */
function entryCount(db: Database): number {
  return (db.getStats() as { entryCount: number }).entryCount;
}

function checkStagedPage(p: CheckpointPage, token: string): void {
  const bad = (what: string): WaterbearError => new WaterbearError('WB_CHECKPOINT_CORRUPT',
    `staged page ${p.index} for "${token}" ${what}; no page of this call was staged: send these pages again`, { details: { index: p.index } });
  if (!Number.isInteger(p.index) || p.index < 0 || p.index >= MAX_PAGE_INDEX_EXCLUSIVE) throw bad('has an index outside a wasm32 memory');
  if (p.data.length !== CHECKPOINT_PAGE_BYTES) throw bad(`has ${p.data.length} bytes`);
  if (p.crc32c === undefined) throw bad('carries no checksum');
  if (crc32c(p.data) !== p.crc32c >>> 0) throw bad('checksum does not match');
}

/**
 * One stored page record, reused: putSync copies the value into LMDB before it returns, and a
 * fresh 4,104-byte buffer per page (too big for Node's buffer pool) was ~18% of a backup's store
 * work. Only for synchronous puts; anything written later gets its own (withCrc).
 */
const pageRecordScratch = Buffer.allocUnsafe(STORED_PAGE_BYTES);

function pageRecord(data: Uint8Array, crc: number, epoch: number): Buffer {
  return writeRecord(pageRecordScratch, data, crc, epoch);
}

function withCrc(data: Uint8Array, crc: number, epoch?: number): Buffer {
  return writeRecord(Buffer.allocUnsafe(recordHeaderBytes(epoch) + data.length), data, crc, epoch);
}

/** A stored record's header: its CRC-32C, then for a page (not a VFS record) the epoch. */
const recordHeaderBytes = (epoch?: number): number => (epoch === undefined ? 4 : PAGE_HEADER_BYTES);

/** Write a stored record into `out`: header, then the data. */
function writeRecord(out: Buffer, data: Uint8Array, crc: number, epoch?: number): Buffer {
  out.writeUInt32LE(crc >>> 0, 0);
  if (epoch !== undefined) out.writeUInt32LE(epoch, 4);
  out.set(data, recordHeaderBytes(epoch));
  return out;
}

/** Record count and sizes (without checksums) of the VFS table: base (key 0) and deltas. */
interface VfsSizes { count: number; baseBytes: number; deltaBytes: number }

/** What a commit needs of a head record: its epoch, memory size and encoded size. */
interface HeadSummary { epoch: number; memoryBytes: number; bytes: number }

/** The pages of `cps` that a later checkpoint of the same batch writes again. */
function supersededPages(cps: readonly CheckpointData[]): Set<CheckpointPage> {
  const out = new Set<CheckpointPage>();
  if (cps.length < 2) return out;
  const latest = new Map<number, CheckpointPage>();
  for (let i = cps.length - 1; i >= 0; i--) {
    for (const p of cps[i].pages) {
      if (latest.has(p.index)) out.add(p);
      else latest.set(p.index, p);
    }
  }
  return out;
}

/** The latest complete checkpoint of one LVM, durable in LMDB. */
export class CheckpointStore {
  private readonly env: RootDatabase;
  private readonly meta: Database<Buffer, string>;
  /** "pages", then "pages-b": null when read-only and the store was written before staging existed. */
  private readonly pageDbs: Record<PageDbName, Database<Buffer, number> | null>;
  private readonly vfs: Database<Buffer, number>;
  private readonly epochs: Database<EpochSummary, number>;
  private readonly maxBytes: number;
  /** `storedPageFootprint` of this store's LMDB page size. */
  private readonly pageFootprint: number;
  private readonly readOnly: boolean;
  private readonly vfsCompactMinBytes: number;
  private readonly faultHook: (() => StoreFault | null) | null;
  private closed = false;
  private headCache: { raw: Buffer; summary: HeadSummary } | null = null;
  /** Sizes of the VFS records (see vfsSizes), and the state they were read in. */
  private vfsSizesCache: { headEpoch: number; sizes: VfsSizes } | null = null;

  private constructor(readonly path: string, options: CheckpointStoreOptions) {
    this.maxBytes = options.maxBytes ?? Infinity;
    this.readOnly = options.readOnly === true;
    this.vfsCompactMinBytes = options.vfsCompactMinBytes ?? VFS_COMPACT_MIN_BYTES;
    this.faultHook = options.faultHook ?? null;
    if (!(this.maxBytes > 0)) throw new WaterbearError('WB_CONFIG_INVALID', `checkpoint store maxBytes must be > 0: got ${this.maxBytes}`);
    checkDataFile(path);
    try {
      if (!this.readOnly) mkdirSync(path, { recursive: true });
      // eventTurnBatching off: every write here is an awaited child transaction, and with it on
      // lmdb-js opens each batch with a write whose promise nobody holds, so a failed commit (a
      // full disk) became an unhandled rejection that killed the backup (lmdb-js#368).
      this.env = open({ path, overlappingSync: false, compression: false, maxDbs: 8, readOnly: this.readOnly, eventTurnBatching: false });
      this.meta = this.env.openDB<Buffer, string>('meta', { encoding: 'binary' });
      // Read-only, lmdb returns undefined for a database the store does not have yet.
      const pageDb = (name: PageDbName): Database<Buffer, number> | null => this.env.openDB<Buffer, number>(name, { keyEncoding: 'uint32', encoding: 'binary' }) ?? null;
      this.pageDbs = { pages: pageDb('pages'), 'pages-b': pageDb('pages-b') };
      this.vfs = this.env.openDB<Buffer, number>('vfs', { keyEncoding: 'uint32', encoding: 'binary' });
      this.epochs = this.env.openDB<EpochSummary, number>('epochs', { keyEncoding: 'uint32', encoding: 'json' });
      this.pageFootprint = storedPageFootprint((this.env.getStats() as { pageSize: number }).pageSize);
    } catch (err) {
      throw storeIo(`cannot open ${path}: ${(err as Error).message}`, err);
    }
  }

  /** Whether directory `path` holds a store (its LMDB file), without opening or creating anything. */
  static exists(path: string): boolean {
    return existsSync(join(path, LMDB_DATA_FILE));
  }

  /**
   * Open (creating when missing, unless read-only) the store in directory `path`. Throws
   * WB_CHECKPOINT_CORRUPT for a damaged LMDB file (cut short, a damaged meta or B-tree page:
   * checked before lmdb maps it, which would crash the process), WB_CHECKPOINT_VERSION for a
   * store of another layout version, WB_STORE_IO when it cannot be opened.
   */
  static open(path: string, options: CheckpointStoreOptions = {}): CheckpointStore {
    const store = new CheckpointStore(path, options);
    try {
      store.checkFormat();
    } catch (err) {
      store.close();
      throw err;
    }
    return store;
  }

  private checkFormat(): void {
    const raw = this.meta.getBinary('format');
    if (raw === undefined) {
      if (this.readOnly) return;
      this.env.transactionSync(() => { this.meta.putSync('format', Buffer.from(JSON.stringify({ version: STORE_FORMAT_VERSION }))); });
      return;
    }
    let version: unknown;
    try {
      version = (JSON.parse(raw.toString()) as { version?: unknown }).version;
    } catch {
      throw storeCorrupt('its format record is not JSON');
    }
    if (version !== STORE_FORMAT_VERSION) {
      throw new WaterbearError('WB_CHECKPOINT_VERSION',
        `the checkpoint store ${this.path} has layout version ${JSON.stringify(version)}, this waterbear reads version ${STORE_FORMAT_VERSION}: use the waterbear version that wrote it`);
    }
  }

  /** The latest complete epoch, or 0 when the store holds none. Reads the head record only. */
  latestEpoch(): number {
    return this.headSummary()?.epoch ?? 0;
  }

  /**
   * Epoch and memory size of the head record, decoded (and verified) once per distinct record —
   * or not at all when this store wrote it: every commit reads them, and decoding the head each
   * time cost a backup ~0.2 ms per epoch.
   */
  private headSummary(): HeadSummary | null {
    const head = this.meta.getBinary('head');
    if (head === undefined) return null;
    const c = this.headCache;
    if (c !== null && c.raw.equals(head)) return c.summary;
    const cp = decodeCheckpoint(head);
    const summary = { epoch: cp.epoch, memoryBytes: cp.memoryBytes, bytes: head.length };
    this.headCache = { raw: Buffer.from(head), summary };
    return summary;
  }

  /** The head checkpoint (no pages, no VFS bytes), verified; null when empty. */
  head(): CheckpointData | null {
    const head = this.meta.getBinary('head');
    return head === undefined ? null : decodeCheckpoint(head);
  }

  /**
   * Apply checkpoint `cp` in one transaction: a full checkpoint replaces everything; an
   * incremental one must be epoch latestEpoch() + 1. Throws WB_CHECKPOINT_CORRUPT for a
   * checkpoint that does not follow, WB_STORE_FULL when the store's budget or the disk is full,
   * WB_STORE_IO for other write failures — in every case nothing of `cp` is applied.
   */
  commit(cp: CheckpointData): void {
    this.commitBatch([cp]);
  }

  /**
   * Apply consecutive checkpoints in ONE transaction, so a backup that fell behind pays one
   * fdatasync for all of them (group commit). The same checks as `commit` apply to each, in
   * order; if any is refused or the write fails, NONE of them is applied (the error names the
   * epoch that failed) and the caller may retry them one by one.
   */
  commitBatch(cps: readonly CheckpointData[]): void {
    if (this.readOnly) throw storeIo('opened read-only');
    if (cps.length === 0) return;
    const fault = this.faultHook?.() ?? null;
    const at = { epoch: cps[0].epoch, neededBytes: 0 };
    try {
      this.env.transactionSync(() => this.writeBatch(cps, fault, at));
    } catch (err) {
      throw this.writeError(`epoch ${at.epoch}`, at.neededBytes, err);
    }
  }

  /**
   * `commitBatch` without blocking the caller's thread on the disk: the batch is written in a
   * child transaction of lmdb's next write batch (a throw aborts exactly this batch) and the
   * commit and its fdatasync run on lmdb's writer thread. Resolves once the batch is durable;
   * rejects like `commitBatch`, and then nothing of the batch is applied. A backup uses it so
   * that receiving the next checkpoints overlaps with storing the previous ones.
   */
  async commitBatchAsync(cps: readonly CheckpointData[]): Promise<void> {
    if (this.readOnly) throw storeIo('opened read-only');
    if (cps.length === 0) return;
    const fault = this.faultHook?.() ?? null;
    const at = { epoch: cps[0].epoch, neededBytes: 0 };
    try {
      await this.env.childTransaction(() => { this.writeBatch(cps, fault, at); });
    } catch (err) {
      throw this.writeError(`epoch ${at.epoch}`, at.neededBytes, err);
    }
  }

  /**
   * Discard the staging area (if any) and open an empty one named `token` (1 to
   * MAX_STAGING_TOKEN_CHARS characters, chosen by the sender, e.g. view and epoch). The active
   * chain is untouched and still restorable. Runs like `commitBatchAsync` (a child transaction;
   * resolves once durable). Throws WB_STORE_FULL / WB_STORE_IO when the write fails, and then the
   * previous staging area, if any, is still open.
   */
  async beginStagingAsync(token: string): Promise<void> {
    if (this.readOnly) throw storeIo('opened read-only');
    checkStagingToken(token);
    const fault = this.faultHook?.() ?? null;
    try {
      await this.env.childTransaction(() => {
        this.pageDb(this.stagingName()).clearSync();
        this.meta.putSync(META_STAGING, Buffer.from(token, 'utf8'));
        if (fault !== null) simulateDiskFault(fault);
      });
    } catch (err) {
      throw this.writeError(`the staging area "${token}"`, 0, err);
    }
  }

  /**
   * Write `pages` into the open staging area `token` (a later write of an index replaces the
   * earlier one), in one transaction like `commitBatchAsync`. Every page must carry the sender's
   * CRC-32C, which is checked here. All or nothing: WB_CHECKPOINT_CORRUPT when a page is malformed
   * or its checksum does not match, or when `token` is not the open staging area (none open, or
   * replaced by a newer `beginStagingAsync`: the sender must send a full image again);
   * WB_STORE_FULL when the staged pages would take the store over `maxBytes` or the disk is
   * full; WB_STORE_IO for other write failures.
   */
  async stagePagesAsync(token: string, pages: readonly CheckpointPage[]): Promise<void> {
    if (this.readOnly) throw storeIo('opened read-only');
    checkStagingToken(token);
    for (const p of pages) checkStagedPage(p, token);
    if (pages.length === 0) { this.requireStaging(token); return; }
    // Built outside the transaction: lmdb's writer waits while the callback runs.
    const records = pages.map((p) => ({ index: p.index, value: withCrc(p.data, p.crc32c as number, 0) }));
    const fault = this.faultHook?.() ?? null;
    const at = { neededBytes: 0 };
    try {
      await this.env.childTransaction(() => {
        this.requireStaging(token);
        const staging = this.pageDb(this.stagingName());
        const before = this.stats();
        const added = new Set<number>();
        for (const r of records) if (!staging.doesExist(r.index)) added.add(r.index);
        at.neededBytes = added.size * this.pageFootprint;
        if (before.bytes + at.neededBytes > this.maxBytes) {
          throw storeFull(this.path, `staging ${added.size} more pages for "${token}"`, before.bytes + at.neededBytes, this.maxBytes, before.latestEpoch);
        }
        for (const r of records) staging.putSync(r.index, r.value);
        if (fault !== null) simulateDiskFault(fault);
      });
    } catch (err) {
      throw this.writeError(`the pages staged for "${token}"`, at.neededBytes, err);
    }
  }

  /** The token of the open staging area, or null when none is open. */
  stagingToken(): string | null {
    return this.meta.getBinary(META_STAGING)?.toString('utf8') ?? null;
  }

  /** Throw WB_CHECKPOINT_CORRUPT unless `token` names the open staging area. */
  private requireStaging(token: string): void {
    const open = this.stagingToken();
    if (open === token) return;
    throw new WaterbearError('WB_CHECKPOINT_CORRUPT',
      `the staging area "${token}" is not open (${open === null ? 'none is' : `"${open}" replaced it`}); nothing was staged: send a full image again`,
      { details: { token, open } });
  }

  /** The active page database's name (meta "pagesDb"; absent, as before staging existed: "pages"). */
  private activeName(): PageDbName {
    const raw = this.meta.getBinary(META_PAGES_DB);
    if (raw === undefined) return 'pages';
    const name = raw.toString('utf8');
    if (!(PAGE_DB_NAMES as readonly string[]).includes(name)) throw storeCorrupt(`its active page database is "${name}"`);
    return name as PageDbName;
  }

  /** The staging page database's name: the one that is not active. */
  private stagingName(): PageDbName {
    return otherPageDb(this.activeName());
  }

  /** A page database that must exist (the active one, or any in a writable store). */
  private pageDb(name: PageDbName): Database<Buffer, number> {
    const db = this.pageDbs[name];
    if (db === null) throw storeCorrupt(`its page database "${name}" is missing`);
    return db;
  }

  /** Pages in the staging database (0 when it does not exist yet). */
  private stagedCount(): number {
    const db = this.pageDbs[this.stagingName()];
    return db == null ? 0 : entryCount(db);
  }

  /**
   * Inside a write transaction: check and write each checkpoint in order (reads see the earlier
   * ones). The batch is one transaction, so only its last checkpoint's head record is written
   * (encoding a head with its fd table cost ~150 µs a checkpoint), and a page that a later
   * checkpoint of the batch writes again is written once, in its latest version: nothing reads
   * the store between the two, and a full or staged checkpoint in between clears it anyway.
   */
  private writeBatch(cps: readonly CheckpointData[], fault: StoreFault | null, at: { epoch: number; neededBytes: number }): void {
    const superseded = supersededPages(cps);
    let head: HeadSummary | null | undefined; // undefined: read the stored head
    for (let i = 0; i < cps.length; i++) {
      at.epoch = cps[i].epoch;
      const w = this.writeInTransaction(cps[i], head, i === cps.length - 1, superseded);
      at.neededBytes = w.neededBytes;
      head = w.head;
    }
    if (fault !== null) simulateDiskFault(fault);
  }

  /**
   * Check and write one checkpoint inside the caller's write transaction; returns the bytes it
   * adds and the head it leaves. `prev`: the head an earlier checkpoint of the batch left
   * (undefined: read the stored one). `last`: write the head record (only the batch's last does).
   * `superseded`: pages a later checkpoint of the batch writes again (not written here).
   */
  private writeInTransaction(cp: CheckpointData, prev: HeadSummary | null | undefined, last: boolean, superseded: ReadonlySet<CheckpointPage>): { neededBytes: number; head: HeadSummary } {
    sealPages(cp);
    const headBefore = prev !== undefined ? prev : this.headSummary();
    const latest = headBefore?.epoch ?? 0;
    if (cp.full ? cp.epoch <= latest : cp.epoch !== latest + 1) {
      throw new WaterbearError('WB_CHECKPOINT_CORRUPT',
        `checkpoint ${cp.epoch} (${cp.full ? 'full' : 'incremental'}) does not follow the stored epoch ${latest}; it was not applied: send a full checkpoint`,
        { details: { epoch: cp.epoch, latest } });
    }
    if (cp.full !== cp.libos.vfs.full) throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `checkpoint ${cp.epoch}: a full checkpoint needs a full VFS image, an incremental one a delta`);
    const short = cp.pages.find((p) => p.data.length !== CHECKPOINT_PAGE_BYTES);
    if (short !== undefined) throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `checkpoint ${cp.epoch}: page ${short.index} has ${short.data.length} bytes, not ${CHECKPOINT_PAGE_BYTES}; it was not applied`);
    const activeName = this.activeName();
    const active = this.pageDb(activeName);
    // Completing a staging area: the pages go there, and it becomes the active database.
    const staged = cp.stagedFrom !== undefined;
    const stagingName = otherPageDb(activeName);
    if (staged) {
      if (!cp.full) throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `checkpoint ${cp.epoch} is incremental but names the staging area "${cp.stagedFrom}"; it was not applied: send a full checkpoint`);
      const open = this.stagingToken();
      if (open !== cp.stagedFrom) {
        throw new WaterbearError('WB_CHECKPOINT_CORRUPT',
          `checkpoint ${cp.epoch} completes the staging area "${cp.stagedFrom}", but ${open === null ? 'none is open' : `the open one is "${open}"`}; it was not applied: send a full image`,
          { details: { epoch: cp.epoch, stagedFrom: cp.stagedFrom, open } });
      }
      const last = [...this.pageDb(stagingName).getKeys({ reverse: true, limit: 1 })][0] as number | undefined;
      if (last !== undefined && (last + 1) * CHECKPOINT_PAGE_BYTES > cp.memoryBytes) {
        throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `checkpoint ${cp.epoch}: staged page ${last} lies outside its ${cp.memoryBytes}-byte memory; it was not applied: send a full image`);
      }
    }
    const target = staged ? this.pageDb(stagingName) : active;
    // A head that a later checkpoint of the batch replaces is not encoded; its size is taken to be
    // the previous head's for the budget (the batch's last checks with the real one).
    const head = last ? Buffer.from(encodeCheckpoint({ ...cp, stagedFrom: undefined, pages: [], libos: { ...cp.libos, vfs: { full: cp.libos.vfs.full, bytes: new Uint8Array(0) } } })) : null;
    const headBytes = head?.length ?? headBefore?.bytes ?? 0;

    // The VFS: a new base on a full checkpoint, else a delta — or a compacted base when the deltas outgrow it.
    const sizes = this.vfsSizes(latest);
    let vfsWrite: { replace: boolean; key: number; bytes: Uint8Array };
    const deltaBytes = sizes.deltaBytes + cp.libos.vfs.bytes.length;
    if (cp.full) vfsWrite = { replace: true, key: 0, bytes: cp.libos.vfs.bytes };
    // Compact by size, and by count: restoring reads the whole chain, so thousands of tiny deltas
    // (a guest that barely touches its files) would make the chain grow without bound.
    else if (sizes.count > 0 && (sizes.count > VFS_MAX_DELTAS || deltaBytes > Math.max(sizes.baseBytes, this.vfsCompactMinBytes))) {
      vfsWrite = { replace: true, key: 0, bytes: compactVfs([...this.vfsEntries().map((e) => e.bytes), cp.libos.vfs.bytes], cp.libos.vfsMaxBytes) };
    } else vfsWrite = { replace: false, key: cp.epoch, bytes: cp.libos.vfs.bytes };

    // The budget, checked before writing anything. Staged pages count; after completing a
    // staging area they are the active pages and the old active ones are gone. Without a limit
    // (a replica's store) only a staging completion needs the counts: a lookup per page and
    // three database stats were ~7% of a backup's CPU under load.
    let stagedPagesAfter = 0;
    // At most this much is added (every page new); the exact figure where it was counted.
    let neededBytes = cp.pages.length * this.pageFootprint + vfsWrite.bytes.length + headBytes;
    if (this.maxBytes !== Infinity || staged) {
      const before = this.statsOf(headBefore, sizes);
      // Pages already in the target are overwritten; a superseded page is counted where it is written.
      let newPages = 0;
      let overwritten = 0;
      for (const p of cp.pages) {
        if (!(cp.full && !staged) && target.doesExist(p.index)) overwritten++;
        else if (!superseded.has(p)) newPages++;
      }
      const vfsAfter = vfsWrite.replace ? vfsWrite.bytes.length : before.vfsBytes + vfsWrite.bytes.length;
      const activeAfter = (staged ? before.stagedPages : cp.full ? 0 : before.pages) + newPages;
      const stagedAfter = staged ? 0 : before.stagedPages;
      const bytesAfter = (activeAfter + stagedAfter) * this.pageFootprint + vfsAfter + headBytes;
      if (bytesAfter > this.maxBytes) throw storeFull(this.path, `epoch ${cp.epoch}`, bytesAfter, this.maxBytes, before.latestEpoch);
      stagedPagesAfter = before.stagedPages - overwritten;
      neededBytes = bytesAfter - before.bytes;
    }

    const summary: EpochSummary = {
      epoch: cp.epoch, full: cp.full, pages: cp.pages.length, trackerPages: cp.stats.trackerPages,
      pageBytes: cp.pages.length * CHECKPOINT_PAGE_BYTES, vfsBytes: cp.libos.vfs.bytes.length, memoryBytes: cp.memoryBytes,
      pauseUs: Math.round(cp.stats.pauseUs), capturedAtMs: cp.stats.capturedAtMs, tracker: cp.stats.tracker,
      ...(staged ? { stagedPages: stagedPagesAfter } : {}),
    };
    if (cp.full && !staged) active.clearSync();
    for (const p of cp.pages) if (!superseded.has(p)) target.putSync(p.index, pageRecord(p.data, p.crc32c as number, cp.epoch));
    if (staged) {
      this.meta.putSync(META_PAGES_DB, Buffer.from(stagingName, 'utf8'));
      this.meta.removeSync(META_STAGING);
      active.clearSync(); // one image on disk, not two
    }
    if (vfsWrite.replace) this.vfs.clearSync();
    this.vfs.putSync(vfsWrite.key, withCrc(vfsWrite.bytes, crc32c(vfsWrite.bytes)));
    this.epochs.putSync(cp.epoch, summary);
    if (cp.epoch > MAX_EPOCH_SUMMARIES) {
      for (const old of [...this.epochs.getKeys({ end: cp.epoch - MAX_EPOCH_SUMMARIES + 1 })]) this.epochs.removeSync(old as number);
    }
    const headAfter: HeadSummary = { epoch: cp.epoch, memoryBytes: cp.memoryBytes, bytes: headBytes };
    if (head !== null) {
      this.meta.putSync('head', head); // last: with it, the epoch (and the batch) is complete
      // The next commit reads this head back: keep its summary so it is not decoded again. Should
      // the transaction roll back, the stored head differs from `raw` and is decoded as before.
      this.headCache = { raw: head, summary: headAfter };
    }
    const after = vfsWrite.replace ? { count: 1, baseBytes: vfsWrite.bytes.length, deltaBytes: 0 } : { count: sizes.count + 1, baseBytes: sizes.baseBytes, deltaBytes: sizes.deltaBytes + vfsWrite.bytes.length };
    this.vfsSizesCache = { headEpoch: cp.epoch, sizes: after };
    return { neededBytes, head: headAfter };
  }

  /** The error for a failed write of `what` ("epoch 7", "the pages staged for …"); nothing of it was applied. */
  private writeError(what: string, neededBytes: number, err: unknown): WaterbearError {
    if (isWaterbearError(err)) return err;
    const e = err as NodeJS.ErrnoException & { code?: unknown; commitError?: Promise<unknown> };
    // lmdb-js also rejects this promise (the real cause) and holds no handler for it (lmdb-js#368):
    // unhandled, it would kill the process after we handled the failure.
    void e.commitError?.catch(() => {});
    let freeBytes = Infinity;
    try {
      const s = statfsSync(this.path);
      freeBytes = s.bavail * s.bsize;
    } catch { /* unknown: not a full disk as far as we can tell */ }
    // LMDB reports a full disk as ENOSPC, MDB_MAP_FULL, or (written through the map) EIO.
    if (e.code === 'ENOSPC' || /MDB_MAP_FULL|ENOSPC|No space left/i.test(String(e.message)) || freeBytes < Math.max(neededBytes, 0) + 1024 * 1024) {
      return new WaterbearError('WB_STORE_FULL',
        `the disk holding the checkpoint store ${this.path} is full (${Number.isFinite(freeBytes) ? `${freeBytes} bytes free` : 'no space'}); ` +
        `nothing of ${what} was applied and the store still holds the previous epoch: free space on that disk`, { cause: err });
    }
    return storeIo(`writing ${what} failed (${String(e.message)}); nothing of it was applied`, err);
  }

  /**
   * How many VFS records there are and their sizes, without reading them: every commit needs
   * this (budget, compaction), and walking up to VFS_MAX_DELTAS records twice per commit was
   * ~15% of a busy backup's time. Cached with the head epoch it describes (the stored head's,
   * which the caller has already read). Every commit writes a new head epoch and the sizes with
   * it; a transaction that rolls back leaves the older head in the store, which then differs from
   * the cached epoch, and the records are read again. (Checking the record count and last key as
   * well, as this did until session 18, cost ~5% of a backup's CPU under 16 clients and can only
   * catch a second writer of the same store, which the store does not support.)
   */
  private vfsSizes(headEpoch: number): VfsSizes {
    const c = this.vfsSizesCache;
    if (c !== null && c.headEpoch === headEpoch) return c.sizes;
    const sizes: VfsSizes = { count: 0, baseBytes: 0, deltaBytes: 0 };
    for (const { key, value } of this.vfs.getRange({})) {
      const bytes = Math.max(0, value.length - 4);
      if (key === 0) sizes.baseBytes = bytes;
      else sizes.deltaBytes += bytes;
      sizes.count++;
    }
    this.vfsSizesCache = { headEpoch, sizes };
    return sizes;
  }

  /** The VFS base image and deltas in order, checksums verified. */
  private vfsEntries(): Array<{ key: number; bytes: Uint8Array }> {
    const out: Array<{ key: number; bytes: Uint8Array }> = [];
    for (const { key, value } of this.vfs.getRange({})) {
      if (value.length < 4) throw storeCorrupt(`VFS record ${key} is truncated`);
      const bytes = value.subarray(4);
      if (crc32c(bytes) !== value.readUInt32LE(0)) throw storeCorrupt(`VFS record ${key} checksum does not match`);
      out.push({ key, bytes });
    }
    if (out.length > 0 && out[0].key !== 0) throw storeCorrupt('the VFS base image is missing');
    // As for pages (copyPagesInto): a damaged B-tree page can hide deltas, and the VFS would come back old.
    const recorded = entryCount(this.vfs);
    if (out.length !== recorded) throw storeCorrupt(`the VFS database lists ${recorded} records but ${out.length} could be read`);
    return out;
  }

  /**
   * Rebuild the full state at the latest complete epoch, verifying every checksum first: a
   * corrupt page or record throws WB_CHECKPOINT_CORRUPT and nothing is returned. Null when the
   * store is empty. Reads within one synchronous call, i.e. one LMDB read snapshot. The memory
   * is one flat buffer: for inspection and tests; a restore uses `loadImageForRestore`.
   */
  loadImage(): RestoreImage | null {
    const head = this.head();
    if (head === null) return null;
    const memory = new Uint8Array(head.memoryBytes);
    this.copyPagesInto(memory);
    return this.imageAround(head, memory);
  }

  /**
   * The latest complete epoch, for a restore: like `loadImage`, but the pages are read, verified
   * and written straight into the restored instance's memory (`writeInto`, called by
   * `Lvm.restore`), while other cores fault that memory in (`populateWhile`). A 1 GiB image thus needs
   * no second GiB and no second copy. `writeInto` reads in one snapshot and throws
   * WB_STORE_IO when the store's head is no longer the one read here (it was written meanwhile),
   * WB_CHECKPOINT_CORRUPT when a page's checksum does not match; the instance is then discarded.
   */
  loadImageForRestore(): RestoreImage<MemoryContents> | null {
    const head = this.head();
    if (head === null) return null;
    const activeName = this.activeName();
    const headRecord = Buffer.from(this.meta.getBinary('head')!);
    const memory: MemoryContents = {
      byteLength: head.memoryBytes,
      writeInto: (dst) => {
        const now = this.meta.getBinary('head');
        if (now === undefined || !headRecord.equals(now) || this.activeName() !== activeName) {
          throw new WaterbearError('WB_STORE_IO', `the checkpoint store was written while its epoch ${head.epoch} was being restored; nothing was restored: restore again (one writer at a time)`);
        }
        populateWhile(dst, () => this.copyPagesInto(dst));
      },
    };
    return this.imageAround(head, memory);
  }

  /** The head's state around `memory`, with the VFS chain (checksums verified). */
  private imageAround<M extends Uint8Array | MemoryContents>(head: CheckpointData, memory: M): RestoreImage<M> {
    const vfs = this.vfsEntries();
    if (vfs.length === 0) throw storeCorrupt('the VFS base image is missing');
    return {
      epoch: head.epoch, imageSha256: head.imageSha256,
      lvm: { memory, globals: head.globals, pending: head.pending },
      libos: { ...head.libos, vfs: vfs.map((e) => e.bytes) },
      extensions: head.extensions,
    };
  }

  /**
   * Write every page of the active image into `memory` (as long as the head's memory), then
   * verify every page's checksum there at once (on every core, with the native addon); a
   * mismatch throws WB_CHECKPOINT_CORRUPT naming the page, and `memory` is then garbage. Key by
   * key with `getBinaryFast` (lmdb's reused read buffer, valid until the next read): iterating
   * with values would allocate a buffer per page (~4x slower for 1 GiB, and garbage to collect).
   */
  private copyPagesInto(memory: Uint8Array): void {
    const name = this.activeName();
    const db = this.pageDb(name);
    const maxPages = Math.ceil(memory.length / CHECKPOINT_PAGE_BYTES);
    const indices = new Uint32Array(maxPages);
    const expected = new Uint32Array(maxPages);
    let count = 0;
    for (const key of db.getKeys({}) as Iterable<number>) {
      const value = db.getBinaryFast(key);
      if (value === undefined) throw storeCorrupt(`page ${key} vanished while it was read`);
      if (value.length !== STORED_PAGE_BYTES) throw storeCorrupt(`page ${key} has ${value.length} bytes`);
      // Keys are distinct and, past this check, below maxPages: `count` stays within the arrays.
      if ((key + 1) * CHECKPOINT_PAGE_BYTES > memory.length) throw storeCorrupt(`page ${key} lies outside the ${memory.length}-byte memory`);
      memory.set(value.subarray(PAGE_HEADER_BYTES, STORED_PAGE_BYTES), key * CHECKPOINT_PAGE_BYTES);
      indices[count] = key;
      expected[count++] = value.readUInt32LE(0);
    }
    // A damaged B-tree page can hide whole subtrees from the walk, and the image would come back
    // with zeros where those pages were: the count LMDB keeps with the database must agree.
    const recorded = entryCount(db);
    if (count !== recorded) throw storeCorrupt(`the page database lists ${recorded} pages but ${count} could be read`);
    const bad = verifyPageChecksums(memory, indices, expected, count, CHECKPOINT_PAGE_BYTES);
    if (bad >= 0) {
      const key = indices[bad];
      const written = db.getBinary(key)?.readUInt32LE(4) ?? 0;
      throw storeCorrupt(`page ${key} (${written === 0 ? 'staged' : `written at epoch ${written}`}) checksum does not match`);
    }
  }

  /** Summaries of the last epochs, oldest first. */
  epochSummaries(): EpochSummary[] {
    return [...this.epochs.getRange({})].map((e) => e.value);
  }

  /** What the store holds now. */
  stats(): StoreStats {
    const head = this.headSummary();
    return { ...this.statsOf(head, this.vfsSizes(head?.epoch ?? 0)), fileBytes: statSync(join(this.path, LMDB_DATA_FILE)).size };
  }

  /** `stats()` from a head summary and VFS sizes the caller already read (a commit reads both first). */
  private statsOf(head: HeadSummary | null, vfs: VfsSizes): Omit<StoreStats, 'fileBytes'> {
    const vfsBytes = vfs.baseBytes + vfs.deltaBytes;
    const pages = entryCount(this.pageDb(this.activeName()));
    const stagedPages = this.stagedCount();
    return {
      latestEpoch: head?.epoch ?? 0, pages, stagedPages, vfsBytes, memoryBytes: head?.memoryBytes ?? 0,
      bytes: (pages + stagedPages) * this.pageFootprint + vfsBytes + (head?.bytes ?? 0),
    };
  }

  /** TEST ONLY: overwrite one byte of a stored page's data, bypassing the checksum (to prove corruption is caught). */
  unsafeCorruptPage(index: number, byteOffset = 0): void {
    const pages = this.pageDb(this.activeName());
    const v = pages.getBinary(index);
    if (v === undefined) throw new Error(`no page ${index}`);
    const copy = Buffer.from(v);
    copy[PAGE_HEADER_BYTES + byteOffset] ^= 0xff;
    this.env.transactionSync(() => { pages.putSync(index, copy); });
  }

  /** Page indices held by the active chain (ascending). */
  pageIndices(): number[] {
    return [...this.pageDb(this.activeName()).getKeys({})] as number[];
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.env.close();
  }
}

/** Block like a slow fdatasync, then fail like a full or broken disk (inside the write transaction, which aborts). */
function simulateDiskFault(f: StoreFault): void {
  const delay = Math.min(Math.max(0, f.delayMs ?? 0), MAX_STORE_FAULT_DELAY_MS);
  if (delay > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delay);
  if (f.errno === undefined) return;
  const message = f.errno === 'ENOSPC' ? 'ENOSPC: No space left on device (simulated)' : 'EIO: input/output error in fdatasync (simulated)';
  throw Object.assign(new Error(message), { code: f.errno, simulated: true });
}

/** Fold a VFS base image and its deltas into one full image. */
function compactVfs(images: Uint8Array[], maxBytes: number): Uint8Array {
  const vfs = new Vfs({ now: () => 0n, maxBytes: Math.max(maxBytes, 1) });
  vfs.load(images[0]);
  for (const d of images.slice(1)) vfs.applyDelta(decodeVfsDelta(d));
  return vfs.save();
}
