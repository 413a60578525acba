/**
 * The coordinator on etcd v3, for operators who already run etcd and for multi-machine production.
 *
 * Layout (under `<keyPrefix><cluster>/`, default `/waterbear/default/`):
 * - `view`: the current view as `encodeView` JSON. It changes only in transactions that compare its
 *   mod revision with the one at which view `expected` was read (compare-and-set), or, for the first
 *   view, its create revision with 0 (the key does not exist yet).
 * - `lease/<replicaId>`: exists while the replica's etcd lease lives (the key is attached to it), so
 *   etcd deletes it when the lease expires.
 *
 * Reads are linearizable (etcd's default, serializable = false). Every operation is bounded by
 * `requestTimeoutMs` and fails with WB_COORD_UNAVAILABLE or WB_TIMEOUT instead of hanging; watches
 * and `awaitLeaseExpiry` keep retrying until stopped. Leases follow lease.ts on the holder's own
 * monotonic clock (etcd-lease.ts explains the etcd side).
 *
 * Observability: events are published on the `waterbear:coord:etcd` diagnostics channel
 * (`{ event: 'watch-reconnect' | 'lease-granted' | 'lease-lost' | …, cluster, … }`); free when unsubscribed.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { CompareResult, CompareTarget, type Etcd3, type IKeyValue, type ITxnResponse } from 'etcd3';
import { WaterbearError } from '../../../libos-host/errors.js';
import {
  decodeView,
  encodeView,
  validateViewProposal,
  viewConflict,
  type Coordinator,
  type LeaseGrant,
  type View,
} from '../coordinator.js';
import { createEtcdClient, EtcdRequests, keepaliveOnce, type Deadline } from './etcd-client.js';
import { awaitLeaseGone, EtcdLeaseKeeper, type EtcdLeaseOps } from './etcd-lease.js';
import { checkReplicaId, EtcdKeys, resolveEtcdOptions, type EtcdCoordinatorOptions, type ResolvedEtcdOptions } from './etcd-options.js';
import { ViewWatchLoop } from './etcd-view-watch.js';

/** Name of the diagnostics channel the etcd coordinator publishes on. */
export const ETCD_DIAGNOSTICS_CHANNEL = 'waterbear:coord:etcd';
const channel = diagnosticsChannel.channel(ETCD_DIAGNOSTICS_CHANNEL);

/** At most this many compare-and-set attempts in one proposeView (a stale cached mod revision costs one). */
const MAX_PROPOSE_ATTEMPTS = 3;

interface StoredView {
  readonly view: View;
  readonly modRevision: string;
}

function sameView(a: View, b: View): boolean {
  return a.view === b.view && a.primary === b.primary && a.backups.length === b.backups.length && a.backups.every((x, i) => x === b.backups[i]);
}

/** `Coordinator` on etcd v3: views by compare-and-set on one key, liveness by etcd leases (see the file comment). */
export class EtcdCoordinator implements Coordinator {
  /** The validated options in force. */
  readonly options: ResolvedEtcdOptions;
  /** The keys this coordinator reads and writes. */
  readonly keys: EtcdKeys;
  private readonly client: Etcd3;
  private readonly requests: EtcdRequests;
  private readonly watches = new Set<ViewWatchLoop>();
  private readonly keepers = new Map<string, EtcdLeaseKeeper>();
  private readonly closing = new AbortController();
  private closed: Promise<void> | null = null;
  /** The newest view seen, with the mod revision of the view key that holds it. */
  private known: StoredView | null = null;

  /**
   * Validates the options and creates the client (it connects lazily, on the first request).
   * @throws WaterbearError WB_CONFIG_INVALID on bad options (see `resolveEtcdOptions`).
   */
  constructor(options: EtcdCoordinatorOptions) {
    this.options = resolveEtcdOptions(options);
    this.keys = new EtcdKeys(this.options);
    this.requests = new EtcdRequests(this.options, () => this.closing.signal.aborted);
    this.client = createEtcdClient(this.options);
  }

  /**
   * The current view (linearizable read), or null before the first one.
   * @throws WaterbearError WB_COORD_UNAVAILABLE, WB_TIMEOUT, WB_PERMISSION; WB_PROTOCOL when the stored view is malformed.
   */
  async readView(): Promise<View | null> {
    return (await this.readStored(this.requests.deadline())).stored?.view ?? null;
  }

