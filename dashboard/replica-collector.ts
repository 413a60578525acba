import { randomBytes } from 'node:crypto';
import type { ClusterConfig } from '../replica/config/cluster-config.js';
import type { Logger } from '../replica/log.js';
import type { PrimaryGuestSnapshot, PrimaryStats } from '../replica/primary/primary-driver.js';
import type { View } from '../replica/protocol/view.js';
import type { StatusReply } from '../replica/wire/replication-wire.js';
import type { TimelineKind } from './model.js';
import { ReplicaMetrics, type ScrapeValues } from './replica-metrics.js';
import { StatusClient } from '../replica/wire/status-client.js';

/** How often the collector looks at its replica (to remember who the primary is). */
export const COLLECT_TICK_MS = 250;
/** Events a replica keeps, and how many of the newest travel in each Status reply. */
export const LOCAL_EVENTS_KEPT = 200;
export const LOCAL_EVENTS_IN_STATUS = 50;
/** Epoch capture times kept at most (a primary whose backups stopped acknowledging). */
export const MAX_TRACKED_EPOCHS = 100_000;

/** The replica as the collector needs it; ReplicaNode is one (tests may pass a fake). */
export interface CollectedNode {
  readonly self: string;
  readonly config: ClusterConfig;
  readonly role: string;
  readonly timings: Record<string, number>;
  readonly backupDurableEpoch: number | null;
  readonly serviceParked: boolean;
  statusExtras: (() => Record<string, unknown>) | null;
  statusReply(): StatusReply;
  primarySnapshot(): { stats: PrimaryStats; links: Array<{ backup: string; acked: number; inflightBytes: number }>; guest: PrimaryGuestSnapshot; view: View; protected: boolean } | null;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** One event a replica saw itself (faults, promotions, operator actions). */
export interface LocalEvent { seq: number; at: number; kind: TimelineKind; message: string; view?: number; durationMs?: number }

/** Lag of one backup behind this primary. */
export interface LinkLag { backup: string; acked: number; inView: boolean; lagEpochs: number; lagSeconds: number }

/** What a replica adds to its Status reply (status_json.extras) for dashboards. */
export interface ReplicaExtras {
  /** Changes when the process restarts: event sequence numbers are per incarnation. */
  incarnation: string;
  primary: (PrimaryNumbersLocal & { links: LinkLag[] }) | null;
  durableEpoch: number | null;
  events: LocalEvent[];
}

/** The primary's own numbers (see PrimaryNumbers in model.ts). */
export interface PrimaryNumbersLocal {
  capturedEpoch: number; releasedEpoch: number; checkpoints: number; checkpointBytes: number; pauseUsSum: number;
  lastPauseUs: number; lastCheckpointBytes: number; heldBytes: number; bufferedBytes: number;
  /** Pages captured, those sent as sub-page deltas, and checkpoints backups refused (this tenure). */
  capturedPages: number; deltaPages: number; refusals: number;
  commitLatencyMsSum: number; commitLatencyCount: number; memoryBytes: number; bytesReceived: number; bytesSent: number;
  connectionsAccepted: number; imageSha256: string; extensions: string[];
  /** Lease lost: the service address is freed (listeners closed, connections cut) in case a backup takes over. */
  serviceParked: boolean;
}

/**
 * Watches one replica in its own process: its checkpoints, releases, role changes and faults.
 * Measures what only the primary can (replication lag in time, the delay output commit adds) and
 * feeds the replica's Prometheus metrics; publishes its numbers and recent events in the Status
 * RPC's status_json so that any dashboard of the cluster can show them.
 */
export class ReplicaCollector {
  readonly metrics: ReplicaMetrics;
  readonly incarnation = `${process.pid}-${randomBytes(4).toString('hex')}`;
  private readonly events: LocalEvent[] = [];
  private seq = 0;
  /** performance.now() at which each not-yet-released epoch was captured. */
  private readonly capturedAt = new Map<number, number>();
  private lastReleased = 0;
  /** The primary releases output without acknowledgements (a view with no backups). */
  private passthrough = false;
  private pauseUsSum = 0;
  private commitMsSum = 0;
  private commitCount = 0;
  private lastRole = '';
  private lastOtherPrimary: string | null = null;
  /** Target of a planned switchover this replica started (as primary), with when. */
  private switchoverStarted: { target: string; at: number } | null = null;
  private readonly tick: NodeJS.Timeout;
  private readonly statusClient: StatusClient;
  private readonly listeners: Array<[string, (...a: any[]) => void]> = [];

