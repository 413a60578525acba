import type { StatusReply } from '../../replica/wire/replication-wire.js';
import type { ViewSample } from '../workload/history.js';
import type { ChaosCluster } from './chaos-cluster.js';

/** How often the harness asks the replicas who is primary. */
export const VIEW_POLL_INTERVAL_MS = 200;

/**
 * Polls the replicas' Status RPC (on their real ports, beside the fault proxies) and records
 * every change of primary, view or protection: the view lane of the report and the health test
 * the nemesis waits on between faults.
 */
export class ViewMonitor {
  readonly samples: ViewSample[] = [];
  latest: { atMs: number; primary: StatusReply | null } = { atMs: -Infinity, primary: null };
  private timer: NodeJS.Timeout | null = null;
  private inFlight = false;

  constructor(private readonly cluster: ChaosCluster, private readonly nowMs: () => number) {}

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => void this.poll(), VIEW_POLL_INTERVAL_MS);
    void this.poll();
  }

  async poll(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      const p = await this.cluster.primary();
      const at = this.nowMs();
      this.latest = { atMs: at, primary: p };
      const last = this.samples[this.samples.length - 1];
      const s: ViewSample = { atMs: at, primary: p?.replicaId ?? null, view: p?.view ?? 0, backups: p?.backups ?? [], protected: p?.protected ?? false };
      if (last === undefined || last.primary !== s.primary || last.view !== s.view || last.protected !== s.protected || last.backups.join() !== s.backups.join()) {
        this.samples.push(s);
      }
    } finally {
      this.inFlight = false;
    }
  }

  /**
   * True when the cluster is whole: every member running and not paused, and a protected
   * primary whose view has every other replica as backup.
   */
  healthy(): boolean {
    const p = this.latest.primary;
    if (p === null || !p.protected) return false;
    if (p.backups.length < this.cluster.replicaIds.length - 1) return false;
    return this.cluster.memberIds.every((id) => this.cluster.isRunning(id) && !this.cluster.isPaused(id));
  }

  /** Wait (polling) until healthy, at most `timeoutMs`; resolves with whether it became healthy. */
  async waitHealthy(timeoutMs: number, abort: () => boolean = () => false): Promise<boolean> {
    const end = this.nowMs() + timeoutMs;
    while (this.nowMs() < end && !abort()) {
      await this.poll();
      if (this.healthy()) return true;
      await new Promise((r) => setTimeout(r, VIEW_POLL_INTERVAL_MS));
    }
    return this.healthy();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
