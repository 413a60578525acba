/**
 * Tunables of the embedded Raft, as named constants with their unit, and the validated options
 * that override them. The core counts logical ticks; the driver turns ticks into wall time
 * (one tick every TICK_INTERVAL_MS).
 */
import { WaterbearError } from '../../../libos-host/errors.js';

/** Wall time between two `tick()` calls made by the driver. */
export const TICK_INTERVAL_MS = 50;
/** Base election timeout; the actual one is randomized in [ELECTION_TICKS, 2 × ELECTION_TICKS). 10 ticks = 500 ms. */
export const ELECTION_TICKS = 10;
/** A leader sends heartbeats every HEARTBEAT_TICKS ticks. 1 tick = 50 ms. */
export const HEARTBEAT_TICKS = 1;
/** At most this many entries in one AppendEntries message. */
export const MAX_APPEND_ENTRIES = 256;
/** At most this many bytes of entry data in one AppendEntries message (at least one entry is always sent). */
export const MAX_APPEND_BYTES = 1024 * 1024;
/** At most this many unacknowledged AppendEntries messages per follower while pipelining. */
export const MAX_INFLIGHT_APPENDS = 64;
/** A leader re-sends a snapshot that was not acknowledged after this many ticks. 20 ticks = 1 s. */
export const SNAPSHOT_RETRY_TICKS = 2 * ELECTION_TICKS;

/** Options of a Raft node. Every field is optional and defaults to the constant of the same name. */
export interface RaftOptions {
  /** Election timeout base, in ticks (2..10000, greater than heartbeatTicks). */
  readonly electionTicks?: number;
  /** Heartbeat interval, in ticks (1..electionTicks-1). */
  readonly heartbeatTicks?: number;
  /** Run a pre-vote round before a real election (thesis §9.6). Default true. */
  readonly preVote?: boolean;
  /** A leader that has not heard from a quorum for an election timeout steps down; voters ignore elections while they hear a leader. Default true. */
  readonly checkQuorum?: boolean;
  /** Entries per AppendEntries message (1..100000). */
  readonly maxAppendEntries?: number;
  /** Entry bytes per AppendEntries message (1..64 MiB). */
  readonly maxAppendBytes?: number;
  /** Unacknowledged AppendEntries per follower (1..10000). */
  readonly maxInflightAppends?: number;
  /** Ticks before an unacknowledged snapshot is sent again (1..100000). */
  readonly snapshotRetryTicks?: number;
}

export type ResolvedRaftOptions = { readonly [K in keyof RaftOptions]-?: NonNullable<RaftOptions[K]> };

const INTEGER_RANGES: Record<string, readonly [number, number]> = {
  electionTicks: [2, 10_000],
  heartbeatTicks: [1, 10_000],
  maxAppendEntries: [1, 100_000],
  maxAppendBytes: [1, 64 * 1024 * 1024],
  maxInflightAppends: [1, 10_000],
  snapshotRetryTicks: [1, 100_000],
};
const BOOLEAN_KEYS = new Set(['preVote', 'checkQuorum']);

function invalid(message: string): WaterbearError {
  return new WaterbearError('WB_CONFIG_INVALID', message);
}

/**
 * Validates options and fills in defaults.
 * @throws WaterbearError WB_CONFIG_INVALID on an unknown key (including `unsafeTestBugs`, which can only be
 *   given to the RaftNode constructor), a wrong type or an out-of-range value.
 */
export function resolveRaftOptions(options: RaftOptions = {}): ResolvedRaftOptions {
  if (options === null || typeof options !== 'object') throw invalid(`raft options must be an object: got ${String(options)}`);
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const range = INTEGER_RANGES[key];
    if (range !== undefined) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < range[0] || value > range[1]) {
        throw invalid(`raft option ${key} must be an integer between ${range[0]} and ${range[1]}: got ${String(value)}`);
      }
    } else if (BOOLEAN_KEYS.has(key)) {
      if (typeof value !== 'boolean') throw invalid(`raft option ${key} must be true or false: got ${String(value)}`);
    } else {
      throw invalid(`unknown raft option ${JSON.stringify(key)}; known options: ${[...Object.keys(INTEGER_RANGES), ...BOOLEAN_KEYS].join(', ')}`);
    }
  }
  const electionTicks = options.electionTicks ?? ELECTION_TICKS;
  const resolved: ResolvedRaftOptions = {
    electionTicks,
    heartbeatTicks: options.heartbeatTicks ?? HEARTBEAT_TICKS,
    preVote: options.preVote ?? true,
    checkQuorum: options.checkQuorum ?? true,
    maxAppendEntries: options.maxAppendEntries ?? MAX_APPEND_ENTRIES,
    maxAppendBytes: options.maxAppendBytes ?? MAX_APPEND_BYTES,
    maxInflightAppends: options.maxInflightAppends ?? MAX_INFLIGHT_APPENDS,
    snapshotRetryTicks: options.snapshotRetryTicks ?? 2 * electionTicks,
  };
  if (resolved.heartbeatTicks >= resolved.electionTicks) {
    throw invalid(
      `raft option heartbeatTicks must be less than electionTicks: got heartbeatTicks ${resolved.heartbeatTicks}, electionTicks ${resolved.electionTicks}`,
    );
  }
  return Object.freeze(resolved);
}
