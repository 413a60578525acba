/**
 * The coordinator on the embedded Raft group: `Coordinator` (coordinator.ts) over one local Raft member
 * (raft-driver/raft-member.ts) that every replica and witness runs.
 *
 * - `readView`: ReadIndex through the leader, then the local state machine once it has applied that
 *   index — linearizable from any member.
 * - `proposeView`: a compare-and-set entry (`encodeViewProposal`) proposed through the leader.
 * - `watchViews`: every view this member applies, in order.
 * - leases (lease.ts): the holder side (`LeaseHolder`) lives here, per replica id; the grantor side is the
 *   Raft leader's `LeaseTable` (a new leader treats every lease as renewed when it takes over). A
 *   keepalive is recorded by the leader on receipt and confirmed only after a heartbeat round proved it
 *   still leads. `awaitLeaseExpiry` polls the leader until its grantor bound has passed, and the leader
 *   commits a revocation before saying so (raft-driver/raft-lease-records.ts explains why).
 *
 * Timeouts: every operation is bounded (`requestTimeoutMs`; a keepalive by the lease TTL, since a later
 * confirmation would be useless) and fails with WB_COORD_UNAVAILABLE or WB_TIMEOUT instead of hanging.
 */
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isWaterbearError, WaterbearError } from '../../libos-host/errors.js';
import type { Logger } from '../log.js';
import {
  decodeView,
  validateViewProposal,
  viewConflict,
  type Coordinator,
  type LeaseGrant,
  type View,
} from './coordinator.js';
import {
  holderDeadlineMs,
  LeaseHolder,
  LEASE_SAFETY_MARGIN_MS,
  MAX_CLOCK_DRIFT_RATE,
  resolveLeaseTiming,
  SYSTEM_MONOTONIC_CLOCK,
  type LeaseTiming,
  type MonotonicClock,
} from './lease.js';
import {
  DEFAULT_LEASE_TTL_MS,
  DRIVER_ELECTION_TICKS,
  DRIVER_HEARTBEAT_TICKS,
  DRIVER_TICK_INTERVAL_MS,
  intOption,
  LEASE_POLL_MAX_INTERVAL_MS,
  RAFT_STORE_SUBDIR,
  REQUEST_TIMEOUT_MS,
  validateMembers,
  type RaftPeer,
  type UnsafeTestNetwork,
} from './raft-driver/raft-driver-options.js';
import { RaftMember } from './raft-driver/raft-member.js';
import { registerRaftService, startRaftServer, type RaftServer } from './raft-driver/raft-service.js';
import { currentView, encodeViewProposal } from './view-state-machine.js';

/** Options of `createRaftCoordinator`. Every tunable is optional and validated. */
export interface RaftCoordinatorOptions {
  /** This member's id: a replica or witness id of the cluster file. */
  readonly selfId: string;
  /** Every member (replicas and witnesses) with its gRPC address; all are voters when the group is created. */
  readonly members: readonly RaftPeer[];
  /** The member's data directory; the Raft store lives in `<dataDir>/coord-raft`. */
  readonly dataDir: string;
  /** The cluster name: members of other clusters are refused (WB_PROTOCOL). */
  readonly clusterName: string;
  /** Credentials for calling peers (replica/wire/credentials.ts `channelCredentials`). */
  readonly credentials: grpc.ChannelCredentials;
  /** An existing gRPC server to add the coordination service to (the replica's). Omit to run a server of our own. */
  readonly server?: grpc.Server;
  /** Standalone mode: where our own server listens (default: this member's address in `members`). */
  readonly listenAddress?: string;
  /** Standalone mode: server credentials (replica/wire/credentials.ts `serverCredentials`); default plaintext. */
  readonly serverCredentials?: grpc.ServerCredentials;
  /** Lease granted per keepalive, ms (50 ms..60 s and at least 2 ticks; default DEFAULT_LEASE_TTL_MS = 500). */
  readonly leaseTtlMs?: number;
  /** Clock rate error bound (0..0.1, default MAX_CLOCK_DRIFT_RATE = 0.01). */
  readonly leaseMaxDriftRate?: number;
  /** Lease safety margin, ms (0..ttl/4, default LEASE_SAFETY_MARGIN_MS = 50). */
  readonly leaseMarginMs?: number;
  /** See raft-driver-options.ts LEASE_REVOCATION_QUARANTINE_MS (default 2000). */
  readonly leaseRevocationQuarantineMs?: number;
  /** Bound on readView / proposeView / awaitLeaseExpiry's individual checks, ms (10..600,000; default REQUEST_TIMEOUT_MS = 3000). */
  readonly requestTimeoutMs?: number;
  /** ms between Raft ticks (5..1000; default DRIVER_TICK_INTERVAL_MS = 50). */
  readonly tickIntervalMs?: number;
  /** Election timeout base in ticks, randomized in [n, 2n) (default DRIVER_ELECTION_TICKS = 6). */
  readonly electionTicks?: number;
  /** Leader heartbeat interval in ticks (default DRIVER_HEARTBEAT_TICKS = 1). */
  readonly heartbeatTicks?: number;
  /** Compact the log every this many applied entries (default 1000). */
  readonly snapshotEveryEntries?: number;
  /** Monotonic clock for leases (default performance.now); tests inject virtual time. */
  readonly clock?: MonotonicClock;
  /** Seed of the election randomness (default random). */
  readonly seed?: number;
  readonly log?: Logger;
  /** Test-only network faults (see UnsafeTestNetwork); never set from a config file or flag. */
  readonly unsafeTestNetwork?: UnsafeTestNetwork;
}

