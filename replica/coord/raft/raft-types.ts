/**
 * Data types of the embedded Raft: log entries, snapshots, hard state, wire messages and the
 * `Ready` batch that the pure protocol core hands to its driver.
 *
 * Everything here is plain data (no classes) so that it can be persisted (raft-storage-lmdb.ts),
 * encoded on the wire (proto/coord.proto) and compared in the simulation.
 */

/** A Raft member's id, e.g. "w1". The empty string means "nobody" (see {@link NO_NODE}). */
export type NodeId = string;

/** "No node": no vote cast, no known leader. */
export const NO_NODE: NodeId = '';

/** `normal` entries carry application commands (empty data = the leader's no-op); `conf` entries carry a membership change. */
export type EntryType = 'normal' | 'conf';

/** One log entry. Entries are immutable once created; the core never mutates one it has handed out. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** The cluster membership: voters elect and commit; learners only receive the log (catch-up before promotion). */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** One membership change; at most one is in flight at a time (single-server changes, Raft thesis §4.1). */
export type ConfChangeType = 'addVoter' | 'addLearner' | 'removeNode';

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly node: NodeId;
}

/** What a snapshot covers: everything up to and including `index` (whose term is `term`), and the membership as of `index`. */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly membership: Membership;
}

/** An application snapshot (opaque `data`) at a log position. Index 0 is the empty snapshot every node starts with. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** The state that must be on stable storage before any message of the same Ready is sent. */
export interface HardState {
  readonly term: number;
  /** Candidate voted for in `term`, or NO_NODE. */
  readonly vote: NodeId;
  readonly commit: number;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile, informational state: who leads and what we are. Never persisted. */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/**
 * A confirmed linearizable read (ReadIndex). The driver may answer the read with request id
 * `context` once its state machine has applied at least `index`.
 */
export interface ReadState {
  readonly index: number;
  readonly context: string;
}

export const MESSAGE_TYPES = [
  'app',
  'appResp',
  'vote',
  'voteResp',
  'preVote',
  'preVoteResp',
  'heartbeat',
  'heartbeatResp',
  'snap',
  'timeoutNow',
] as const;

/**
 * - `app` / `appResp`: AppendEntries and its answer (also used as a probe and to tell a stale leader the newer term).
 * - `vote` / `voteResp`, `preVote` / `preVoteResp`: elections; pre-vote asks "would you vote for me?" without
 *   anyone changing term (Ongaro's thesis §9.6).
 * - `heartbeat` / `heartbeatResp`: leadership liveness; they also carry ReadIndex contexts.
 * - `snap`: InstallSnapshot for a follower whose next entry was compacted away.
 * - `timeoutNow`: "campaign now" from a leader that is handing off leadership (used when the leader removes itself).
 */
export type MessageType = (typeof MESSAGE_TYPES)[number];

/**
 * A Raft message. Flat like etcd's `raftpb.Message`: fields that do not apply to a type are zero / empty.
 *
 * | type | index | logTerm | entries | commit | reject / rejectHint | context | snapshot |
 * |---|---|---|---|---|---|---|---|
 * | app | prev log index | prev log term | entries | leader commit | | | |
 * | appResp | last matching index, or rejected prev index | term at hint | | | reject, hint index | | |
 * | vote, preVote | candidate last index | candidate last term | | | | "transfer" for a forced campaign | |
 * | voteResp, preVoteResp | | | | | reject | | |
 * | heartbeat | | | | min(match, commit) | | ReadIndex ctx | |
 * | heartbeatResp | | | | | | echoed ctx | |
 * | snap | | | | | | | snapshot |
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly index: number;
  readonly logTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly context: string;
  readonly snapshot: Snapshot | null;
}

const EMPTY_ENTRIES: readonly Entry[] = Object.freeze([]);

/** Builds a message, defaulting every field that does not apply to zero / empty. */
export function makeMessage(
  fields: Pick<Message, 'type' | 'from' | 'to' | 'term'> & Partial<Omit<Message, 'type' | 'from' | 'to' | 'term'>>,
): Message {
  return {
    index: 0,
    logTerm: 0,
    entries: EMPTY_ENTRIES,
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: '',
    snapshot: null,
    ...fields,
  };
}

/**
 * One batch of work from the core to its driver. The driver MUST, in this order:
 * 1. persist, in ONE atomic durable write: `snapshot` (replaces the whole log), `entries` (replace the stored
 *    log from `entries[0].index` on), `compacted` (drop the log up to its index), then `hardState`;
 * 2. only then send `messages` (a vote or an acknowledgement must never leave before it is on disk);
 * 3. restore the state machine from `snapshot` if present, then apply `committedEntries` in order;
 * 4. answer `readStates` once the state machine has applied their index.
 * Batches must be processed one after the other, in the order `ready()` returned them.
 */
export interface Ready {
  /** Present when role or leader changed since the previous Ready. */
  readonly softState: SoftState | null;
  /** Present when term, vote or commit changed since the previous Ready. */
  readonly hardState: HardState | null;
  /** New or rewritten log entries (a contiguous run). */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader: persist it (the log restarts after it) and restore the state machine from it. */
  readonly snapshot: Snapshot | null;
  /** A snapshot taken locally by `compact()`: persist it and drop the log up to its index; do NOT apply it. */
  readonly compacted: Snapshot | null;
  /** Entries now known committed, to apply in order after persisting. */
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
}

/** What stable storage holds; what a node restarts from. */
export interface PersistedState {
  readonly hardState: HardState;
  readonly snapshot: Snapshot;
  /** Entries after `snapshot.meta.index`, contiguous. */
  readonly entries: readonly Entry[];
}

export const EMPTY_MEMBERSHIP: Membership = Object.freeze({ voters: Object.freeze([]), learners: Object.freeze([]) });

export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  meta: Object.freeze({ index: 0, term: 0, membership: EMPTY_MEMBERSHIP }),
  data: new Uint8Array(0),
});

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NO_NODE, commit: 0 });

/** The state of a node that has never run: what a joining node starts from (it waits for a leader to contact it). */
export function emptyPersistedState(): PersistedState {
  return { hardState: EMPTY_HARD_STATE, snapshot: EMPTY_SNAPSHOT, entries: [] };
}

/** True when nothing was ever persisted (a fresh node). */
export function isEmptyPersistedState(s: PersistedState): boolean {
  return s.hardState.term === 0 && s.snapshot.meta.index === 0 && s.entries.length === 0;
}
