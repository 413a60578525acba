import { EventEmitter } from 'node:events';
import type { ClusterConfig } from '../replica/config/cluster-config.js';
import type { StatusReply } from '../replica/wire/replication-wire.js';
import { checkRange } from '../libos-host/units.js';
import type { ClusterState, MemberState, PrimaryNumbers, Protection, SeriesPoint, TimelineEvent, TimelineKind } from './model.js';
import { RecentAverage } from './recent-average.js';
import { parseExtras, type ReplicaExtras } from './replica-collector.js';
import { StatusClient, type StatusProbe } from '../replica/wire/status-client.js';

/** How often the dashboard asks every member for its status. */
export const MONITOR_POLL_INTERVAL_MS = 250;
/** One chart point per this many ms. */
export const SERIES_INTERVAL_MS = 1000;
/** Chart points kept (10 minutes at one per second). */
export const SERIES_POINTS_KEPT = 600;
/** The window of the dashboard's recent averages (added reply latency). */
export const RECENT_WINDOW_MS = 60_000;
/** Timeline events kept. */
export const TIMELINE_EVENTS_KEPT = 500;
/** A member is shown down after this many unanswered polls in a row (one slow answer is not a death). */
export const DOWN_AFTER_FAILED_POLLS = 2;
/** Default in-sync bound: a backup more than this far behind in time is not in sync. */
export const DEFAULT_IN_SYNC_MAX_LAG_MS = 1000;
/** A switchover event older than this does not explain a change of primary. */
export const SWITCHOVER_EVENT_MAX_AGE_MS = 60_000;

export interface ClusterMonitorOptions {
  config: ClusterConfig;
  /** The replica serving this dashboard (its status is read directly), or null. */
  local?: { id: string; status(): StatusReply } | null;
  adminEnabled: boolean;
  pollIntervalMs?: number;
  seriesIntervalMs?: number;
  /** In-sync bound in ms (default DEFAULT_IN_SYNC_MAX_LAG_MS) and epochs (default replication.maxInflightEpochs). */
  inSyncMaxLagMs?: number;
  inSyncMaxLagEpochs?: number;
  /** Wall clock (tests may pass their own). */
  nowMs?: () => number;
}

interface Tracked {
  reply: StatusReply | null;
  extras: ReplicaExtras | null;
  up: boolean;
  failures: number;
  lastSeenAt: number | null;
  /** Last time it answered as primary. */
  lastPrimaryAt: number | null;
  error: string | null;
  /** Highest local-event seq merged, per incarnation. */
  mergedSeq: Map<string, number>;
}

/**
 * The cluster as a dashboard sees it: asks every member for its Status several times a second,
 * derives the roles, the view, PROTECTED/UNPROTECTED, each backup's lag and whether it is in
 * sync, the chart series and the event timeline (view changes, failovers and their durations,
 * backups joining and catching up, members going down and up, and the events replicas report).
 * Emits 'cluster' (ClusterState) after every poll, 'timeline' (TimelineEvent), 'sample' (SeriesPoint).
 */
export class ClusterMonitor extends EventEmitter {
  private readonly o: ClusterMonitorOptions;
  private readonly client: StatusClient;
  private readonly tracked = new Map<string, Tracked>();
  private readonly nowMs: () => number;
  private readonly startedAt: number;
  private readonly inSyncMaxLagMs: number;
  private readonly inSyncMaxLagEpochs: number;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private current: ClusterState;
  private prev: ClusterState | null = null;
  private readonly events: TimelineEvent[] = [];
  private seq = 0;
  private readonly points: SeriesPoint[] = [];
  private lastSample: { at: number; n: PrimaryNumbers } | null = null;
  private lastSampleAt = -Infinity;
  /** The last replica seen as primary. */
  private lastPrimary: string | null = null;
  private readonly recentCommit = new RecentAverage(RECENT_WINDOW_MS);

