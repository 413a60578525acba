/**
 * Tunables of the Raft driver (the I/O around the pure RaftNode), as named constants with their unit,
 * and the validated options that override them.
 *
 * The defaults aim at issue 5's failover budget (kill -9 → first successful client operation ≤ 1 s):
 * a tick every 50 ms and an election timeout of 6 ticks (randomized in [300, 600) ms) give a new Raft
 * leader within about 0.3–0.65 s of the old one dying on loopback (see `npm run bench:coord`), and a
 * lease TTL of 500 ms renewed every 100 ms lets a dead primary's lease run out in ~0.56 s.
 */
import type * as grpc from '@grpc/grpc-js';
import { WaterbearError } from '../../../libos-host/errors.js';
import { resolveRaftOptions, type RaftOptions, type ResolvedRaftOptions } from '../raft/raft-config.js';
import { LEASE_SAFETY_MARGIN_MS, MAX_CLOCK_DRIFT_RATE, resolveLeaseTiming, SYSTEM_MONOTONIC_CLOCK, type LeaseTiming, type MonotonicClock } from '../lease.js';
import type { Logger } from '../../log.js';

/** Wall time between two `tick()` calls of the driver. */
export const DRIVER_TICK_INTERVAL_MS = 50;
/** Election timeout base in ticks used by the coordinator (randomized in [6, 12) ticks = [300, 600) ms). */
export const DRIVER_ELECTION_TICKS = 6;
/** Leader heartbeat interval in ticks (50 ms). */
export const DRIVER_HEARTBEAT_TICKS = 1;
/** The log is compacted under a snapshot of the view state machine every this many applied entries. */
export const SNAPSHOT_EVERY_ENTRIES = 1_000;
/** Default bound on one client operation (propose, read), including retries and leader changes. */
export const REQUEST_TIMEOUT_MS = 3_000;
/** Lease length granted on each keepalive (overrides lease.ts's LEASE_TTL_MS for the embedded Raft). */
export const DEFAULT_LEASE_TTL_MS = 500;
/** How often a holder should renew: TTL / 5, so that several keepalives can be lost without losing the lease. */
export const DEFAULT_LEASE_KEEPALIVE_INTERVAL_MS = 100;
/**
 * After the leader declared a lease expired (and committed its revocation), it refuses that holder's
 * renewals until the view changes or this much time has passed (then it commits an un-revocation).
 * The view change that follows an expiry normally commits within milliseconds; the quarantine only
 * keeps a replica that came back without a view change from being fenced forever.
 */
export const LEASE_REVOCATION_QUARANTINE_MS = 2_000;
/** Longest wait between two grantor checks in awaitLeaseExpiry. */
export const LEASE_POLL_MAX_INTERVAL_MS = 250;
/** Outbound Raft batches buffered per peer stream before further batches are dropped (Raft retries). */
export const MAX_QUEUED_BATCHES_PER_PEER = 256;
/** Delay before re-opening a peer stream that failed. */
export const PEER_RECONNECT_DELAY_MS = 50;
/** Largest gRPC message of the coordination service (snapshots of the view state machine are tiny). */
export const MAX_COORD_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Directory under a member's dataDir that holds its Raft store. */
export const RAFT_STORE_SUBDIR = 'coord-raft';

/** A member of the Raft group: its id and the host:port of its gRPC server. */
export interface RaftPeer {
  readonly id: string;
  readonly address: string;
}

/**
 * Test-only network faults, reachable only through the `unsafeTestNetwork` option of `RaftMember.open`
 * (no config file or CLI flag can set it). Mutable at run time: the test harness partitions and heals.
 */
export interface UnsafeTestNetwork {
  /** Peers this member neither sends to nor accepts anything from (Raft messages and client requests). */
  readonly dropped: Set<string>;
}

/** Options of one Raft member. */
export interface RaftMemberOptions {
  /** This member's id (one of `members`). */
  readonly selfId: string;
  /** Every member of the cluster (replicas and witnesses), with addresses; on first start they are the voters. */
  readonly members: readonly RaftPeer[];
  /** Directory of this member's Raft store (created if missing). */
  readonly storeDir: string;
  /** The cluster name: peers of another cluster are refused with WB_PROTOCOL. */
  readonly clusterName: string;
  /** Credentials for connecting to peers (replica/wire/credentials.ts `channelCredentials`). */
  readonly credentials: grpc.ChannelCredentials;
  /** Raft core options; electionTicks defaults to DRIVER_ELECTION_TICKS, heartbeatTicks to DRIVER_HEARTBEAT_TICKS. */
  readonly raft?: RaftOptions;
  /** ms between ticks (5..1000, default DRIVER_TICK_INTERVAL_MS). */
  readonly tickIntervalMs?: number;
  /** Compact every this many applied entries (1..1,000,000, default SNAPSHOT_EVERY_ENTRIES). */
  readonly snapshotEveryEntries?: number;
  /** Lease timing the grantor side applies (ttl default DEFAULT_LEASE_TTL_MS). */
  readonly lease?: Partial<LeaseTiming>;
  /** ms (0..600,000, default LEASE_REVOCATION_QUARANTINE_MS). */
  readonly leaseRevocationQuarantineMs?: number;
  /** Monotonic clock for leases (default performance.now). */
  readonly clock?: MonotonicClock;
  /** Seed of the election-timeout randomness (default: random). */
  readonly seed?: number;
  readonly log?: Logger;
  /** Test-only; see UnsafeTestNetwork. */
  readonly unsafeTestNetwork?: UnsafeTestNetwork;
}

