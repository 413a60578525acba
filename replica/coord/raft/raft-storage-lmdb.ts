/**
 * Durable Raft storage in LMDB (npm `lmdb`): hard state, log entries and the latest snapshot.
 *
 * Durability. Each Ready is written in ONE synchronous write transaction (`transactionSync`) on an
 * environment opened with `overlappingSync: false` (and never `noSync`/`noMetaSync`). In that mode
 * LMDB's commit writes the data pages, fdatasync()s them, then writes the meta page through its
 * O_DSYNC file descriptor, all before `transactionSync` returns. (lmdb-js's default `overlappingSync`
 * mode instead returns after the commit and flushes later; its `db.flushed` promise does not cover
 * synchronous transactions in lmdb 3.x, so we do not rely on it.) LMDB's copy-on-write B-tree with
 * two meta pages means a crash at any point leaves either the previous or the new transaction: a
 * Ready is never torn. So `save()` has made the Ready durable by the time it returns.
 *
 * The write blocks the event loop for one fdatasync per Ready (~ms on SSD). The coordinator writes a
 * few small entries per second, so simplicity wins over a write thread here.
 *
 * Layout (format version 1, recorded under state key "format"):
 * - db "raft-state", binary values: "format" → JSON {version}; "hardState" → JSON {term, vote, commit};
 *   "snapshot" → u32 header length, JSON header {index, term, voters, learners}, snapshot data.
 * - db "raft-entries", numeric keys (the log index), binary values: u8 format version, u8 type
 *   (0 normal, 1 conf), f64 term (big endian), entry data.
 */
import { mkdirSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import { WaterbearError } from '../../../libos-host/errors.js';
import { makeMembership } from './raft-membership.js';
import type { RaftStorage, ReadyToPersist } from './raft-storage.js';
import { nothingToPersist } from './raft-storage.js';
import {
  EMPTY_HARD_STATE,
  EMPTY_SNAPSHOT,
  type Entry,
  type HardState,
  type PersistedState,
  type Snapshot,
} from './raft-types.js';

/** Version of the on-disk layout; a store written by another version is refused. */
export const RAFT_STORE_FORMAT_VERSION = 1;
const ENTRY_FORMAT_VERSION = 1;
const ENTRY_HEADER_BYTES = 10;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function corrupt(what: string, cause?: unknown): WaterbearError {
  return new WaterbearError('WB_STORE_IO', `the raft store is corrupt (${what}); restore this node from a healthy peer`, cause === undefined ? undefined : { cause });
}

function encodeJson(value: unknown): Buffer {
  return Buffer.from(encoder.encode(JSON.stringify(value)));
}

function decodeJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (cause) {
    throw corrupt(`${what} is not valid JSON`, cause);
  }
}

/** Encodes a log entry value. */
export function encodeEntryValue(e: Entry): Buffer {
  const out = Buffer.allocUnsafe(ENTRY_HEADER_BYTES + e.data.length);
  out.writeUInt8(ENTRY_FORMAT_VERSION, 0);
  out.writeUInt8(e.type === 'conf' ? 1 : 0, 1);
  out.writeDoubleBE(e.term, 2);
  out.set(e.data, ENTRY_HEADER_BYTES);
  return out;
}

/** Decodes a log entry value. @throws WaterbearError WB_STORE_IO when malformed. */
export function decodeEntryValue(index: number, value: Uint8Array): Entry {
  if (value.length < ENTRY_HEADER_BYTES) throw corrupt(`entry ${index} is truncated`);
  const buf = Buffer.from(value.buffer, value.byteOffset, value.length);
  if (buf.readUInt8(0) !== ENTRY_FORMAT_VERSION) throw corrupt(`entry ${index} has unknown format ${buf.readUInt8(0)}`);
  const typeByte = buf.readUInt8(1);
  if (typeByte > 1) throw corrupt(`entry ${index} has unknown type ${typeByte}`);
  const term = buf.readDoubleBE(2);
  if (!Number.isInteger(term) || term < 0) throw corrupt(`entry ${index} has bad term`);
  return { index, term, type: typeByte === 1 ? 'conf' : 'normal', data: new Uint8Array(buf.subarray(ENTRY_HEADER_BYTES)) };
}