  constructor(o: ClusterMonitorOptions) {
    super();
    this.o = o;
    this.nowMs = o.nowMs ?? Date.now;
    this.startedAt = this.nowMs();
    checkRange(o.pollIntervalMs ?? MONITOR_POLL_INTERVAL_MS, 10, 60_000, 'dashboard poll interval', (x) => `${x} ms`);
    this.inSyncMaxLagMs = checkRange(o.inSyncMaxLagMs ?? DEFAULT_IN_SYNC_MAX_LAG_MS, 1, 3_600_000, 'in-sync bound', (x) => `${x} ms`);
    this.inSyncMaxLagEpochs = checkRange(o.inSyncMaxLagEpochs ?? o.config.replication.maxInflightEpochs, 0, 1_000_000, 'in-sync bound in epochs');
    this.client = new StatusClient(o.config.tls);
    for (const m of [...o.config.replicas, ...o.config.witnesses]) {
      this.tracked.set(m.id, { reply: null, extras: null, up: false, failures: 0, lastSeenAt: null, lastPrimaryAt: null, error: 'not asked yet', mergedSeq: new Map() });
    }
    this.current = this.build();
  }

  /** Poll now and then every poll interval. */
  start(): void {
    if (this.timer !== null) return;
    void this.pollOnce();
    this.timer = setInterval(() => { void this.pollOnce(); }, this.o.pollIntervalMs ?? MONITOR_POLL_INTERVAL_MS);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.client.close();
  }

  /** The latest cluster state. */
  state(): ClusterState { return this.current; }
  /** Timeline events with seq > `since` (oldest first). */
  timeline(since = 0): TimelineEvent[] { return this.events.filter((e) => e.seq > since); }
  /** Chart points, oldest first. */
  series(): SeriesPoint[] { return [...this.points]; }
  /** The bounds a backup must stay within to be in sync. */
  get inSyncBounds(): { maxLagMs: number; maxLagEpochs: number } { return { maxLagMs: this.inSyncMaxLagMs, maxLagEpochs: this.inSyncMaxLagEpochs }; }

  /** Add an event to the timeline (external faults, operator actions seen by this dashboard). */
  addEvent(kind: TimelineKind, message: string, source: string, more: { replica?: string; view?: number; durationMs?: number; at?: number } = {}): TimelineEvent {
    const { at, ...rest } = more;
    const e: TimelineEvent = { seq: ++this.seq, at: at ?? this.nowMs(), kind, message, source, ...rest };
    this.events.push(e);
    if (this.events.length > TIMELINE_EVENTS_KEPT) this.events.splice(0, this.events.length - TIMELINE_EVENTS_KEPT);
    this.emit('timeline', e);
    return e;
  }

  /** Ask every member once and update the state (concurrent calls share one poll). */
  pollOnce(): Promise<void> {
    this.polling ??= this.poll().finally(() => { this.polling = null; });
    return this.polling;
  }

  private async poll(): Promise<void> {
    const members = [...this.o.config.replicas, ...this.o.config.witnesses];
    const probes = await Promise.all(members.map((m): Promise<StatusProbe> => {
      if (this.o.local?.id === m.id) {
        const local = this.o.local;
        return Promise.resolve({ ok: true, reply: local.status() });
      }
      return this.client.probe(m.address);
    }));
    const now = this.nowMs();
    members.forEach((m, i) => {
      const t = this.tracked.get(m.id)!;
      const p = probes[i];
      if (p.ok || p.answered) {
        t.up = true;
        t.failures = 0;
        t.lastSeenAt = now;
        t.error = null;
        if (p.ok) {
          t.reply = p.reply;
          t.extras = parseExtras(p.reply.statusJson);
          if (p.reply.role === 'primary') t.lastPrimaryAt = now;
        }
      } else {
        t.failures++;
        t.error = p.message;
        if (t.failures >= DOWN_AFTER_FAILED_POLLS) { t.up = false; t.reply = null; t.extras = null; }
      }
    });
    this.prev = this.current;
    this.current = this.build();
    this.deriveEvents(this.prev, this.current);
    this.mergeReplicaEvents();
    this.sample(now);
    this.emit('cluster', this.current);
  }

