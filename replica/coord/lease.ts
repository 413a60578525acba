/**
 * Liveness leases between replicas and the coordinator, as pure arithmetic plus two small trackers.
 *
 * Clock assumptions (the only ones waterbear makes):
 * - every machine has a MONOTONIC clock (`performance.now()`, never `Date.now()`): leases use
 *   durations measured on one machine, never timestamps compared across machines, so clocks need not
 *   be synchronized;
 * - each monotonic clock runs at a rate within (1 ± maxDriftRate) of real time;
 * - a paused process (GC, VM freeze, SIGSTOP) sees its clock keep running: after a pause it finds its
 *   lease expired instead of believing it still holds it. Checks must therefore read the clock right
 *   before acting (e.g. before releasing output), not rely on a timer having fired.
 *
 * The holder (a primary) reads its clock at `sentAt` BEFORE sending a keepalive and, once the keepalive
 * is confirmed, may act until `sentAt + ttl·(1 − ρ) − margin` on its own clock. The grantor (the
 * coordinator) received that keepalive at `receivedAt ≥` the real send time and treats the lease as
 * live until `receivedAt + ttl·(1 + ρ) + margin` on its clock. Whatever the two rates within ρ, the
 * holder stops, in real time, strictly before the grantor considers the lease expired:
 *   holder stops  ≤ send + (ttl·(1−ρ) − m)/(1−ρ) < send + ttl ≤ receive + ttl < receive + (ttl·(1+ρ) + m)/(1+ρ).
 * So a view that demotes a primary is proposed only after `grantor expiry` of its lease, and the old
 * primary has fenced itself by then.
 *
 * A new coordinator leader does not know when leases were last renewed; it must treat every lease as
 * renewed at the moment it took over (`LeaseTable.assumeAllRenewed`).
 */
import { WaterbearError } from '../../libos-host/errors.js';

/** Lease length granted on each keepalive. */
export const LEASE_TTL_MS = 2_000;
/** Keepalives are sent every LEASE_TTL_MS / 4 so that two can be lost without losing the lease. */
export const LEASE_KEEPALIVE_INTERVAL_MS = 500;
/** Bound on the rate error of any monotonic clock, as a fraction (0.01 = 1%, far above real oscillators). */
export const MAX_CLOCK_DRIFT_RATE = 0.01;
/** Extra safety on both sides of the lease, for scheduling delay between reading the clock and acting. */
export const LEASE_SAFETY_MARGIN_MS = 50;

/** A monotonic clock in milliseconds, injectable so tests use virtual time. */
export interface MonotonicClock {
  nowMs(): number;
}

export const SYSTEM_MONOTONIC_CLOCK: MonotonicClock = { nowMs: () => performance.now() };

export interface LeaseTiming {
  readonly ttlMs: number;
  readonly maxDriftRate: number;
  readonly marginMs: number;
}

/**
 * Validated lease timing.
 * @throws WaterbearError WB_CONFIG_INVALID when out of range (ttl 10 ms..10 min, drift 0..0.1,
 *   margin 0..ttl/4, and a holder window that stays positive).
 */
export function resolveLeaseTiming(options: Partial<LeaseTiming> = {}): LeaseTiming {
  const ttlMs = options.ttlMs ?? LEASE_TTL_MS;
  const maxDriftRate = options.maxDriftRate ?? MAX_CLOCK_DRIFT_RATE;
  const marginMs = options.marginMs ?? LEASE_SAFETY_MARGIN_MS;
  if (!Number.isFinite(ttlMs) || ttlMs < 10 || ttlMs > 600_000) {
    throw new WaterbearError('WB_CONFIG_INVALID', `lease ttlMs must be between 10 ms and 10 min: got ${String(ttlMs)}`);
  }
  if (!Number.isFinite(maxDriftRate) || maxDriftRate < 0 || maxDriftRate > 0.1) {
    throw new WaterbearError('WB_CONFIG_INVALID', `lease maxDriftRate must be between 0 and 0.1: got ${String(maxDriftRate)}`);
  }
  if (!Number.isFinite(marginMs) || marginMs < 0 || marginMs > ttlMs / 4) {
    throw new WaterbearError('WB_CONFIG_INVALID', `lease marginMs must be between 0 and ttlMs/4 (${ttlMs / 4} ms): got ${String(marginMs)}`);
  }
  return Object.freeze({ ttlMs, maxDriftRate, marginMs });
}