  constructor(private readonly node: CollectedNode, private readonly log: Logger, options: { processMetrics?: boolean } = {}) {
    this.metrics = new ReplicaMetrics({ replica: node.self, cluster: node.config.cluster }, () => this.scrapeValues(), options);
    this.statusClient = new StatusClient(node.config.tls, 500);
    const on = (event: string, f: (...a: any[]) => void): void => { node.on(event, f); this.listeners.push([event, f]); };
    on('checkpoint', (e: { epoch: number; bytes: number; pauseUs: number; pages: number; deltaPages: number }) => this.onCheckpoint(e));
    on('refused', (e: { code: string }) => this.metrics.refusals.inc({ code: e.code }));
    on('released', (epoch: number) => this.onReleased(epoch));
    on('applied', (e: { bytes: number }) => { this.metrics.applied.inc(); this.metrics.appliedBytes.inc(e.bytes); });
    on('backup-failed', (e: { backup: string; reason: string }) => {
      this.metrics.backupFailures.inc();
      this.record('fault', `replication link to backup ${e.backup} failed: ${e.reason}`);
    });
    on('role', (role: string) => this.onRole(role));
    on('protection', (e: { protected: boolean }) => { this.passthrough = !e.protected; });
    on('switchover-started', (target: string) => {
      this.switchoverStarted = { target, at: Date.now() };
      this.record('admin', `planned switchover to ${target} started: final checkpoint, then the view change`);
    });
    on('admin', (e: { action: string; target?: string; backup?: string; view?: number }) => {
      const what = e.action === 'switchover' ? `planned switchover to ${e.target} completed (view ${e.view})` : `${e.action} ${e.backup ?? ''}`.trim();
      this.record('admin', what, e.view !== undefined ? { view: e.view } : {});
    });
    on('service-parked', (e: { view: { view: number }; connectionsCut: number; leaseLostMs: number }) => this.record('service-parked',
      `${node.self} lost its coordinator lease ${Math.round(e.leaseLostMs)} ms ago and freed the service address (${e.connectionsCut} connection${e.connectionsCut === 1 ? '' : 's'} cut; state and held output kept): a backup may take over`,
      { view: e.view.view }));
    on('service-unparked', (e: { view: { view: number } }) => this.record('service-unparked',
      `${node.self} has its coordinator lease again and listens on the service address again`, { view: e.view.view }));
    on('guest-exit', (exit: { kind: string; code?: number }) => this.record('fault', `the guest exited (${exit.kind}${exit.code !== undefined ? ` ${exit.code}` : ''})`));
    node.statusExtras = () => this.extras() as unknown as Record<string, unknown>;
    this.tick = setInterval(() => this.onTick(), COLLECT_TICK_MS);
    this.tick.unref();
  }

  /** Add an event to this replica's timeline (the dashboard's action handler does too). */
  record(kind: TimelineKind, message: string, more: { view?: number; durationMs?: number } = {}): void {
    this.events.push({ seq: ++this.seq, at: Date.now(), kind, message, ...more });
    if (this.events.length > LOCAL_EVENTS_KEPT) this.events.splice(0, this.events.length - LOCAL_EVENTS_KEPT);
  }

  /** The newest local events (oldest first). */
  recentEvents(n = LOCAL_EVENTS_KEPT): LocalEvent[] { return this.events.slice(-n); }

