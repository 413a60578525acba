/**
 * Stable storage for a Raft node: the interface every backend implements, the pure function that
 * applies one Ready to a persisted state, and an in-memory backend for tests and the simulation.
 */
import { invariant } from './raft-invariant.js';
import type { Entry, HardState, PersistedState, Ready, Snapshot } from './raft-types.js';
import { emptyPersistedState } from './raft-types.js';

/** The part of a Ready that must reach stable storage. */
export type ReadyToPersist = Pick<Ready, 'hardState' | 'entries' | 'snapshot' | 'compacted'>;

/** Durable storage of one node's Raft state. */
export interface RaftStorage {
  /** The state persisted so far (an empty state for a new node). */
  load(): PersistedState;
  /**
   * Persists one Ready atomically: after a crash either all of it or none of it is there.
   * Resolves only once it is durable; the driver sends the Ready's messages after that.
   */
  save(rd: ReadyToPersist): Promise<void>;
  close(): Promise<void>;
}

/** True when the Ready has nothing to persist. */
export function nothingToPersist(rd: ReadyToPersist): boolean {
  return rd.hardState === null && rd.entries.length === 0 && rd.snapshot === null && rd.compacted === null;
}

/**
 * The persisted state after applying one Ready, in the order the Ready contract defines:
 * received snapshot (replaces the log), entries (replace the log from their first index),
 * local compaction (drops the log up to its index), hard state.
 */
export function applyReadyToState(state: PersistedState, rd: ReadyToPersist): PersistedState {
  let snapshot: Snapshot = state.snapshot;
  let entries: Entry[] = [...state.entries];
  let hardState: HardState = state.hardState;
  if (rd.snapshot !== null) {
    snapshot = rd.snapshot;
    entries = [];
  }
  if (rd.entries.length > 0) {
    const first = rd.entries[0].index;
    const keep = first - snapshot.meta.index - 1;
    invariant(keep >= 0 && keep <= entries.length, `persisting entries from ${first} after snapshot ${snapshot.meta.index} and ${entries.length} entries`);
    entries = entries.slice(0, keep).concat(rd.entries);
  }
  if (rd.compacted !== null && rd.compacted.meta.index > snapshot.meta.index) {
    const drop = rd.compacted.meta.index - snapshot.meta.index;
    entries = entries.slice(drop);
    snapshot = rd.compacted;
  }
  if (rd.hardState !== null) hardState = rd.hardState;
  return { hardState, snapshot, entries };
}

/** In-memory storage: "durable" until the object is dropped. Used by unit tests and the simulation. */
export class MemoryRaftStorage implements RaftStorage {
  private state: PersistedState;
  /** Number of save() calls that persisted something. */
  saves = 0;

  constructor(initial: PersistedState = emptyPersistedState()) {
    this.state = initial;
  }

  load(): PersistedState {
    return { hardState: this.state.hardState, snapshot: this.state.snapshot, entries: [...this.state.entries] };
  }

  /** Synchronous save, for drivers (like the simulation) that run without an event loop. */
  saveSync(rd: ReadyToPersist): void {
    if (nothingToPersist(rd)) return;
    this.state = applyReadyToState(this.state, rd);
    this.saves++;
  }

  save(rd: ReadyToPersist): Promise<void> {
    this.saveSync(rd);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
