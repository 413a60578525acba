/**
 * Lease revocation records in the view state machine, and the lease-timing agreement check.
 *
 * Why revocations exist. lease.ts lets the grantor (the Raft leader's in-memory LeaseTable) say "the
 * holder has surely stopped". But a keepalive sent just before that moment and received just after
 * it would, if granted, let the holder act again in the old view while a new view is being installed.
 * So before the leader answers "expired", it commits `lease/<replicaId>` = {revokedInView: v}. From
 * then on no member grants that replica a renewal while the view is still v (every grant is decided on
 * a state that includes the revocation: grants wait for a ReadIndex confirmation, and a new leader has
 * applied every committed entry before its first ReadIndex completes). Grants resume when a new view
 * commits (they then carry the new view number, so a demoted holder fences itself), or when the leader
 * commits an un-revocation LEASE_REVOCATION_QUARANTINE_MS later (for the case where nobody changed the
 * view after all: otherwise a replica that came back would stay fenced forever).
 */
import { WaterbearError } from '../../../libos-host/errors.js';
import type { LeaseTiming } from '../lease.js';
import { encodeViewCommand, VIEW_KEY, type ViewStateMachine } from '../view-state-machine.js';
import type { WireLeaseTiming } from './raft-wire.js';

/** Keys of revocation records: `lease/<replicaId>`. */
export const LEASE_KEY_PREFIX = 'lease/';
/** Version of the revocation record encoding. */
export const LEASE_RECORD_VERSION = 1;

export function leaseKey(replicaId: string): string {
  return LEASE_KEY_PREFIX + replicaId;
}

/** The view number held by the state machine (the view key's version equals the view number), 0 when none. */
export function viewNumber(sm: ViewStateMachine): number {
  return sm.get(VIEW_KEY)?.version ?? 0;
}

/** The view in which `replicaId`'s lease was revoked, or null when it is not revoked (malformed records count as not revoked). */
export function revokedInView(sm: ViewStateMachine, replicaId: string): number | null {
  const rec = sm.get(leaseKey(replicaId));
  if (rec === undefined) return null;
  try {
    const raw = JSON.parse(rec.value) as { v?: unknown; revokedInView?: unknown };
    if (raw.v !== LEASE_RECORD_VERSION || !Number.isSafeInteger(raw.revokedInView)) return null;
    return raw.revokedInView as number;
  } catch {
    return null;
  }
}

/** True when no renewal of `replicaId` may be granted now: it was revoked in the current view. */
export function isRevoked(sm: ViewStateMachine, replicaId: string): boolean {
  const v = revokedInView(sm, replicaId);
  return v !== null && v === viewNumber(sm);
}

/** The command that revokes `replicaId`'s lease in view `view` (or lifts the revocation when null). */
export function encodeRevocation(replicaId: string, view: number | null, requestId: string): Uint8Array {
  return encodeViewCommand({ op: 'put', key: leaseKey(replicaId), value: JSON.stringify({ v: LEASE_RECORD_VERSION, revokedInView: view }) }, requestId);
}

/** Replica ids with a revocation in force, read from the state machine's snapshot (used once per leadership). */
export function revokedReplicas(sm: ViewStateMachine): string[] {
  const raw = JSON.parse(new TextDecoder().decode(sm.snapshot())) as { kv?: unknown };
  const out: string[] = [];
  if (!Array.isArray(raw.kv)) return out;
  for (const item of raw.kv as unknown[]) {
    if (!Array.isArray(item) || typeof item[0] !== 'string' || !item[0].startsWith(LEASE_KEY_PREFIX)) continue;
    const id = item[0].slice(LEASE_KEY_PREFIX.length);
    if (isRevoked(sm, id)) out.push(id);
  }
  return out;
}

export function timingToWire(t: LeaseTiming): WireLeaseTiming {
  return { ttlMs: t.ttlMs, maxDriftRate: t.maxDriftRate, marginMs: t.marginMs };
}

/**
 * Grantor and holder must use the same lease timing, or the holder could outlive the grantor's bound.
 * @throws WaterbearError WB_CONFIG_INVALID when they differ.
 */
export function checkSameTiming(requested: WireLeaseTiming | null | undefined, mine: LeaseTiming): void {
  if (requested === null || requested === undefined) throw new WaterbearError('WB_PROTOCOL', 'a lease request without lease timing');
  if (requested.ttlMs !== mine.ttlMs || requested.maxDriftRate !== mine.maxDriftRate || requested.marginMs !== mine.marginMs) {
    throw new WaterbearError(
      'WB_CONFIG_INVALID',
      `lease timing differs between members: requested ttl ${requested.ttlMs} ms, drift ${requested.maxDriftRate}, margin ${requested.marginMs} ms; ` +
        `the leader uses ttl ${mine.ttlMs} ms, drift ${mine.maxDriftRate}, margin ${mine.marginMs} ms. Configure the same lease on every member`,
    );
  }
}

/** The error a revoked holder's keepalive gets. */
export function revokedError(replicaId: string, view: number): WaterbearError {
  return new WaterbearError(
    'WB_STALE_VIEW',
    `the lease of replica ${replicaId} expired and was revoked in view ${view}; it is renewed again once a new view is installed`,
    { details: { revoked: true, view } },
  );
}