function encodeSnapshot(s: Snapshot): Buffer {
  const header = encoder.encode(
    JSON.stringify({ index: s.meta.index, term: s.meta.term, voters: s.meta.membership.voters, learners: s.meta.membership.learners }),
  );
  const out = Buffer.allocUnsafe(4 + header.length + s.data.length);
  out.writeUInt32BE(header.length, 0);
  out.set(header, 4);
  out.set(s.data, 4 + header.length);
  return out;
}

function decodeSnapshot(value: Uint8Array): Snapshot {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.length);
  if (buf.length < 4) throw corrupt('snapshot is truncated');
  const headerLength = buf.readUInt32BE(0);
  if (4 + headerLength > buf.length) throw corrupt('snapshot header is truncated');
  const h = decodeJson(buf.subarray(4, 4 + headerLength), 'snapshot header') as {
    index?: unknown;
    term?: unknown;
    voters?: unknown;
    learners?: unknown;
  };
  if (!Number.isInteger(h.index) || !Number.isInteger(h.term) || !Array.isArray(h.voters) || !Array.isArray(h.learners)) {
    throw corrupt('snapshot header is malformed');
  }
  return {
    meta: { index: h.index as number, term: h.term as number, membership: makeMembership(h.voters as string[], h.learners as string[]) },
    data: new Uint8Array(buf.subarray(4 + headerLength)),
  };
}

/** Raft storage in an LMDB environment in a directory of its own. */
export class LmdbRaftStorage implements RaftStorage {
  private closed = false;
  /** Index of the stored snapshot and of the last stored entry, kept to bound range deletions. */
  private snapshotIndex = 0;
  private lastIndex = 0;

  private constructor(
    private readonly root: RootDatabase,
    private readonly state: Database<Buffer, string>,
    private readonly entries: Database<Buffer, number>,
  ) {}

  /**
   * Opens (creating if needed) the store in directory `dir`.
   * @throws WaterbearError WB_STORE_IO when the directory cannot be opened or the store is corrupt;
   *   WB_CHECKPOINT_VERSION when it was written by an unsupported format version.
   */
  static open(dir: string): LmdbRaftStorage {
    let root: RootDatabase;
    try {
      mkdirSync(dir, { recursive: true });
      root = open({ path: dir, overlappingSync: false, noSync: false, noMetaSync: false, maxDbs: 4 });
    } catch (cause) {
      throw new WaterbearError('WB_STORE_IO', `cannot open the raft store in ${dir}: check the path and permissions`, { cause });
    }
    const state = root.openDB<Buffer, string>({ name: 'raft-state', encoding: 'binary' });
    const entries = root.openDB<Buffer, number>({ name: 'raft-entries', encoding: 'binary' });
    const storage = new LmdbRaftStorage(root, state, entries);
    try {
      storage.initFormat();
      const loaded = storage.load();
      storage.snapshotIndex = loaded.snapshot.meta.index;
      storage.lastIndex = loaded.snapshot.meta.index + loaded.entries.length;
    } catch (err) {
      void root.close();
      throw err;
    }
    return storage;
  }

  private initFormat(): void {
    const raw = this.state.get('format');
    if (raw === undefined) {
      this.root.transactionSync(() => {
        this.state.put('format', encodeJson({ version: RAFT_STORE_FORMAT_VERSION }));
      });
      return;
    }
    const f = decodeJson(raw, 'format record') as { version?: unknown };
    if (f.version !== RAFT_STORE_FORMAT_VERSION) {
      throw new WaterbearError(
        'WB_CHECKPOINT_VERSION',
        `the raft store has format version ${JSON.stringify(f.version)}; this build reads version ${RAFT_STORE_FORMAT_VERSION}`,
      );
    }
  }