/** Holder side: until when (holder's clock) a lease confirmed for a keepalive sent at `sentAtMs` may be used. */
export function holderDeadlineMs(sentAtMs: number, timing: LeaseTiming): number {
  return sentAtMs + timing.ttlMs * (1 - timing.maxDriftRate) - timing.marginMs;
}

/** Grantor side: from when (grantor's clock) a lease last renewed at `receivedAtMs` is surely expired at the holder. */
export function grantorExpiryMs(receivedAtMs: number, timing: LeaseTiming): number {
  return receivedAtMs + timing.ttlMs * (1 + timing.maxDriftRate) + timing.marginMs;
}

/** The holder's record of its own lease (used by a primary to fence itself). */
export class LeaseHolder {
  private confirmedSentAtMs: number | null = null;

  constructor(
    private readonly clock: MonotonicClock = SYSTEM_MONOTONIC_CLOCK,
    readonly timing: LeaseTiming = resolveLeaseTiming(),
  ) {}

  /** Reads the clock for a keepalive about to be sent; pass the result to `confirm` when it succeeds. */
  beginRenewal(): number {
    return this.clock.nowMs();
  }

  /** Records a successful keepalive that was sent at `sentAtMs` (confirmations may arrive out of order). */
  confirm(sentAtMs: number): void {
    if (this.confirmedSentAtMs === null || sentAtMs > this.confirmedSentAtMs) this.confirmedSentAtMs = sentAtMs;
  }

  /** Send time of the latest confirmed keepalive (holder's clock), or null. */
  get lastConfirmedMs(): number | null {
    return this.confirmedSentAtMs;
  }

  /** Until when the holder may act, or null when it never held the lease. */
  get validUntilMs(): number | null {
    return this.confirmedSentAtMs === null ? null : holderDeadlineMs(this.confirmedSentAtMs, this.timing);
  }

  /** True when the holder can no longer prove it holds the lease: it must stop acting (fence) now. */
  expired(): boolean {
    const until = this.validUntilMs;
    return until === null || this.clock.nowMs() >= until;
  }
}

/** The grantor's table of leases (kept by the coordinator leader, in memory). */
export class LeaseTable {
  private readonly renewedAt = new Map<string, number>();
  private floorMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly clock: MonotonicClock = SYSTEM_MONOTONIC_CLOCK,
    readonly timing: LeaseTiming = resolveLeaseTiming(),
  ) {}

  /** Records a keepalive from `replicaId` received now. */
  renew(replicaId: string): void {
    this.renewedAt.set(replicaId, this.clock.nowMs());
  }

  /** Call when this grantor takes over (e.g. becomes coordinator leader): every lease counts as renewed now. */
  assumeAllRenewed(): void {
    this.floorMs = this.clock.nowMs();
  }

  /** From when `replicaId`'s lease is surely expired at the holder (grantor's clock). */
  expiresAtMs(replicaId: string): number {
    const last = Math.max(this.renewedAt.get(replicaId) ?? Number.NEGATIVE_INFINITY, this.floorMs);
    return last === Number.NEGATIVE_INFINITY ? Number.NEGATIVE_INFINITY : grantorExpiryMs(last, this.timing);
  }

  /** True when `replicaId` can no longer be acting on its lease. */
  expired(replicaId: string): boolean {
    return this.clock.nowMs() >= this.expiresAtMs(replicaId);
  }

  forget(replicaId: string): void {
    this.renewedAt.delete(replicaId);
  }
}