  /** This replica's numbers for status_json. */
  extras(): ReplicaExtras {
    return { incarnation: this.incarnation, primary: this.primaryNumbers(), durableEpoch: this.node.backupDurableEpoch, events: this.recentEvents(LOCAL_EVENTS_IN_STATUS) };
  }

  /** The primary's numbers and each backup's lag, or null when this replica is not primary. */
  primaryNumbers(): ReplicaExtras['primary'] {
    const p = this.node.primarySnapshot();
    if (p === null) return null;
    const now = performance.now();
    const captured = p.stats.capturedEpoch;
    const links = p.links.map((l): LinkLag => {
      const lagEpochs = Math.max(0, captured - l.acked);
      const since = lagEpochs === 0 ? undefined : this.capturedAt.get(l.acked + 1);
      return { backup: l.backup, acked: l.acked, inView: p.view.backups.includes(l.backup), lagEpochs, lagSeconds: since === undefined ? 0 : (now - since) / 1000 };
    });
    const g = p.guest;
    return {
      capturedEpoch: captured, releasedEpoch: p.stats.releasedEpoch, checkpoints: p.stats.checkpoints, checkpointBytes: p.stats.checkpointBytes,
      pauseUsSum: this.pauseUsSum, lastPauseUs: p.stats.lastPauseUs, lastCheckpointBytes: p.stats.lastCheckpointBytes,
      capturedPages: p.stats.capturedPages, deltaPages: p.stats.deltaPages, refusals: p.stats.refusals,
      heldBytes: g.output.heldBytes, bufferedBytes: g.output.bufferedBytes, commitLatencyMsSum: this.commitMsSum, commitLatencyCount: this.commitCount,
      memoryBytes: g.memoryBytes, bytesReceived: g.io.bytesReceived, bytesSent: g.io.bytesSent, connectionsAccepted: g.io.connectionsAccepted,
      imageSha256: g.imageSha256, extensions: g.extensions, serviceParked: p.stats.serviceParked, links,
    };
  }

  private scrapeValues(): ScrapeValues {
    const s = this.node.statusReply();
    const p = this.primaryNumbers();
    return {
      role: this.node.role, view: s.view, protected: s.protected, serviceParked: p?.serviceParked ?? false, epoch: s.epoch, releasedEpoch: p?.releasedEpoch ?? 0,
      heldBytes: p?.heldBytes ?? 0, memoryBytes: p?.memoryBytes ?? null,
      lag: (p?.links ?? []).filter((l) => l.inView).map((l) => ({ backup: l.backup, epochs: l.lagEpochs, seconds: l.lagSeconds })),
      io: p === null ? null : { connectionsAccepted: p.connectionsAccepted, bytesReceived: p.bytesReceived, bytesSent: p.bytesSent },
    };
  }

  private onCheckpoint(e: { epoch: number; bytes: number; pauseUs: number; pages: number; deltaPages: number }): void {
    // Unprotected, output leaves as it is produced: nothing waits for this epoch.
    if (this.passthrough) this.lastReleased = Math.max(this.lastReleased, e.epoch);
    else {
      this.capturedAt.set(e.epoch, performance.now());
      if (this.capturedAt.size > MAX_TRACKED_EPOCHS) this.capturedAt.delete(this.capturedAt.keys().next().value as number);
    }
    this.pauseUsSum += e.pauseUs;
    this.metrics.checkpoints.inc();
    this.metrics.checkpointBytes.observe(e.bytes);
    if (e.deltaPages > 0) this.metrics.checkpointPages.inc({ encoding: 'delta' }, e.deltaPages);
    if (e.pages > e.deltaPages) this.metrics.checkpointPages.inc({ encoding: 'whole' }, e.pages - e.deltaPages);
    this.metrics.pauseSeconds.observe(e.pauseUs / 1e6);
  }

