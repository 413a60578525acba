/**
 * Liveness leases on etcd, with the clock rules of lease.ts.
 *
 * etcd is the grantor: it renews a lease when it processes a keepalive (at or after the holder's send)
 * and revokes it, deleting the keys attached to it, once the TTL has run out on the etcd leader's
 * monotonic clock. The holder must not trust etcd3's view of "still alive" (a lost lease is noticed
 * late, or never while disconnected): it reads its own monotonic clock BEFORE each keepalive and, once
 * etcd confirms, may act until `sentAt + ttl·(1−ρ) − margin` (`LeaseHolder`).
 *
 * Another client waiting for the holder to be surely fenced (`awaitLeaseExpiry`) waits for the lease
 * key to be gone (etcd revoked the lease, at ≥ renewal + ttl on etcd's clock) and then for the rest of
 * lease.ts's grantor bound, `renewal + ttl·(1+ρ) + margin` on etcd's clock: at most `ttl·ρ + margin` of
 * etcd's time after the revocation, which is at most `(ttl·ρ + margin)·(1+ρ)/(1−ρ)` on the waiter's
 * clock (`etcdGrantorTailMs`). lease.ts proves the holder has stopped by then, in real time, whatever the
 * clock rates within ρ, and without comparing any two clocks.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WaterbearError } from '../../../libos-host/errors.js';
import type { LeaseGrant } from '../coordinator.js';
import { holderDeadlineMs, LeaseHolder, type LeaseTiming, type MonotonicClock } from '../lease.js';
import type { Deadline } from './etcd-client.js';

/**
 * How long (waiter's clock) to wait after seeing a lease key gone before the grantor bound of lease.ts
 * has surely passed: the rest of the bound on etcd's clock, `ttl·ρ + margin`, converted to the
 * slowest etcd clock and the fastest waiter clock.
 */
export function etcdGrantorTailMs(timing: LeaseTiming): number {
  const rho = timing.maxDriftRate;
  return ((timing.ttlMs * rho + timing.marginMs) * (1 + rho)) / (1 - rho);
}

/** The etcd round trips of the holder side, injected by the coordinator. All share one deadline per renewal. */
export interface EtcdLeaseOps {
  /** A fresh deadline for one renewal. */
  deadline(): Deadline;
  /** Grants a new etcd lease of `ttlSeconds`; resolves with its id and the TTL etcd granted. */
  grant(ttlSeconds: number, deadline: Deadline): Promise<{ id: string; ttlSeconds: number }>;
  /** One keepalive; resolves with etcd's TTL (≤ 0 when etcd no longer has the lease). */
  keepalive(leaseId: string, deadline: Deadline): Promise<number>;
  /**
   * Makes sure the replica's lease key exists attached to `leaseId` (puts it when not) and reads the
   * current view number (0 when none), in one linearizable transaction.
   * @throws WaterbearError with details.leaseNotFound when etcd no longer has the lease.
   */
  attachKeyAndReadView(leaseId: string, deadline: Deadline): Promise<number>;
  /** Reports an observability event (never throws). */
  report(event: string, details: Record<string, unknown>): void;
}

/**
 * The holder side of one replica's lease. A renewal asked for while another is in flight joins it
 * (its grant counts from the earlier clock reading, which is only more conservative), so every call
 * is bounded by one request timeout and at most one etcd lease is granted at a time.
 */
export class EtcdLeaseKeeper {
  readonly holder: LeaseHolder;
  private leaseId: string | null = null;
  private inFlight: Promise<LeaseGrant> | null = null;

  constructor(
    readonly replicaId: string,
    private readonly ops: EtcdLeaseOps,
    clock: MonotonicClock,
    private readonly timing: LeaseTiming,
  ) {
    this.holder = new LeaseHolder(clock, timing);
  }

  /** The etcd lease currently used (its decimal id, as etcd returns it), or null. */
  get currentLeaseId(): string | null {
    return this.leaseId;
  }

  /**
   * Renews the lease (granting a new etcd lease when there is none or etcd lost it) and confirms it
   * only once etcd has acknowledged and the lease key is attached.
   * @throws WaterbearError WB_COORD_UNAVAILABLE / WB_TIMEOUT / WB_PERMISSION; the lease then runs out.
   */
  renew(): Promise<LeaseGrant> {
    if (this.inFlight !== null) return this.inFlight;
    const run: Promise<LeaseGrant> = this.renewNow().finally(() => {
      if (this.inFlight === run) this.inFlight = null;
    });
    this.inFlight = run;
    return run;
  }

