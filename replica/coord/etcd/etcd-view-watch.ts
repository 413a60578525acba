/**
 * One `watchViews` subscription: a linearizable read of the view key, then an etcd watch on it from
 * the read's revision + 1. Views are delivered in increasing order, each at most once, the current one
 * first. When the watch breaks (etcd restarted, connection lost) the loop waits, reads the view again
 * and watches from one past the last revision it processed, so etcd replays every view it missed.
 * Only when that history was compacted away does it skip views, delivering the latest instead and
 * reporting `watch-compacted` (coordinator.ts allows exactly that).
 */
import type { IDuplexStream, IWatchRequest, IWatchResponse } from 'etcd3';
import type { View } from '../coordinator.js';

/** What the loop needs from the coordinator. */
export interface ViewWatchDeps {
  /** Linearizable read: the current view (null when none) and the etcd revision of the read. */
  readCurrent(): Promise<{ view: View | null; revision: bigint }>;
  /** Opens a watch stream (no deadline). */
  openStream(): Promise<IDuplexStream<IWatchRequest, IWatchResponse>>;
  /** Decodes a stored view value. @throws WaterbearError WB_PROTOCOL. */
  decode(value: Buffer, modRevision: string): View;
  readonly key: Buffer;
  readonly retryMinDelayMs: number;
  readonly retryMaxDelayMs: number;
  /** Observability hook (diagnostics channel); never throws. */
  report(event: string, details: Record<string, unknown>): void;
}

/** The read-then-watch loop of one subscription; `start()` once, `stop()` to end it. */
export class ViewWatchLoop {
  private lastDelivered = 0;
  private stopped = false;
  private stream: IDuplexStream<IWatchRequest, IWatchResponse> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelayMs: number;
  /** Revision the next watch starts from: one past the last revision processed; null before the first read. */
  private cursor: bigint | null = null;
  /** The last watch was canceled because its start revision was compacted away. */
  private compacted = false;

  constructor(
    private readonly deps: ViewWatchDeps,
    private readonly onView: (v: View) => void,
  ) {
    this.retryDelayMs = deps.retryMinDelayMs;
  }

  start(): void {
    void this.connect();
  }

  /** Stops delivering and closes the stream. Idempotent. */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.closeStream();
  }

  /** Highest view number delivered so far (0 before the first). */
  get delivered(): number {
    return this.lastDelivered;
  }

  private deliver(v: View): void {
    if (this.stopped || v.view <= this.lastDelivered) return;
    this.lastDelivered = v.view;
    try {
      this.onView(v);
    } catch (error) {
      this.deps.report('watch-callback-error', { view: v.view, error });
    }
  }

  private closeStream(): void {
    const s = this.stream;
    this.stream = null;
    if (s === null) return;
    try {
      s.end();
      s.cancel();
    } catch {
      /* already closed */
    }
  }

  private scheduleReconnect(reason: unknown): void {
    this.closeStream();
    if (this.stopped || this.retryTimer !== null) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.deps.retryMaxDelayMs, this.retryDelayMs * 2);
    this.deps.report('watch-reconnect', { afterMs: delay, reason, lastDelivered: this.lastDelivered });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
  }

  /**
   * One cycle: a linearizable read, then a watch from the cursor. The first cycle (and the one after a
   * compaction) delivers the view read and watches from the read's revision + 1. A later cycle keeps
   * its cursor when the read shows a view we have not delivered, so that the watch replays the missed
   * views in order; when the read shows nothing newer, it skips the quiet history. Any failure
   * schedules the next cycle.
   */
  private async connect(): Promise<void> {
    if (this.stopped) return;
    let stream: IDuplexStream<IWatchRequest, IWatchResponse>;
    try {
      const current = await this.deps.readCurrent();
      if (this.stopped) return;
      if (this.cursor === null || this.compacted) {
        if (this.compacted) this.deps.report('watch-compacted', { lastDelivered: this.lastDelivered, current: current.view?.view ?? 0 });
        if (current.view !== null) this.deliver(current.view);
        this.cursor = current.revision + 1n;
        this.compacted = false;
      } else if (current.view === null || current.view.view <= this.lastDelivered) {
        this.cursor = current.revision + 1n;
      }
      stream = await this.deps.openStream();
    } catch (err) {
      this.scheduleReconnect(err);
      return;
    }
    if (this.stopped) {
      try {
        stream.end();
        stream.cancel();
      } catch {
        /* already closed */
      }
      return;
    }
    this.stream = stream;
    let broken = false;
    const fail = (reason: unknown): void => {
      if (broken || this.stream !== stream) return;
      broken = true;
      this.scheduleReconnect(reason);
    };
    stream.on('data', (res: IWatchResponse) => {
      if (broken || this.stream !== stream) return;
      if (res.canceled) {
        const compactedAt = res.compact_revision === undefined || res.compact_revision === '' ? 0n : BigInt(res.compact_revision);
        if (compactedAt > 0n) {
          this.compacted = true;
          fail(`the watch start revision ${String(this.cursor)} was compacted (compact revision ${res.compact_revision})`);
        } else {
          fail(`etcd canceled the watch: ${res.cancel_reason}`);
        }
        return;
      }
      if (res.created) this.retryDelayMs = this.deps.retryMinDelayMs;
      for (const ev of res.events ?? []) {
        const next = BigInt(ev.kv.mod_revision) + 1n;
        if (this.cursor === null || next > this.cursor) this.cursor = next;
        if (String(ev.type).toLowerCase() !== 'put') {
          this.deps.report('view-key-deleted', { modRevision: ev.kv.mod_revision });
          continue;
        }
        try {
          this.deliver(this.deps.decode(ev.kv.value, ev.kv.mod_revision));
        } catch (error) {
          this.deps.report('view-malformed', { modRevision: ev.kv.mod_revision, error });
        }
      }
    });
    stream.on('error', (err: Error) => fail(err));
    stream.on('end', () => fail('the watch stream ended'));
    stream.write({ create_request: { key: this.deps.key, start_revision: String(this.cursor) } });
  }
}