const REPLICA_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function checkReplicaId(id: string): void {
  if (typeof id !== 'string' || !REPLICA_ID.test(id)) throw new WaterbearError('WB_CONFIG_INVALID', `replica id must be letters, digits, '.', '_', ':' or '-': got ${JSON.stringify(id)}`);
}

function sameView(a: View, b: View): boolean {
  return a.view === b.view && a.primary === b.primary && a.backups.length === b.backups.length && a.backups.every((x, i) => x === b.backups[i]);
}

/**
 * Validates the lease options. @throws WaterbearError WB_CONFIG_INVALID.
 */
export function resolveRaftLeaseTiming(o: Pick<RaftCoordinatorOptions, 'leaseTtlMs' | 'leaseMaxDriftRate' | 'leaseMarginMs' | 'tickIntervalMs'>): LeaseTiming {
  const tick = o.tickIntervalMs ?? DRIVER_TICK_INTERVAL_MS;
  const ttlMs = o.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < 50 || ttlMs > 60_000 || ttlMs < 2 * tick) {
    throw new WaterbearError('WB_CONFIG_INVALID', `leaseTtlMs must be between 50 ms and 60 s and at least 2 ticks (${2 * tick} ms): got ${String(ttlMs)}`);
  }
  return resolveLeaseTiming({ ttlMs, maxDriftRate: o.leaseMaxDriftRate ?? MAX_CLOCK_DRIFT_RATE, marginMs: o.leaseMarginMs ?? LEASE_SAFETY_MARGIN_MS });
}

export class RaftCoordinator implements Coordinator {
  /** The lease timing in force (holder and grantor side). */
  readonly leaseTiming: LeaseTiming;
  readonly requestTimeoutMs: number;
  private readonly holders = new Map<string, LeaseHolder>();
  private readonly clock: MonotonicClock;
  private readonly closing = new AbortController();
  private closed: Promise<void> | null = null;

  /** Use `createRaftCoordinator`. */
  constructor(
    /** The local Raft member (exposed for status, tests and benchmarks). */
    readonly member: RaftMember,
    options: { leaseTiming: LeaseTiming; requestTimeoutMs: number; clock: MonotonicClock },
    private readonly ownServer: RaftServer | null,
  ) {
    this.leaseTiming = options.leaseTiming;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.clock = options.clock;
  }

  /** The port of our own server in standalone mode, else null. */
  get port(): number | null {
    return this.ownServer?.port ?? null;
  }

  /**
   * The current committed view, read linearizably, or null before the first one.
   * @throws WaterbearError WB_COORD_UNAVAILABLE when no leader answers; WB_TIMEOUT.
   */
  async readView(): Promise<View | null> {
    await this.member.linearizableRead(this.requestTimeoutMs);
    return currentView(this.member.sm);
  }

