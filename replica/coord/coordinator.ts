/**
 * The coordinator: the one place where views change. Implemented by the embedded Raft group
 * (replica/coord/raft, driven by a gRPC transport) and, later, by etcd. Replicas depend only on this
 * interface.
 *
 * Guarantees every implementation must give:
 * - views are totally ordered and change only by compare-and-set on the view number, so two primaries
 *   can never both be installed in the same view (DESIGN.md rule 2);
 * - reads are linearizable: `readView` returns a view at least as new as any view whose `proposeView`
 *   completed before the read began;
 * - `watchViews` delivers every committed view in increasing order, possibly skipping views only when
 *   the watcher fell behind a compaction (it then gets the latest);
 * - leases follow lease.ts, whose comment states the clock assumptions.
 */
import { WaterbearError } from '../../libos-host/errors.js';

/** A numbered replica configuration. */
export interface View {
  /** 1, 2, 3, …; strictly increasing. There is no view 0: "no view yet" is `null`. */
  readonly view: number;
  /** Replica id of the primary. */
  readonly primary: string;
  /** Replica ids of the backups, without the primary; empty means "running unprotected". */
  readonly backups: readonly string[];
}

/** A lease confirmed by the coordinator for one replica. */
export interface LeaseGrant {
  readonly replicaId: string;
  /** Holder's monotonic clock reading taken just BEFORE the keepalive was sent. */
  readonly sentAtMs: number;
  readonly ttlMs: number;
  /** The view current when the coordinator granted it; a holder not in that view must fence itself. */
  readonly view: number;
  /** Until when (holder's clock) the holder may act: `holderDeadlineMs(sentAtMs)`. */
  readonly validUntilMs: number;
}

export interface Coordinator {
  /**
   * The current committed view (a linearizable read: ReadIndex on the embedded Raft, a quorum read on
   * etcd), or null before the first view is installed.
   * @throws WaterbearError WB_COORD_UNAVAILABLE when no quorum answers; WB_TIMEOUT.
   */
  readView(): Promise<View | null>;

  /**
   * Installs `next` only if the current view number is `expectedView` (0 when there is none yet) and
   * `next.view === expectedView + 1`. Resolves to the committed view (equal to `next`).
   * @throws WaterbearError WB_VIEW_CONFLICT (details.current holds the current view) when another view
   *   won; WB_CONFIG_INVALID when `next` is malformed; WB_COORD_UNAVAILABLE / WB_TIMEOUT when the outcome
   *   is unknown — the caller must `readView` before retrying, since the view may have been installed.
   */
  proposeView(expectedView: number, next: View): Promise<View>;

  /** Calls `onView` for every committed view from now on (first with the current one). Returns an unsubscribe function. */
  watchViews(onView: (v: View) => void): () => void;

  /**
   * Renews `replicaId`'s liveness lease. Resolves once the coordinator has recorded it; the grant says
   * until when (on the caller's clock) the caller may act.
   * @throws WaterbearError WB_COORD_UNAVAILABLE / WB_TIMEOUT; the caller's lease then simply runs out.
   */
  keepAlive(replicaId: string): Promise<LeaseGrant>;

  /** Caller side: send time (caller's monotonic clock) of the latest confirmed keepalive of `replicaId`, or null. */
  lastConfirmedMs(replicaId: string): number | null;

  /**
   * Caller side: true when `replicaId` (this process) can no longer prove it holds its lease — a primary
   * must then stop releasing output until a keepalive succeeds again. Reads the clock; call it right before acting.
   */
  leaseExpired(replicaId: string): boolean;

  /**
   * Coordinator side: resolves once `replicaId`'s lease has surely expired at the replica too. A view
   * that removes or demotes a primary must be proposed only after this resolves.
   * @throws WaterbearError WB_TIMEOUT when `signal` aborts first.
   */
  awaitLeaseExpiry(replicaId: string, signal?: AbortSignal): Promise<void>;

  /**
   * Calls `listener` once if the coordinator stops for good (the embedded Raft member's store failed,
   * e.g. a full disk): the member can neither vote nor renew leases again, so the process should exit
   * and let its supervisor restart it (which retries until the fault is gone). At once if it already
   * has. Returns an unsubscribe function. etcd's client retries by itself and never calls it.
   */
  onFatal(listener: (err: Error) => void): () => void;

  /** Stops the coordinator client (and, for the embedded Raft, the local member). Idempotent. */
  close(): Promise<void>;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * Checks a view. @throws WaterbearError WB_CONFIG_INVALID naming the problem.
 */
export function validateView(v: View): void {
  const bad = (why: string): never => {
    throw new WaterbearError('WB_CONFIG_INVALID', `invalid view: ${why}`);
  };
  if (v === null || typeof v !== 'object') bad('not an object');
  if (!Number.isSafeInteger(v.view) || v.view < 1) bad(`view number must be a positive integer: got ${String(v.view)}`);
  if (typeof v.primary !== 'string' || !ID_PATTERN.test(v.primary)) bad(`primary must be a replica id: got ${JSON.stringify(v.primary)}`);
  if (!Array.isArray(v.backups)) bad('backups must be an array');
  const seen = new Set([v.primary]);
  for (const b of v.backups) {
    if (typeof b !== 'string' || !ID_PATTERN.test(b)) bad(`backup must be a replica id: got ${JSON.stringify(b)}`);
    if (seen.has(b)) bad(`replica ${b} appears twice`);
    seen.add(b);
  }
}

/** Checks a compare-and-set request. @throws WaterbearError WB_CONFIG_INVALID. */
export function validateViewProposal(expectedView: number, next: View): void {
  if (!Number.isSafeInteger(expectedView) || expectedView < 0) {
    throw new WaterbearError('WB_CONFIG_INVALID', `expected view must be a non-negative integer: got ${String(expectedView)}`);
  }
  validateView(next);
  if (next.view !== expectedView + 1) {
    throw new WaterbearError('WB_CONFIG_INVALID', `the next view must be ${expectedView + 1} (expected view + 1): got ${next.view}`);
  }
}

/** The stored form of a view (the value under the "view" key of the view state machine). */
export function encodeView(v: View): string {
  validateView(v);
  return JSON.stringify({ view: v.view, primary: v.primary, backups: [...v.backups] });
}

/** @throws WaterbearError WB_PROTOCOL when the stored value is not a valid view. */
export function decodeView(s: string): View {
  try {
    const v = JSON.parse(s) as View;
    validateView(v);
    return { view: v.view, primary: v.primary, backups: Object.freeze([...v.backups]) };
  } catch (cause) {
    throw new WaterbearError('WB_PROTOCOL', 'the stored view is malformed', { cause });
  }
}

/** The error `proposeView` rejects with when another view won. */
export function viewConflict(current: View | null): WaterbearError {
  return new WaterbearError(
    'WB_VIEW_CONFLICT',
    `the view changed concurrently (current view ${current?.view ?? 'none'}); read the view and decide again`,
    { details: { current } },
  );
}