  private async renewNow(): Promise<LeaseGrant> {
    const deadline = this.ops.deadline();
    if (this.leaseId !== null) {
      const sentAtMs = this.holder.beginRenewal();
      const leaseId = this.leaseId;
      const ttl = await this.ops.keepalive(leaseId, deadline);
      if (ttl > 0) {
        try {
          return this.confirmed(sentAtMs, await this.ops.attachKeyAndReadView(leaseId, deadline));
        } catch (err) {
          if (!(err instanceof WaterbearError && err.details?.leaseNotFound === true)) throw err;
        }
      }
      // etcd revoked the lease: the holder has been fenced since its deadline; start a new lease.
      this.ops.report('lease-lost', { replicaId: this.replicaId, leaseId });
      if (this.leaseId === leaseId) this.leaseId = null;
    }
    const sentAtMs = this.holder.beginRenewal();
    const ttlSeconds = this.timing.ttlMs / 1_000;
    const granted = await this.ops.grant(ttlSeconds, deadline);
    if (granted.ttlSeconds < ttlSeconds) {
      throw new WaterbearError(
        'WB_PROTOCOL',
        `etcd granted a ${granted.ttlSeconds} s lease for a ${ttlSeconds} s request; the holder's deadline would outlive it`,
      );
    }
    this.leaseId = granted.id;
    this.ops.report('lease-granted', { replicaId: this.replicaId, leaseId: granted.id, ttlSeconds: granted.ttlSeconds });
    return this.confirmed(sentAtMs, await this.ops.attachKeyAndReadView(granted.id, deadline));
  }

  private confirmed(sentAtMs: number, view: number): LeaseGrant {
    this.holder.confirm(sentAtMs);
    return Object.freeze({
      replicaId: this.replicaId,
      sentAtMs,
      ttlMs: this.timing.ttlMs,
      view,
      validUntilMs: holderDeadlineMs(sentAtMs, this.timing),
    });
  }
}

/** What `awaitLeaseGone` needs. */
export interface AwaitLeaseDeps {
  /** Linearizable: does the replica's lease key exist? Throws when etcd cannot answer. */
  leaseKeyExists(): Promise<boolean>;
  readonly clock: MonotonicClock;
  readonly timing: LeaseTiming;
  readonly pollIntervalMs: number;
  /** Rejects pending waits when the coordinator closes. */
  readonly closed: AbortSignal;
  report(event: string, details: Record<string, unknown>): void;
}

/** Waits `ms` on a timer; rejects early with WB_TIMEOUT when `signal` aborts, WB_COORD_UNAVAILABLE when `closed` does. */
async function pause(ms: number, signal: AbortSignal | undefined, closed: AbortSignal, replicaId: string): Promise<void> {
  const both = signal === undefined ? closed : AbortSignal.any([signal, closed]);
  try {
    await sleep(ms, undefined, { signal: both });
  } catch {
    throwIfAborted(signal, closed, replicaId);
  }
}

function throwIfAborted(signal: AbortSignal | undefined, closed: AbortSignal, replicaId: string): void {
  if (signal?.aborted === true) {
    throw new WaterbearError('WB_TIMEOUT', `gave up waiting for the lease of replica ${replicaId} to expire`, { cause: signal.reason });
  }
  if (closed.aborted) throw new WaterbearError('WB_COORD_UNAVAILABLE', 'the etcd coordinator is closed');
}

/**
 * Resolves once `replicaId`'s lease key has been seen gone AND, `etcdGrantorTailMs` later on our clock,
 * is still gone (a holder that re-created it restarts the wait). While etcd cannot be reached it keeps
 * polling: only positive evidence resolves.
 * @throws WaterbearError WB_TIMEOUT when `signal` aborts first; WB_COORD_UNAVAILABLE when the coordinator closes.
 */
export async function awaitLeaseGone(replicaId: string, deps: AwaitLeaseDeps, signal?: AbortSignal): Promise<void> {
  const tailMs = etcdGrantorTailMs(deps.timing);
  let goneSinceMs: number | null = null;
  for (;;) {
    throwIfAborted(signal, deps.closed, replicaId);
    let exists: boolean;
    try {
      exists = await deps.leaseKeyExists();
    } catch (error) {
      deps.report('lease-poll-failed', { replicaId, error });
      await pause(deps.pollIntervalMs, signal, deps.closed, replicaId);
      continue;
    }
    throwIfAborted(signal, deps.closed, replicaId);
    const now = deps.clock.nowMs(); // read after the answer: the key was gone at or before now
    if (exists) {
      goneSinceMs = null;
    } else {
      if (goneSinceMs === null) goneSinceMs = now;
      const left = goneSinceMs + tailMs - now;
      if (left <= 0) return;
      await pause(Math.min(left, deps.pollIntervalMs), signal, deps.closed, replicaId);
      continue;
    }
    await pause(deps.pollIntervalMs, signal, deps.closed, replicaId);
  }
}