  /**
   * Compare-and-set: installs `next` iff the current view number is `expectedView` (0: no view yet).
   * A retried request whose first attempt had in fact committed resolves normally (the view found is `next`).
   * @throws WaterbearError WB_CONFIG_INVALID (malformed proposal), WB_VIEW_CONFLICT (details.current),
   *   WB_COORD_UNAVAILABLE / WB_TIMEOUT (outcome unknown: read the view before retrying).
   */
  async proposeView(expectedView: number, next: View): Promise<View> {
    validateViewProposal(expectedView, next);
    const value = Buffer.from(encodeView(next));
    const key = this.keys.view;
    const what = `proposing view ${next.view}`;
    const deadline = this.requests.deadline();
    let base: StoredView | null = this.known !== null && this.known.view.view === expectedView ? this.known : null;
    for (let attempt = 0; attempt < MAX_PROPOSE_ATTEMPTS; attempt++) {
      if (expectedView > 0 && base === null) {
        // We do not know at which mod revision view `expectedView` was stored: read it.
        const { stored } = await this.readStored(deadline, what);
        if (stored !== null && sameView(stored.view, next)) return next;
        if (stored === null || stored.view.view !== expectedView) throw viewConflict(stored?.view ?? null);
        base = stored;
      }
      const compare = base === null
        ? { key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }
        : { key, target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: base.modRevision };
      const res: ITxnResponse = await this.requests.run(what, deadline, (o) =>
        this.client.kv.txn(
          { compare: [compare], success: [{ request_put: { key, value } }], failure: [{ request_range: { key } }] },
          o,
        ),
      );
      if (res.succeeded) {
        this.remember(next, res.header.revision);
        this.report('view-installed', { view: next.view, primary: next.primary, revision: res.header.revision });
        return next;
      }
      const current = this.storedFrom(res.responses[0]?.response_range?.kvs?.[0]);
      if (current !== null && sameView(current.view, next)) return next; // our earlier attempt, or the same proposal, won
      if (current === null || current.view.view !== expectedView) throw viewConflict(current?.view ?? null);
      base = current; // our cached mod revision was stale, the number still matches: compare against the right one
    }
    throw viewConflict(this.known?.view ?? null);
  }

  /** See Coordinator.onFatal: the etcd client retries through every failure, so it never stops for good. */
  onFatal(): () => void {
    return () => undefined;
  }

  /**
   * Calls `onView` with the current view, then every newer committed view in increasing order, until
   * unsubscribed or closed. Survives etcd restarts and lost connections (re-reads, then re-watches).
   * `onView` should not throw; if it does, the error is published on the diagnostics channel.
   */
  watchViews(onView: (v: View) => void): () => void {
    if (this.closing.signal.aborted) return () => undefined;
    const loop = new ViewWatchLoop(
      {
        readCurrent: async () => {
          const { stored, revision } = await this.readStored(this.requests.deadline(), 'watching the view');
          return { view: stored?.view ?? null, revision };
        },
        openStream: () => this.client.watchClient.watch(),
        decode: (value, modRevision) => this.decodeStored(value, modRevision).view,
        key: this.keys.view,
        retryMinDelayMs: this.options.watchRetryMinDelayMs,
        retryMaxDelayMs: this.options.watchRetryMaxDelayMs,
        report: (event, details) => this.report(event, details),
      },
      onView,
    );
    this.watches.add(loop);
    loop.start();
    return () => {
      loop.stop();
      this.watches.delete(loop);
    };
  }

  /**
   * Renews `replicaId`'s lease: a keepalive on its etcd lease (a new lease when there is none or etcd
   * lost it), then a transaction that re-attaches the lease key if needed and reads the view number.
   * The grant counts from the clock reading taken before the request.
   * @throws WaterbearError WB_CONFIG_INVALID (bad id), WB_COORD_UNAVAILABLE / WB_TIMEOUT / WB_PERMISSION.
   */
  async keepAlive(replicaId: string): Promise<LeaseGrant> {
    checkReplicaId(replicaId);
    return this.keeper(replicaId).renew();
  }

  lastConfirmedMs(replicaId: string): number | null {
    return this.keepers.get(replicaId)?.holder.lastConfirmedMs ?? null;
  }

  leaseExpired(replicaId: string): boolean {
    return this.keepers.get(replicaId)?.holder.expired() ?? true;
  }