  /**
   * Installs `next` iff the current view number is `expectedView` (a CAS entry through the leader).
   * @throws WaterbearError WB_VIEW_CONFLICT (details.current); WB_CONFIG_INVALID; WB_COORD_UNAVAILABLE / WB_TIMEOUT
   *   when the outcome is unknown (read before retrying).
   */
  async proposeView(expectedView: number, next: View): Promise<View> {
    validateViewProposal(expectedView, next);
    const state = { ambiguous: false };
    const applied = await this.member.propose(encodeViewProposal(expectedView, next), this.requestTimeoutMs, state);
    const r = applied.result;
    if (r.ok) return decodeView(r.value);
    if (r.reason === 'conflict') {
      const current = r.currentValue === null ? null : decodeView(r.currentValue);
      // An earlier attempt whose answer was lost may have installed exactly `next`: that is our success.
      if (state.ambiguous && current !== null && sameView(current, next)) return current;
      throw viewConflict(current);
    }
    throw new WaterbearError('WB_PROTOCOL', 'the view proposal was applied as malformed; this member and the leader disagree on the command format');
  }

  /** Calls `onView` with the current view (if any) and then every committed view in increasing order. */
  watchViews(onView: (v: View) => void): () => void {
    let last = 0;
    let active = true;
    const deliver = (v: View): void => {
      if (!active || v.view <= last) return;
      last = v.view;
      onView(v);
    };
    const unsubscribe = this.member.onView(deliver);
    queueMicrotask(() => {
      try {
        const v = this.member.localView();
        if (v !== null) deliver(v);
      } catch (err) {
        this.member.log.error({ err: (err as Error).message }, 'the committed view is malformed');
      }
    });
    return () => {
      active = false;
      unsubscribe();
    };
  }

  private holder(replicaId: string): LeaseHolder {
    let h = this.holders.get(replicaId);
    if (h === undefined) {
      h = new LeaseHolder(this.clock, this.leaseTiming);
      this.holders.set(replicaId, h);
    }
    return h;
  }

  /**
   * Renews `replicaId`'s lease through the leader. Bounded by the lease TTL.
   * @throws WaterbearError WB_STALE_VIEW (details.revoked) when the lease was revoked and no new view followed yet;
   *   WB_COORD_UNAVAILABLE / WB_TIMEOUT; WB_CONFIG_INVALID when members disagree on the lease timing.
   */
  async keepAlive(replicaId: string): Promise<LeaseGrant> {
    checkReplicaId(replicaId);
    const holder = this.holder(replicaId);
    const sentAtMs = holder.beginRenewal();
    const view = await this.member.keepAlive(replicaId, this.leaseTiming, this.leaseTiming.ttlMs);
    holder.confirm(sentAtMs);
    return Object.freeze({ replicaId, sentAtMs, ttlMs: this.leaseTiming.ttlMs, view, validUntilMs: holderDeadlineMs(sentAtMs, this.leaseTiming) });
  }

  lastConfirmedMs(replicaId: string): number | null {
    return this.holders.get(replicaId)?.lastConfirmedMs ?? null;
  }

  leaseExpired(replicaId: string): boolean {
    return this.holders.get(replicaId)?.expired() ?? true;
  }

