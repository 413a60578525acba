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
 *   carries a format version and a CRC-32C).
 * - "pages" (uint32 key = page index): u32 CRC-32C | u32 epoch written | 4096 bytes. Only the
 *   latest version of every page is kept: a page written again replaces the old one, a full
 *   checkpoint (new chain) replaces them all. Pages absent are zero.
 * - "vfs" (uint32 key): 0 → a full VFS image, N → the VFS delta of epoch N, each u32 CRC-32C |
 *   bytes. When the deltas outgrow the base image they are folded into a new base (compaction),
 *   so the VFS part is bounded by about twice the VFS size.
 * - "epochs" (uint32 key = epoch): JSON summary of the last MAX_EPOCH_SUMMARIES epochs, for
 *   `waterbear checkpoint inspect`.
 * Storage is thus bounded by memory size + ~2 × VFS size + a few KiB, whatever the run length.
 *
 * Reads (`latestEpoch`, `loadImage`) verify every checksum and refuse what does not check out:
 * WB_CHECKPOINT_CORRUPT / _VERSION / _TRUNCATED. One writer process at a time; readers may run
 * in other processes concurrently.
 */
import { mkdirSync, statfsSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { WaterbearError, isWaterbearError } from '../../libos-host/errors.js';
import { Vfs } from '../../libos-host/wasi/vfs.js';
import { decodeVfsDelta } from '../../libos-host/wasi/vfs-delta.js';
import { CHECKPOINT_PAGE_BYTES, sealPages, type CheckpointData } from '../checkpoint-data.js';
import { crc32c } from '../format/crc32c.js';
import { decodeCheckpoint, encodeCheckpoint } from '../format/checkpoint-codec.js';
import type { RestoreImage } from '../restore-image.js';

/** Version of the on-disk layout; a store written by another version is refused. */
export const STORE_FORMAT_VERSION = 1;
/** How many epoch summaries `inspect` can show; older ones are dropped. */
export const MAX_EPOCH_SUMMARIES = 256;
/** VFS deltas are folded into the base image once they exceed max(base size, this). */
export const VFS_COMPACT_MIN_BYTES = 1024 * 1024;
/** At most this many VFS deltas are kept before they are folded into the base image. */
export const VFS_MAX_DELTAS = 64;
/** Per-page bytes in the store: CRC-32C, epoch, data. */
const PAGE_HEADER_BYTES = 8;
const STORED_PAGE_BYTES = PAGE_HEADER_BYTES + CHECKPOINT_PAGE_BYTES;

/** One epoch as `inspect` shows it. */
export interface EpochSummary {
  epoch: number;
  full: boolean;
  /** Pages in the checkpoint. */
  pages: number;
  /** Pages the tracker reported (before the Asyncify pages). */
  trackerPages: number;
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
  /** Bytes held by pages, VFS images/deltas and the head record. */
  bytes: number;
  vfsBytes: number;
  memoryBytes: number;
}

export interface CheckpointStoreOptions {
  /**
   * Most bytes the store may hold (pages, VFS, head); a commit that would exceed it is refused
   * with WB_STORE_FULL before anything is written. Default: no limit besides the disk.
   */
  maxBytes?: number;
  /** Open for reading only (inspect, tests): commit throws. */
  readOnly?: boolean;
  /** Fold VFS deltas into the base once they exceed max(base size, this). Default VFS_COMPACT_MIN_BYTES. */
  vfsCompactMinBytes?: number;
  /**
   * TEST AND CHAOS ONLY: asked at every commit whether to simulate a slow or failing disk (see
   * StoreFault). Never set from a config file; the replica sets it only under WATERBEAR_CHAOS_CONTROL.
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

function withCrc(data: Uint8Array, crc: number, epoch?: number): Buffer {
  const header = epoch === undefined ? 4 : PAGE_HEADER_BYTES;
  const out = Buffer.allocUnsafe(header + data.length);
  out.writeUInt32LE(crc >>> 0, 0);
  if (epoch !== undefined) out.writeUInt32LE(epoch, 4);
  out.set(data, header);
  return out;
}

/** The latest complete checkpoint of one LVM, durable in LMDB. */
export class CheckpointStore {
  private readonly env: RootDatabase;
  private readonly meta: Database<Buffer, string>;
  private readonly pages: Database<Buffer, number>;
  private readonly vfs: Database<Buffer, number>;
  private readonly epochs: Database<EpochSummary, number>;
  private readonly maxBytes: number;
  private readonly readOnly: boolean;
  private readonly vfsCompactMinBytes: number;
  private readonly faultHook: (() => StoreFault | null) | null;
  private closed = false;

  private constructor(readonly path: string, options: CheckpointStoreOptions) {
    this.maxBytes = options.maxBytes ?? Infinity;
    this.readOnly = options.readOnly === true;
    this.vfsCompactMinBytes = options.vfsCompactMinBytes ?? VFS_COMPACT_MIN_BYTES;
    this.faultHook = options.faultHook ?? null;
    if (!(this.maxBytes > 0)) throw new WaterbearError('WB_CONFIG_INVALID', `checkpoint store maxBytes must be > 0: got ${this.maxBytes}`);
    try {
      if (!this.readOnly) mkdirSync(path, { recursive: true });
      this.env = open({ path, overlappingSync: false, compression: false, maxDbs: 8, readOnly: this.readOnly });
      this.meta = this.env.openDB<Buffer, string>('meta', { encoding: 'binary' });
      this.pages = this.env.openDB<Buffer, number>('pages', { keyEncoding: 'uint32', encoding: 'binary' });
      this.vfs = this.env.openDB<Buffer, number>('vfs', { keyEncoding: 'uint32', encoding: 'binary' });
      this.epochs = this.env.openDB<EpochSummary, number>('epochs', { keyEncoding: 'uint32', encoding: 'json' });
    } catch (err) {
      throw storeIo(`cannot open ${path}: ${(err as Error).message}`, err);
    }
  }

  /**
   * Open (creating when missing, unless read-only) the store in directory `path`. Throws
   * WB_CHECKPOINT_VERSION for a store of another layout version, WB_STORE_IO when it cannot be opened.
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
        `the checkpoint store ${this.path} has layout version ${String(version)}, this waterbear reads version ${STORE_FORMAT_VERSION}: use the waterbear version that wrote it`);
    }
  }

  /** The latest complete epoch, or 0 when the store holds none. Reads the head record only. */
  latestEpoch(): number {
    const head = this.meta.getBinary('head');
    if (head === undefined) return 0;
    return decodeCheckpoint(head).epoch;
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
      throw this.writeError(at.epoch, at.neededBytes, err);
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
      throw this.writeError(at.epoch, at.neededBytes, err);
    }
  }

  /** Inside a write transaction: check and write each checkpoint in order (reads see the earlier ones). */
  private writeBatch(cps: readonly CheckpointData[], fault: StoreFault | null, at: { epoch: number; neededBytes: number }): void {
    for (const cp of cps) {
      at.epoch = cp.epoch;
      at.neededBytes = this.writeInTransaction(cp);
    }
    if (fault !== null) simulateDiskFault(fault);
  }

  /** Check and write one checkpoint inside the caller's write transaction; returns the bytes it adds. */
  private writeInTransaction(cp: CheckpointData): number {
    sealPages(cp);
    const latest = this.latestEpoch();
    if (cp.full ? cp.epoch <= latest : cp.epoch !== latest + 1) {
      throw new WaterbearError('WB_CHECKPOINT_CORRUPT',
        `checkpoint ${cp.epoch} (${cp.full ? 'full' : 'incremental'}) does not follow the stored epoch ${latest}; it was not applied: send a full checkpoint`,
        { details: { epoch: cp.epoch, latest } });
    }
    if (cp.full !== cp.libos.vfs.full) throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `checkpoint ${cp.epoch}: a full checkpoint needs a full VFS image, an incremental one a delta`);
    const head = Buffer.from(encodeCheckpoint({ ...cp, pages: [], libos: { ...cp.libos, vfs: { full: cp.libos.vfs.full, bytes: new Uint8Array(0) } } }));

    // The VFS: a new base on a full checkpoint, else a delta — or a compacted base when the deltas outgrow it.
    const vfsEntries = cp.full ? [] : this.vfsEntries();
    let vfsWrite: { replace: boolean; key: number; bytes: Uint8Array };
    const deltaBytes = vfsEntries.slice(1).reduce((n, e) => n + e.bytes.length, 0) + cp.libos.vfs.bytes.length;
    if (cp.full) vfsWrite = { replace: true, key: 0, bytes: cp.libos.vfs.bytes };
    // Compact by size, and by count: every commit reads the whole chain, so thousands of tiny
    // deltas (a guest that barely touches its files) would make each commit slower than the last.
    else if (vfsEntries.length > 0 && (vfsEntries.length > VFS_MAX_DELTAS || deltaBytes > Math.max(vfsEntries[0].bytes.length, this.vfsCompactMinBytes))) {
      vfsWrite = { replace: true, key: 0, bytes: compactVfs([...vfsEntries.map((e) => e.bytes), cp.libos.vfs.bytes], cp.libos.vfsMaxBytes) };
    } else vfsWrite = { replace: false, key: cp.epoch, bytes: cp.libos.vfs.bytes };

    // The budget, checked before writing anything.
    const before = this.stats();
    let newPages = cp.pages.length;
    if (!cp.full) for (const p of cp.pages) if (this.pages.doesExist(p.index)) newPages--;
    const vfsAfter = vfsWrite.replace ? vfsWrite.bytes.length : before.vfsBytes + vfsWrite.bytes.length;
    const pagesAfter = (cp.full ? 0 : before.pages) + newPages;
    const bytesAfter = pagesAfter * STORED_PAGE_BYTES + vfsAfter + head.length;
    if (bytesAfter > this.maxBytes) {
      throw new WaterbearError('WB_STORE_FULL',
        `the checkpoint store ${this.path} is full: epoch ${cp.epoch} needs ${bytesAfter} bytes, the limit is ${this.maxBytes}; ` +
        'it was not applied (the store still holds epoch ' + before.latestEpoch + '): raise the store limit or give the guest less memory',
        { details: { needed: bytesAfter, limit: this.maxBytes, latest: before.latestEpoch } });
    }

    const summary: EpochSummary = {
      epoch: cp.epoch, full: cp.full, pages: cp.pages.length, trackerPages: cp.stats.trackerPages,
      pageBytes: cp.pages.length * CHECKPOINT_PAGE_BYTES, vfsBytes: cp.libos.vfs.bytes.length, memoryBytes: cp.memoryBytes,
      pauseUs: Math.round(cp.stats.pauseUs), capturedAtMs: cp.stats.capturedAtMs, tracker: cp.stats.tracker,
    };
    if (cp.full) this.pages.clearSync();
    for (const p of cp.pages) this.pages.putSync(p.index, withCrc(p.data, p.crc32c as number, cp.epoch));
    if (vfsWrite.replace) this.vfs.clearSync();
    this.vfs.putSync(vfsWrite.key, withCrc(vfsWrite.bytes, crc32c(vfsWrite.bytes)));
    this.epochs.putSync(cp.epoch, summary);
    if (cp.epoch > MAX_EPOCH_SUMMARIES) {
      for (const old of [...this.epochs.getKeys({ end: cp.epoch - MAX_EPOCH_SUMMARIES + 1 })]) this.epochs.removeSync(old as number);
    }
    this.meta.putSync('head', head); // last: with it, the epoch is complete
    return bytesAfter - before.bytes;
  }

  private writeError(epoch: number, neededBytes: number, err: unknown): WaterbearError {
    if (isWaterbearError(err)) return err;
    const e = err as NodeJS.ErrnoException & { code?: unknown };
    let freeBytes = Infinity;
    try {
      const s = statfsSync(this.path);
      freeBytes = s.bavail * s.bsize;
    } catch { /* unknown: not a full disk as far as we can tell */ }
    // LMDB reports a full disk as ENOSPC, MDB_MAP_FULL, or (written through the map) EIO.
    if (e.code === 'ENOSPC' || /MDB_MAP_FULL|ENOSPC|No space left/i.test(String(e.message)) || freeBytes < Math.max(neededBytes, 0) + 1024 * 1024) {
      return new WaterbearError('WB_STORE_FULL',
        `the disk holding the checkpoint store ${this.path} is full (${Number.isFinite(freeBytes) ? `${freeBytes} bytes free` : 'no space'}); ` +
        `epoch ${epoch} was not applied and the store still holds the previous epoch: free space on that disk`, { cause: err });
    }
    return storeIo(`writing epoch ${epoch} failed (${String(e.message)}); it was not applied`, err);
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
    return out;
  }

  /**
   * Rebuild the full state at the latest complete epoch, verifying every checksum first: a
   * corrupt page or record throws WB_CHECKPOINT_CORRUPT and nothing is returned. Null when the
   * store is empty. Reads within one synchronous call, i.e. one LMDB read snapshot.
   */
  loadImage(): RestoreImage | null {
    const head = this.head();
    if (head === null) return null;
    const memory = new Uint8Array(head.memoryBytes);
    for (const { key, value } of this.pages.getRange({})) {
      if (value.length !== STORED_PAGE_BYTES) throw storeCorrupt(`page ${key} has ${value.length} bytes`);
      if ((key + 1) * CHECKPOINT_PAGE_BYTES > head.memoryBytes) throw storeCorrupt(`page ${key} lies outside the ${head.memoryBytes}-byte memory`);
      const data = value.subarray(PAGE_HEADER_BYTES);
      if (crc32c(data) !== value.readUInt32LE(0)) throw storeCorrupt(`page ${key} (written at epoch ${value.readUInt32LE(4)}) checksum does not match`);
      memory.set(data, key * CHECKPOINT_PAGE_BYTES);
    }
    const vfs = this.vfsEntries();
    if (vfs.length === 0) throw storeCorrupt('the VFS base image is missing');
    return {
      epoch: head.epoch, imageSha256: head.imageSha256,
      lvm: { memory, globals: head.globals, pending: head.pending },
      libos: { ...head.libos, vfs: vfs.map((e) => e.bytes) },
      extensions: head.extensions,
    };
  }

  /** Summaries of the last epochs, oldest first. */
  epochSummaries(): EpochSummary[] {
    return [...this.epochs.getRange({})].map((e) => e.value);
  }

  /** What the store holds now. */
  stats(): StoreStats {
    const head = this.meta.getBinary('head');
    let vfsBytes = 0;
    for (const { value } of this.vfs.getRange({})) vfsBytes += value.length - 4;
    const pages = this.pages.getCount();
    const cp = head === undefined ? null : decodeCheckpoint(head);
    return {
      latestEpoch: cp?.epoch ?? 0, pages, vfsBytes, memoryBytes: cp?.memoryBytes ?? 0,
      bytes: pages * STORED_PAGE_BYTES + vfsBytes + (head?.length ?? 0),
    };
  }

  /** TEST ONLY: overwrite one byte of a stored page's data, bypassing the checksum (to prove corruption is caught). */
  unsafeCorruptPage(index: number, byteOffset = 0): void {
    const v = this.pages.getBinary(index);
    if (v === undefined) throw new Error(`no page ${index}`);
    const copy = Buffer.from(v);
    copy[PAGE_HEADER_BYTES + byteOffset] ^= 0xff;
    this.env.transactionSync(() => { this.pages.putSync(index, copy); });
  }

  /** Page indices held (ascending). */
  pageIndices(): number[] {
    return [...this.pages.getKeys({})] as number[];
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