export interface ResolvedRaftMemberOptions {
  readonly selfId: string;
  readonly members: readonly RaftPeer[];
  readonly storeDir: string;
  readonly clusterName: string;
  readonly credentials: grpc.ChannelCredentials;
  readonly raft: ResolvedRaftOptions;
  readonly tickIntervalMs: number;
  readonly snapshotEveryEntries: number;
  readonly lease: LeaseTiming;
  readonly leaseRevocationQuarantineMs: number;
  readonly clock: MonotonicClock;
  readonly seed: number;
}

const MEMBER_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function invalid(message: string): WaterbearError {
  return new WaterbearError('WB_CONFIG_INVALID', message);
}

/** Checks an integer option in [min, max]; returns `def` when undefined. */
export function intOption(name: string, value: unknown, def: number, min: number, max: number, unit = ''): number {
  if (value === undefined) return def;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer between ${min}${unit} and ${max}${unit}: got ${String(value)}`);
  }
  return value;
}

/** Checks a member list: unique valid ids, non-empty addresses, and `selfId` among them. */
export function validateMembers(selfId: string, members: readonly RaftPeer[]): void {
  if (typeof selfId !== 'string' || !MEMBER_ID.test(selfId)) throw invalid(`selfId must be a member id: got ${JSON.stringify(selfId)}`);
  if (!Array.isArray(members) || members.length === 0) throw invalid('members must list every member of the Raft group');
  const seen = new Set<string>();
  for (const m of members) {
    if (m === null || typeof m !== 'object' || typeof m.id !== 'string' || !MEMBER_ID.test(m.id)) {
      throw invalid(`members: each member needs an id of letters, digits, '.', '_', ':' or '-': got ${JSON.stringify(m)}`);
    }
    if (typeof m.address !== 'string' || m.address.length === 0) throw invalid(`members: member ${m.id} needs an address (host:port)`);
    if (seen.has(m.id)) throw invalid(`members: ${m.id} is listed twice`);
    seen.add(m.id);
  }
  if (!seen.has(selfId)) throw invalid(`selfId ${selfId} is not one of the members (${[...seen].join(', ')})`);
}

/**
 * Validates member options and fills in defaults.
 * @throws WaterbearError WB_CONFIG_INVALID naming the bad option.
 */
export function resolveRaftMemberOptions(o: RaftMemberOptions): ResolvedRaftMemberOptions {
  if (o === null || typeof o !== 'object') throw invalid('raft member options must be an object');
  validateMembers(o.selfId, o.members);
  if (typeof o.storeDir !== 'string' || o.storeDir.length === 0) throw invalid('storeDir must be a directory path');
  if (typeof o.clusterName !== 'string' || o.clusterName.length === 0) throw invalid('clusterName must be a non-empty string');
  if (o.credentials === undefined || o.credentials === null) throw invalid('credentials (grpc.ChannelCredentials) are required');
  const raft = resolveRaftOptions({ electionTicks: DRIVER_ELECTION_TICKS, heartbeatTicks: DRIVER_HEARTBEAT_TICKS, ...(o.raft ?? {}) });
  const lease = resolveLeaseTiming({ ttlMs: DEFAULT_LEASE_TTL_MS, maxDriftRate: MAX_CLOCK_DRIFT_RATE, marginMs: LEASE_SAFETY_MARGIN_MS, ...(o.lease ?? {}) });
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
  if (!Number.isInteger(seed)) throw invalid(`seed must be an integer: got ${String(o.seed)}`);
  return Object.freeze({
    selfId: o.selfId,
    members: Object.freeze(o.members.map((m) => Object.freeze({ id: m.id, address: m.address }))),
    storeDir: o.storeDir,
    clusterName: o.clusterName,
    credentials: o.credentials,
    raft,
    tickIntervalMs: intOption('tickIntervalMs', o.tickIntervalMs, DRIVER_TICK_INTERVAL_MS, 5, 1_000, ' ms'),
    snapshotEveryEntries: intOption('snapshotEveryEntries', o.snapshotEveryEntries, SNAPSHOT_EVERY_ENTRIES, 1, 1_000_000),
    lease,
    leaseRevocationQuarantineMs: intOption('leaseRevocationQuarantineMs', o.leaseRevocationQuarantineMs, LEASE_REVOCATION_QUARANTINE_MS, 0, 600_000, ' ms'),
    clock: o.clock ?? SYSTEM_MONOTONIC_CLOCK,
    seed,
  });
}