  private build(): ClusterState {
    const now = this.nowMs();
    let primary: { id: string; reply: StatusReply; extras: ReplicaExtras | null } | null = null;
    let view = 0;
    for (const r of this.o.config.replicas) {
      const t = this.tracked.get(r.id)!;
      if (t.reply === null) continue;
      view = Math.max(view, t.reply.view);
      if (t.reply.role === 'primary' && (primary === null || t.reply.view > primary.reply.view)) primary = { id: r.id, reply: t.reply, extras: t.extras };
    }
    const links = primary?.extras?.primary?.links ?? [];
    const backups = primary?.reply.backups ?? [];
    const members: MemberState[] = [];
    for (const r of this.o.config.replicas) {
      const t = this.tracked.get(r.id)!;
      const inView = backups.includes(r.id);
      const link = links.find((l) => l.backup === r.id);
      const isBackup = t.reply !== null && t.reply.role !== 'primary' && link !== undefined;
      const lagEpochs = isBackup ? link.lagEpochs : null;
      const lagSeconds = isBackup ? link.lagSeconds : null;
      members.push({
        id: r.id, kind: 'replica', address: r.address, dashboard: r.dashboard, up: t.up,
        role: !t.up ? 'down' : t.reply?.role ?? 'starting', view: t.reply?.view ?? 0, epoch: t.reply?.epoch ?? 0, inView,
        lagEpochs, lagSeconds,
        inSync: t.reply === null || t.reply.role === 'primary' ? null
          : inView && t.up && lagEpochs !== null && lagSeconds !== null && lagEpochs <= this.inSyncMaxLagEpochs && lagSeconds * 1000 <= this.inSyncMaxLagMs,
        lastSeenAt: t.lastSeenAt, error: t.up ? null : t.error,
        serviceParked: t.up && t.reply?.role === 'primary' && t.extras?.primary?.serviceParked === true,
      });
    }
    for (const w of this.o.config.witnesses) {
      const t = this.tracked.get(w.id)!;
      members.push({
        id: w.id, kind: 'witness', address: w.address, dashboard: null, up: t.up, role: t.up ? 'witness' : 'down', view: 0, epoch: 0,
        inView: false, lagEpochs: null, lagSeconds: null, inSync: null, lastSeenAt: t.lastSeenAt, error: t.up ? null : t.error,
        serviceParked: false,
      });
    }
    const protection: Protection = primary === null ? 'NO PRIMARY' : primary.reply.protected ? 'PROTECTED' : 'UNPROTECTED';
    const pn = primary?.extras?.primary ?? null;
    const inViewLinks = links.filter((l) => l.inView);
    if (pn === null || primary === null) this.recentCommit.reset();
    const primaryNumbers: PrimaryNumbers | null = pn === null || primary === null ? null : {
      replica: primary.id,
      capturedEpoch: pn.capturedEpoch, releasedEpoch: pn.releasedEpoch, checkpoints: pn.checkpoints, checkpointBytes: pn.checkpointBytes,
      pauseUsSum: pn.pauseUsSum, lastPauseUs: pn.lastPauseUs, lastCheckpointBytes: pn.lastCheckpointBytes, heldBytes: pn.heldBytes,
      capturedPages: pn.capturedPages, deltaPages: pn.deltaPages, refusals: pn.refusals,
      bufferedBytes: pn.bufferedBytes, commitLatencyMsSum: pn.commitLatencyMsSum, commitLatencyCount: pn.commitLatencyCount,
      recentCommitLatencyMs: this.recentCommit.update(now, `${primary.id}/${primary.reply.view}`, pn.commitLatencyMsSum, pn.commitLatencyCount),
      memoryBytes: pn.memoryBytes, bytesReceived: pn.bytesReceived, bytesSent: pn.bytesSent, connectionsAccepted: pn.connectionsAccepted,
      lagEpochs: Math.max(0, ...inViewLinks.map((l) => l.lagEpochs)), lagSeconds: Math.max(0, ...inViewLinks.map((l) => l.lagSeconds)),
      imageSha256: pn.imageSha256, extensions: pn.extensions, serviceParked: pn.serviceParked === true,
    };
    return {
      cluster: this.o.config.cluster, at: now, view: Math.max(view, primary?.reply.view ?? 0), primary: primary?.id ?? null, backups: [...backups],
      protection, members, primaryNumbers, servedBy: this.o.local?.id ?? null, admin: { enabled: this.o.adminEnabled }, startedAt: this.startedAt,
    };
  }