  /** Reads the whole persisted state. @throws WaterbearError WB_STORE_IO when it is corrupt or inconsistent. */
  load(): PersistedState {
    this.assertOpen();
    const hsRaw = this.state.get('hardState');
    let hardState: HardState = EMPTY_HARD_STATE;
    if (hsRaw !== undefined) {
      const h = decodeJson(hsRaw, 'hard state') as { term?: unknown; vote?: unknown; commit?: unknown };
      if (!Number.isInteger(h.term) || typeof h.vote !== 'string' || !Number.isInteger(h.commit)) throw corrupt('hard state is malformed');
      hardState = { term: h.term as number, vote: h.vote, commit: h.commit as number };
    }
    const snapRaw = this.state.get('snapshot');
    const snapshot = snapRaw === undefined ? EMPTY_SNAPSHOT : decodeSnapshot(snapRaw);
    const entries: Entry[] = [];
    let expected = snapshot.meta.index + 1;
    for (const { key, value } of this.entries.getRange({ start: 0 })) {
      if (key <= snapshot.meta.index) throw corrupt(`entry ${key} is at or below the snapshot index ${snapshot.meta.index}`);
      if (key !== expected) throw corrupt(`entry ${expected} is missing (found ${key})`);
      entries.push(decodeEntryValue(key, value));
      expected++;
    }
    const last = snapshot.meta.index + entries.length;
    if (hardState.commit > last || (hardState.term > 0 && hardState.commit < snapshot.meta.index)) {
      throw corrupt(`commit index ${hardState.commit} is outside the stored log [${snapshot.meta.index}, ${last}]`);
    }
    return { hardState, snapshot, entries };
  }

  /**
   * Persists one Ready in one durable LMDB transaction (see the file comment); when this returns (and
   * the promise resolves) the Ready is on stable storage.
   * @throws WaterbearError WB_STORE_FULL when the disk or map is full; WB_STORE_IO on other write failures.
   */
  saveSync(rd: ReadyToPersist): void {
    this.assertOpen();
    if (nothingToPersist(rd)) return;
    let snapshotIndex = this.snapshotIndex;
    let lastIndex = this.lastIndex;
    try {
      this.root.transactionSync(() => {
        if (rd.snapshot !== null) {
          for (let i = snapshotIndex + 1; i <= lastIndex; i++) this.entries.remove(i);
          this.state.put('snapshot', encodeSnapshot(rd.snapshot));
          snapshotIndex = rd.snapshot.meta.index;
          lastIndex = snapshotIndex;
        }
        if (rd.entries.length > 0) {
          const first = rd.entries[0].index;
          if (first <= snapshotIndex || first > lastIndex + 1) {
            throw new WaterbearError('WB_PROTOCOL', `raft entries from ${first} do not follow the stored log (snapshot ${snapshotIndex}, last ${lastIndex})`);
          }
          for (let i = first; i <= lastIndex; i++) this.entries.remove(i);
          for (const e of rd.entries) this.entries.put(e.index, encodeEntryValue(e));
          lastIndex = rd.entries[rd.entries.length - 1].index;
        }
        if (rd.compacted !== null && rd.compacted.meta.index > snapshotIndex) {
          const upTo = Math.min(rd.compacted.meta.index, lastIndex);
          for (let i = snapshotIndex + 1; i <= upTo; i++) this.entries.remove(i);
          this.state.put('snapshot', encodeSnapshot(rd.compacted));
          snapshotIndex = rd.compacted.meta.index;
          lastIndex = Math.max(lastIndex, snapshotIndex);
        }
        if (rd.hardState !== null) {
          this.state.put('hardState', encodeJson({ term: rd.hardState.term, vote: rd.hardState.vote, commit: rd.hardState.commit }));
        }
      });
    } catch (err) {
      if (err instanceof WaterbearError) throw err;
      const msg = String((err as Error)?.message ?? err);
      if (/MDB_MAP_FULL|ENOSPC|No space/i.test(msg)) {
        throw new WaterbearError('WB_STORE_FULL', 'the raft store is full: free disk space', { cause: err });
      }
      throw new WaterbearError('WB_STORE_IO', 'writing the raft store failed; the node must stop', { cause: err });
    }
    this.snapshotIndex = snapshotIndex;
    this.lastIndex = lastIndex;
  }

  save(rd: ReadyToPersist): Promise<void> {
    try {
      this.saveSync(rd);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.root.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new WaterbearError('WB_STORE_IO', 'the raft store is closed');
  }
}