  /**
   * Resolves once `replicaId`'s lease key is gone (etcd revoked the lease) and lease.ts's grantor bound
   * has passed (`etcdGrantorTailMs` after that on our clock), confirmed by a last read.
   * @throws WaterbearError WB_TIMEOUT when `signal` aborts first; WB_COORD_UNAVAILABLE when closed.
   */
  async awaitLeaseExpiry(replicaId: string, signal?: AbortSignal): Promise<void> {
    checkReplicaId(replicaId);
    const key = this.keys.lease(replicaId);
    return awaitLeaseGone(
      replicaId,
      {
        leaseKeyExists: async () => {
          const res = await this.requests.run(`reading the lease of replica ${replicaId}`, this.requests.deadline(), (o) =>
            this.client.kv.range({ key, count_only: true }, o),
          );
          return Number(res.count) > 0;
        },
        clock: this.options.clock,
        timing: this.options.lease,
        pollIntervalMs: this.options.leasePollIntervalMs,
        closed: this.closing.signal,
        report: (event, details) => this.report(event, details),
      },
      signal,
    );
  }

  /**
   * Stops every watch, rejects pending `awaitLeaseExpiry` calls and closes the connections. Leases
   * are not revoked: they run out, so that nobody is promoted while this process might still act.
   * Idempotent.
   */
  close(): Promise<void> {
    if (this.closed === null) {
      this.closing.abort();
      for (const w of this.watches) w.stop();
      this.watches.clear();
      this.client.close();
      this.closed = Promise.resolve();
    }
    return this.closed;
  }

  private keeper(replicaId: string): EtcdLeaseKeeper {
    let k = this.keepers.get(replicaId);
    if (k === undefined) {
      k = new EtcdLeaseKeeper(replicaId, this.leaseOps(replicaId), this.options.clock, this.options.lease);
      this.keepers.set(replicaId, k);
    }
    return k;
  }

  private leaseOps(replicaId: string): EtcdLeaseOps {
    const leaseKey = this.keys.lease(replicaId);
    const viewKey = this.keys.view;
    return {
      deadline: () => this.requests.deadline(),
      grant: async (ttlSeconds: number, deadline: Deadline) => {
        const res = await this.requests.run(`granting a lease to replica ${replicaId}`, deadline, (o) =>
          this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 }, o),
        );
        if (res.error !== undefined && res.error !== '') {
          throw new WaterbearError('WB_COORD_UNAVAILABLE', `granting a lease to replica ${replicaId}: etcd answered ${res.error}`);
        }
        return { id: res.ID, ttlSeconds: Number(res.TTL) };
      },
      keepalive: async (leaseId: string, deadline: Deadline) => {
        const res = await this.requests.run(`renewing the lease of replica ${replicaId}`, deadline, (o) =>
          keepaliveOnce(this.client, leaseId, o),
        );
        return Number(res.TTL);
      },
      attachKeyAndReadView: async (leaseId: string, deadline: Deadline) => {
        const value = Buffer.from(JSON.stringify({ replica: replicaId, lease: leaseId }));
        const res = await this.requests.run(`attaching the lease key of replica ${replicaId}`, deadline, (o) =>
          this.client.kv.txn(
            {
              compare: [{ key: leaseKey, target: CompareTarget.Lease, result: CompareResult.Equal, lease: leaseId }],
              success: [{ request_range: { key: viewKey } }],
              failure: [{ request_put: { key: leaseKey, value, lease: leaseId } }, { request_range: { key: viewKey } }],
            },
            o,
          ),
        );
        if (!res.succeeded) this.report('lease-key-attached', { replicaId, leaseId });
        const stored = this.storedFrom(res.responses[res.responses.length - 1]?.response_range?.kvs?.[0]);
        return stored?.view.view ?? 0;
      },
      report: (event, details) => this.report(event, details),
    };
  }

  /** Linearizable read of the view key. */
  private async readStored(deadline: Deadline, what = 'reading the view'): Promise<{ stored: StoredView | null; revision: bigint }> {
    const res = await this.requests.run(what, deadline, (o) => this.client.kv.range({ key: this.keys.view }, o));
    return { stored: this.storedFrom(res.kvs[0]), revision: BigInt(res.header.revision) };
  }

  private storedFrom(kv: IKeyValue | undefined): StoredView | null {
    return kv === undefined ? null : this.decodeStored(kv.value, kv.mod_revision);
  }

  /** @throws WaterbearError WB_PROTOCOL when the value is not a view. */
  private decodeStored(value: Buffer, modRevision: string): StoredView {
    const view = decodeView(value.toString('utf8'));
    this.remember(view, modRevision);
    return { view, modRevision };
  }

  private remember(view: View, modRevision: string): void {
    if (this.known === null || view.view >= this.known.view.view) this.known = { view, modRevision };
  }

  private report(event: string, details: Record<string, unknown>): void {
    if (channel.hasSubscribers) channel.publish({ event, cluster: this.options.cluster, ...details });
  }
}