  /** Timeline entries for what changed between two polls. */
  private deriveEvents(a: ClusterState, b: ClusterState): void {
    // Before anyone answered, "down" and "joining" are not news, and neither is the view or the
    // protection found: one entry says what this dashboard found when it started watching.
    const first = a.members.every((m) => m.lastSeenAt === null);
    if (first) {
      if (b.members.some((m) => m.lastSeenAt !== null)) {
        this.lastPrimary = b.primary;
        this.addEvent('observed', b.primary === null ? `dashboard started watching: ${b.protection}`
          : `dashboard started watching: ${b.protection}, primary ${b.primary} of view ${b.view}, backups [${b.backups.join(', ')}]`, 'dashboard', b.primary === null ? {} : { view: b.view });
      }
      return;
    }
    for (const m of b.members) {
      const before = a.members.find((x) => x.id === m.id)!;
      if (before.up && !m.up) this.addEvent('replica-down', `${m.id} (${before.role}) stopped answering: ${m.error ?? 'no answer'}`, 'dashboard', { replica: m.id });
      if (!before.up && m.up && before.lastSeenAt !== null) this.addEvent('replica-up', `${m.id} is answering again (${m.role})`, 'dashboard', { replica: m.id });
      if (m.role === 'joining' && before.role !== 'joining') this.addEvent('backup-joining', `${m.id} is joining: catching up from primary ${b.primary ?? '?'} (full image, then increments)`, 'dashboard', { replica: m.id });
    }
    // The previous primary, across a gap with none (a dead primary is shown down before its successor serves).
    const old = this.lastPrimary;
    if (b.primary !== null) this.lastPrimary = b.primary;
    if (b.primary !== null && old !== null && b.primary !== old) {
      const planned = this.switchoverStartedAt(old, b.primary);
      const lastOld = this.tracked.get(old)?.lastPrimaryAt ?? null;
      if (planned !== null) {
        this.addEvent('switchover', `planned switchover: ${b.primary} is primary of view ${b.view} (was ${old}); ${this.nowMs() - planned} ms from the request`, 'dashboard',
          { replica: b.primary, view: b.view, durationMs: this.nowMs() - planned });
      } else {
        const gap = lastOld === null ? null : b.at - lastOld;
        this.addEvent('failover', `failover: ${b.primary} is primary of view ${b.view} (was ${old})${gap !== null ? `; ${(gap / 1000).toFixed(2)} s from ${old}'s last answer as primary to ${b.primary} serving` : ''}`,
          'dashboard', { replica: b.primary, view: b.view, ...(gap !== null ? { durationMs: gap } : {}) });
      }
    }
    if (b.primary !== null && (b.view > a.view || a.primary === null)) {
      this.addEvent('view-change', `view ${b.view}: primary ${b.primary}, backups [${b.backups.join(', ')}]`, 'dashboard', { view: b.view });
    }
    if (b.primary !== null && b.primary === a.primary) {
      for (const id of b.backups) if (!a.backups.includes(id)) this.addEvent('backup-caught-up', `${id} caught up and protects primary ${b.primary} (view ${b.view})`, 'dashboard', { replica: id, view: b.view });
      for (const id of a.backups) if (!b.backups.includes(id)) this.addEvent('backup-removed', `${id} left the view (view ${b.view})`, 'dashboard', { replica: id, view: b.view });
    }
    if (a.protection !== b.protection) {
      if (b.protection === 'PROTECTED') this.addEvent('protection-regained', `PROTECTED: ${b.backups.join(', ')} ${b.backups.length === 1 ? 'acknowledges' : 'acknowledge'} every checkpoint before output is released (view ${b.view})`, 'dashboard', { view: b.view });
      else if (b.protection === 'UNPROTECTED') this.addEvent('protection-lost', `UNPROTECTED: view ${b.view} has no backup; ${b.primary} releases output without acknowledgement`, 'dashboard', { view: b.view });
      else this.addEvent('protection-lost', 'NO PRIMARY: no replica answers as primary; the service is unavailable', 'dashboard');
    }
  }