  /**
   * Resolves once the Raft leader's grantor bound for `replicaId` has passed without a renewal (and
   * the leader has committed the lease's revocation). Keeps asking through leader changes.
   * @throws WaterbearError WB_TIMEOUT when `signal` aborts first; WB_COORD_UNAVAILABLE when closed.
   */
  async awaitLeaseExpiry(replicaId: string, signal?: AbortSignal): Promise<void> {
    checkReplicaId(replicaId);
    const both = signal === undefined ? this.closing.signal : AbortSignal.any([signal, this.closing.signal]);
    const aborted = (): WaterbearError =>
      signal?.aborted === true
        ? new WaterbearError('WB_TIMEOUT', `gave up waiting for the lease of replica ${replicaId} to expire`, { cause: signal.reason })
        : new WaterbearError('WB_COORD_UNAVAILABLE', 'the coordinator was closed');
    for (;;) {
      if (both.aborted) throw aborted();
      let waitMs: number;
      try {
        const r = await this.member.leaseExpiry(replicaId, this.leaseTiming, this.requestTimeoutMs);
        if (r.expired) return;
        waitMs = Math.min(LEASE_POLL_MAX_INTERVAL_MS, Math.max(1, Math.ceil(r.remainingMs) + 1));
      } catch (err) {
        if (!isWaterbearError(err) || !(err.code === 'WB_COORD_UNAVAILABLE' || err.code === 'WB_TIMEOUT' || err.code === 'WB_NOT_LEADER')) throw err;
        if (this.member.isClosed) throw aborted();
        waitMs = this.member.options.tickIntervalMs;
      }
      try {
        await sleep(waitMs, undefined, { signal: both });
      } catch {
        throw aborted();
      }
    }
  }

  /** See Coordinator.onFatal: the local member stopped after a store failure. */
  onFatal(listener: (err: Error) => void): () => void {
    return this.member.onFatal(listener);
  }

  /** Stops the local member (and our own server in standalone mode). Leases are not released: they run out. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing.abort();
      await this.ownServer?.close();
      await this.member.close();
    })();
    return this.closed;
  }
}

/**
 * Starts this process's member of the coordinator's Raft group and returns the coordinator over it.
 * On first start (empty store) the group is bootstrapped with every member of `members` as a voter;
 * afterwards the member restarts from its LMDB store. With `server`, the coordination service is added to
 * that (replica) server, which the caller binds; without it, a server of our own listens on
 * `listenAddress` (default: our address in `members`). Resolves once the member runs — not once a leader
 * exists: the first operations wait for the election.
 * @throws WaterbearError WB_CONFIG_INVALID on bad options; WB_STORE_IO / WB_CHECKPOINT_VERSION when the store
 *   cannot be used; WB_LISTEN_FAILED when the standalone server cannot listen.
 */
export async function createRaftCoordinator(options: RaftCoordinatorOptions): Promise<RaftCoordinator> {
  if (options === null || typeof options !== 'object') throw new WaterbearError('WB_CONFIG_INVALID', 'raft coordinator options must be an object');
  validateMembers(options.selfId, options.members);
  if (typeof options.dataDir !== 'string' || options.dataDir.length === 0) throw new WaterbearError('WB_CONFIG_INVALID', 'dataDir must be a directory path');
  const leaseTiming = resolveRaftLeaseTiming(options);
  const requestTimeoutMs = intOption('requestTimeoutMs', options.requestTimeoutMs, REQUEST_TIMEOUT_MS, 10, 600_000, ' ms');
  const clock = options.clock ?? SYSTEM_MONOTONIC_CLOCK;
  const member = RaftMember.open({
    selfId: options.selfId,
    members: options.members,
    storeDir: join(options.dataDir, RAFT_STORE_SUBDIR),
    clusterName: options.clusterName,
    credentials: options.credentials,
    raft: { electionTicks: options.electionTicks ?? DRIVER_ELECTION_TICKS, heartbeatTicks: options.heartbeatTicks ?? DRIVER_HEARTBEAT_TICKS },
    tickIntervalMs: options.tickIntervalMs,
    snapshotEveryEntries: options.snapshotEveryEntries,
    lease: leaseTiming,
    leaseRevocationQuarantineMs: options.leaseRevocationQuarantineMs,
    clock,
    seed: options.seed,
    log: options.log,
    unsafeTestNetwork: options.unsafeTestNetwork,
  });
  let ownServer: RaftServer | null = null;
  try {
    if (options.server !== undefined) {
      registerRaftService(options.server, member);
    } else {
      const address = options.listenAddress ?? options.members.find((m) => m.id === options.selfId)?.address ?? '';
      ownServer = await startRaftServer(member, address, options.serverCredentials ?? grpc.ServerCredentials.createInsecure());
    }
  } catch (err) {
    await member.close();
    throw err;
  }
  return new RaftCoordinator(member, { leaseTiming, requestTimeoutMs, clock }, ownServer);
}