  private onReleased(epoch: number): void {
    if (epoch <= this.lastReleased) return;
    const now = performance.now();
    if (epoch - this.lastReleased > MAX_TRACKED_EPOCHS) this.lastReleased = epoch - MAX_TRACKED_EPOCHS;
    for (let e = this.lastReleased + 1; e <= epoch; e++) {
      const at = this.capturedAt.get(e);
      if (at === undefined) continue;
      this.capturedAt.delete(e);
      const ms = now - at;
      this.commitMsSum += ms;
      this.commitCount++;
      this.metrics.commitLatency.observe(ms / 1000);
    }
    this.lastReleased = epoch;
  }

  private onTick(): void {
    const s = this.node.statusReply();
    if (s.role !== 'primary' && s.primaryId !== '' && s.primaryId !== this.node.self) this.lastOtherPrimary = s.primaryId;
  }

  private onRole(role: string): void {
    const before = this.lastRole;
    this.lastRole = role;
    if (role === 'primary') {
      // A new PrimaryDriver: its epochs and counters start again.
      this.capturedAt.clear();
      const snap = this.node.primarySnapshot();
      this.passthrough = !(snap?.protected ?? true);
      this.lastReleased = snap?.stats.releasedEpoch ?? 0;
      this.pauseUsSum = 0;
      this.commitMsSum = 0;
      this.commitCount = 0;
      if (before !== '' && before !== 'primary' && this.node.timings.viewCommittedAt !== undefined) void this.classifyPromotion();
      else this.record('role', `${this.node.self} is primary (started the guest)`);
    } else if (role !== before) {
      const what = role === 'removed' ? 'removed by an operator: the primary refuses its joins until add-backup' : role;
      this.record('role', before === 'primary' ? `${this.node.self} stepped down from primary; now ${what}` : `${this.node.self} is ${what}`);
    }
  }

  /** Failover or switchover? Ask the old primary whether it handed over on purpose. */
  private async classifyPromotion(): Promise<void> {
    const t = this.node.timings;
    const servingMs = t.servingAt !== undefined && t.viewCommittedAt !== undefined ? t.servingAt - t.viewCommittedAt : undefined;
    const view = this.node.statusReply().view;
    const old = this.lastOtherPrimary;
    let planned = false;
    if (old !== null) {
      const member = this.node.config.replicas.find((r) => r.id === old);
      const probe = member === undefined ? null : await this.statusClient.probe(member.address);
      if (probe !== null && probe.ok) {
        const extras = parseExtras(probe.reply.statusJson);
        planned = extras?.events.some((e) => e.kind === 'admin' && e.message.startsWith(`planned switchover to ${this.node.self} `) && Date.now() - e.at < 60_000) ?? false;
      }
    }
    if (planned) this.metrics.switchovers.inc();
    else this.metrics.failovers.inc();
    const how = planned ? `by a planned switchover from ${old}` : `by failover${old !== null ? ` (${old} failed)` : ''}`;
    this.record('promoted', `${this.node.self} became primary of view ${view} ${how}${servingMs !== undefined ? `; serving ${Math.round(servingMs)} ms after the view was committed` : ''}`,
      { view, ...(servingMs !== undefined ? { durationMs: Math.round(servingMs) } : {}) });
    this.log.info({ view, planned, servingMs }, 'promoted');
  }

  /** Stop listening to the replica. */
  close(): void {
    clearInterval(this.tick);
    for (const [event, f] of this.listeners) this.node.off(event, f);
    this.node.statusExtras = null;
    this.statusClient.close();
  }
}

/** The extras of a Status reply's status_json, or null when absent or unreadable. */
export function parseExtras(statusJson: string): ReplicaExtras | null {
  try {
    const j = JSON.parse(statusJson) as { extras?: ReplicaExtras | null };
    return j.extras !== undefined && j.extras !== null && typeof j.extras === 'object' ? j.extras : null;
  } catch {
    return null;
  }
}