  /** When `from` started a planned switchover to `to`, from its recent events, or null. */
  private switchoverStartedAt(from: string, to: string): number | null {
    const ev = this.tracked.get(from)?.extras?.events ?? [];
    const now = this.nowMs();
    for (let i = ev.length - 1; i >= 0; i--) {
      const e = ev[i];
      if (e.kind === 'admin' && e.message.startsWith(`planned switchover to ${to} `) && now - e.at < SWITCHOVER_EVENT_MAX_AGE_MS) return e.at;
    }
    return null;
  }

  /** Bring in events the replicas recorded themselves (faults, promotions, operator actions). */
  private mergeReplicaEvents(): void {
    for (const [id, t] of this.tracked) {
      const x = t.extras;
      if (x === null) continue;
      const seen = t.mergedSeq.get(x.incarnation) ?? 0;
      for (const e of x.events) {
        if (e.seq <= seen) continue;
        this.addEvent(e.kind, e.message, id, { replica: id, at: e.at, ...(e.view !== undefined ? { view: e.view } : {}), ...(e.durationMs !== undefined ? { durationMs: e.durationMs } : {}) });
      }
      const max = x.events.length === 0 ? seen : Math.max(seen, x.events[x.events.length - 1].seq);
      t.mergedSeq.set(x.incarnation, max);
    }
  }

  /** A chart point every series interval: rates from the primary's cumulative counters. */
  private sample(now: number): void {
    if (now - this.lastSampleAt < (this.o.seriesIntervalMs ?? SERIES_INTERVAL_MS)) return;
    this.lastSampleAt = now;
    const n = this.current.primaryNumbers;
    const prev = this.lastSample;
    this.lastSample = n === null ? null : { at: now, n };
    const comparable = n !== null && prev !== null && prev.n.replica === n.replica && n.checkpoints >= prev.n.checkpoints && n.commitLatencyCount >= prev.n.commitLatencyCount && n.bytesSent >= prev.n.bytesSent && now > prev.at;
    const dt = comparable ? (now - prev!.at) / 1000 : 0;
    const d = (f: (x: PrimaryNumbers) => number): number => f(n!) - f(prev!.n);
    const dCp = comparable ? d((x) => x.checkpoints) : 0;
    const dCommit = comparable ? d((x) => x.commitLatencyCount) : 0;
    const point: SeriesPoint = {
      t: now / 1000,
      checkpointsPerSecond: comparable ? dCp / dt : null,
      checkpointBytes: comparable && dCp > 0 ? d((x) => x.checkpointBytes) / dCp : null,
      pauseMs: comparable && dCp > 0 ? d((x) => x.pauseUsSum) / dCp / 1000 : null,
      lagEpochs: n?.lagEpochs ?? null,
      lagMs: n === null ? null : n.lagSeconds * 1000,
      heldBytes: n?.heldBytes ?? null,
      commitLatencyMs: comparable && dCommit > 0 ? d((x) => x.commitLatencyMsSum) / dCommit : null,
      receivedBytesPerSecond: comparable ? d((x) => x.bytesReceived) / dt : null,
      sentBytesPerSecond: comparable ? d((x) => x.bytesSent) / dt : null,
      memoryBytes: n?.memoryBytes ?? null,
    };
    this.points.push(point);
    if (this.points.length > SERIES_POINTS_KEPT) this.points.splice(0, this.points.length - SERIES_POINTS_KEPT);
    this.emit('sample', point);
  }
}
