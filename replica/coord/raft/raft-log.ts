/**
 * The in-memory Raft log: a snapshot (everything up to `snapshot.meta.index`, compacted) followed by
 * the entries after it, plus the commit index and the bookkeeping of what has not been handed to
 * the driver for persistence yet.
 */
import { decodeConfEntry } from './raft-membership.js';
import { invariant } from './raft-invariant.js';
import type { Entry, Membership, Snapshot } from './raft-types.js';

export class RaftLog {
  private snap: Snapshot;
  /** entries[i].index === snap.meta.index + 1 + i */
  private ents: Entry[];
  /** Indexes of the conf entries in `ents`, ascending. */
  private confIndexes: number[];
  private committedIndex: number;
  /** First index not yet handed out for persistence. */
  private unstableFrom: number;
  private snapshotToPersist: Snapshot | null = null;
  private compactionToPersist: Snapshot | null = null;

  /**
   * @param snapshot the persisted snapshot
   * @param entries the persisted entries after it, contiguous
   * @param committed the persisted commit index
   */
  constructor(snapshot: Snapshot, entries: readonly Entry[], committed: number) {
    this.snap = snapshot;
    this.ents = [...entries];
    entries.forEach((e, i) => invariant(e.index === snapshot.meta.index + 1 + i, `log entry ${e.index} out of place after snapshot ${snapshot.meta.index}`));
    for (let i = 1; i < entries.length; i++) invariant(entries[i].term >= entries[i - 1].term, `log terms decrease at index ${entries[i].index}`);
    this.confIndexes = entries.filter((e) => e.type === 'conf').map((e) => e.index);
    invariant(committed >= snapshot.meta.index && committed <= this.lastIndex(), `commit ${committed} outside [${snapshot.meta.index}, ${this.lastIndex()}]`);
    this.committedIndex = committed;
    this.unstableFrom = this.lastIndex() + 1;
  }

  get committed(): number {
    return this.committedIndex;
  }

  get snapshot(): Snapshot {
    return this.snap;
  }

  snapshotIndex(): number {
    return this.snap.meta.index;
  }

  /** First index still present as an entry (may be lastIndex()+1 when the log is empty). */
  firstIndex(): number {
    return this.snap.meta.index + 1;
  }

  lastIndex(): number {
    return this.snap.meta.index + this.ents.length;
  }

  lastTerm(): number {
    return this.ents.length > 0 ? this.ents[this.ents.length - 1].term : this.snap.meta.term;
  }

  /** The term of the entry at `index`; the snapshot's term at its index; undefined when compacted away or beyond the end. */
  termAt(index: number): number | undefined {
    const s = this.snap.meta.index;
    if (index === s) return this.snap.meta.term;
    if (index < s || index > s + this.ents.length) return undefined;
    return this.ents[index - s - 1].term;
  }

  /** The entry at `index`, or undefined when compacted or beyond the end. */
  entryAt(index: number): Entry | undefined {
    const s = this.snap.meta.index;
    if (index <= s || index > s + this.ents.length) return undefined;
    return this.ents[index - s - 1];
  }

  matchTerm(index: number, term: number): boolean {
    const t = this.termAt(index);
    return t !== undefined && t === term;
  }

  /** §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Entries from `lo` on, at most `maxCount` of them and about `maxBytes` of data (at least one).
   * Undefined when `lo` was compacted away (the caller must send the snapshot instead).
   */
  slice(lo: number, maxCount: number, maxBytes: number): Entry[] | undefined {
    if (lo < this.firstIndex()) return undefined;
    const start = lo - this.snap.meta.index - 1;
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = start; i < this.ents.length && out.length < maxCount; i++) {
      bytes += this.ents[i].data.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(this.ents[i]);
    }
    return out;
  }

  /** Entries in [lo, hi] (inclusive); all of them must be present. */
  between(lo: number, hi: number): Entry[] {
    if (hi < lo) return [];
    invariant(lo >= this.firstIndex() && hi <= this.lastIndex(), `entries [${lo}, ${hi}] not in log [${this.firstIndex()}, ${this.lastIndex()}]`);
    const s = this.snap.meta.index + 1;
    return this.ents.slice(lo - s, hi - s + 1);
  }

  /**
   * Appends `entries` (contiguous), first truncating any entries at or after `entries[0].index`.
   * Never truncates committed entries.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    invariant(first > this.committedIndex, `truncating committed entry ${first} (commit ${this.committedIndex})`);
    invariant(first <= this.lastIndex() + 1, `gap in log: appending ${first} after ${this.lastIndex()}`);
    this.ents.length = first - this.snap.meta.index - 1;
    while (this.confIndexes.length > 0 && this.confIndexes[this.confIndexes.length - 1] >= first) this.confIndexes.pop();
    for (const e of entries) {
      invariant(e.index === this.lastIndex() + 1, `non-contiguous entries at ${e.index}`);
      invariant(e.term >= this.lastTerm(), `entry ${e.index} has term ${e.term} lower than the previous entry's ${this.lastTerm()}`);
      this.ents.push(e);
      if (e.type === 'conf') this.confIndexes.push(e.index);
    }
    if (first < this.unstableFrom) this.unstableFrom = first;
  }

  /**
   * The follower side of AppendEntries. When our entry at `prevIndex` has `prevTerm`, appends the
   * entries that are new or conflicting, advances the commit to min(leaderCommit, last new index)
   * and returns the last new index; otherwise returns undefined.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) this.append(entries.slice(conflict - entries[0].index));
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** Index of the first entry of `entries` that is missing or has another term in our log, 0 when all match. */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term`, with that term.
   * When the term at such an index is unknown (compacted), returns [index, 0].
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (let i = index; ; i--) {
      const t = this.termAt(i);
      if (t === undefined) return [i, 0];
      if (t <= term) return [i, t];
    }
  }

  /** Advances the commit index (never backwards). */
  commitTo(index: number): void {
    if (index <= this.committedIndex) return;
    invariant(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committedIndex = index;
  }

  /** Replaces the whole log by a snapshot received from the leader (to be persisted and applied). */
  restore(snapshot: Snapshot): void {
    invariant(snapshot.meta.index > this.committedIndex, `restoring snapshot ${snapshot.meta.index} at or below commit ${this.committedIndex}`);
    this.snap = snapshot;
    this.ents = [];
    this.confIndexes = [];
    this.committedIndex = snapshot.meta.index;
    this.unstableFrom = snapshot.meta.index + 1;
    this.snapshotToPersist = snapshot;
    this.compactionToPersist = null;
  }

  /** Compacts the log up to `index` (committed and applied) under a locally taken snapshot. */
  compact(index: number, data: Uint8Array): void {
    invariant(index > this.snap.meta.index && index <= this.committedIndex, `compacting to ${index} outside (${this.snap.meta.index}, ${this.committedIndex}]`);
    const term = this.termAt(index);
    invariant(term !== undefined, `no term for ${index}`);
    const membership = this.membershipAt(index).membership;
    const drop = index - this.snap.meta.index;
    this.ents = this.ents.slice(drop);
    this.confIndexes = this.confIndexes.filter((i) => i > index);
    this.snap = { meta: { index, term, membership }, data };
    this.compactionToPersist = this.snap;
  }

  /** The latest membership at or before `index`, and the index of the entry (or snapshot) that set it. */
  membershipAt(index: number): { membership: Membership; index: number; term: number } {
    for (let k = this.confIndexes.length - 1; k >= 0; k--) {
      const ci = this.confIndexes[k];
      if (ci <= index) {
        const e = this.entryAt(ci);
        invariant(e !== undefined, `conf entry ${ci} missing`);
        return { membership: decodeConfEntry(e.data).membership, index: ci, term: e.term };
      }
    }
    return { membership: this.snap.meta.membership, index: this.snap.meta.index, term: this.snap.meta.term };
  }

  /** Index of the latest conf entry, or the snapshot index when there is none after it. */
  lastConfIndex(): number {
    return this.confIndexes.length > 0 ? this.confIndexes[this.confIndexes.length - 1] : this.snap.meta.index;
  }

  /** True when something must be handed out for persistence. */
  hasUnpersisted(): boolean {
    return this.unstableFrom <= this.lastIndex() || this.snapshotToPersist !== null || this.compactionToPersist !== null;
  }

  /** Hands out the entries not yet given to the driver for persistence. */
  takeUnstableEntries(): Entry[] {
    if (this.unstableFrom > this.lastIndex()) return [];
    const out = this.between(this.unstableFrom, this.lastIndex());
    this.unstableFrom = this.lastIndex() + 1;
    return out;
  }

  takeSnapshotToPersist(): Snapshot | null {
    const s = this.snapshotToPersist;
    this.snapshotToPersist = null;
    return s;
  }

  takeCompactionToPersist(): Snapshot | null {
    const s = this.compactionToPersist;
    this.compactionToPersist = null;
    return s;
  }
}
