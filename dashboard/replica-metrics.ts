import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Bucket bounds of waterbear_checkpoint_bytes: 4 KiB to 256 MiB, by 4. */
export const CHECKPOINT_BYTES_BUCKETS = [4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864, 268435456];
/** Bucket bounds of waterbear_checkpoint_pause_seconds: 50 µs to 1 s. */
export const PAUSE_SECONDS_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1];
/** Bucket bounds of waterbear_output_commit_latency_seconds: 100 µs to 5 s. */
export const COMMIT_SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

/** The gauges of one scrape share one read of the replica made within this many ms. */
export const SCRAPE_READ_REUSE_MS = 50;

/** Every role a replica reports; waterbear_role is 1 for the current one and 0 for the others. */
export const ROLES = ['starting', 'primary', 'backup', 'joining', 'removed', 'promoting', 'idle', 'stopped'] as const;

/** Values read at scrape time (gauges) from the replica. */
export interface ScrapeValues {
  role: string;
  view: number;
  protected: boolean;
  /** The primary has unbound the service address (lease lost; see PrimaryDriver.holdSole). */
  serviceParked: boolean;
  epoch: number;
  releasedEpoch: number;
  heldBytes: number;
  memoryBytes: number | null;
  lag: Array<{ backup: string; epochs: number; seconds: number }>;
  /** Cumulative connection counters of the current primary platform, or null. */
  io: { connectionsAccepted: number; bytesReceived: number; bytesSent: number } | null;
}

/**
 * The Prometheus metrics of one replica process (prom-client, its own registry). Names are in
 * base units; counters end in _total. Every metric is documented in README.md and docs/dashboard.md.
 */
export class ReplicaMetrics {
  readonly registry = new Registry();
  readonly checkpoints: Counter;
  readonly checkpointBytes: Histogram;
  readonly checkpointPages: Counter;
  readonly refusals: Counter;
  readonly pauseSeconds: Histogram;
  readonly commitLatency: Histogram;
  readonly applied: Counter;
  readonly appliedBytes: Counter;
  readonly failovers: Counter;
  readonly switchovers: Counter;
  readonly backupFailures: Counter;
  readonly adminActions: Counter;
  /** Connection counters at the last scrape (counters only grow: deltas are added). */
  readonly lastIo = { connectionsAccepted: 0, bytesReceived: 0, bytesSent: 0 };

  constructor(labels: { replica: string; cluster: string }, read: () => ScrapeValues, options: { processMetrics?: boolean } = {}) {
    const r = this.registry;
    r.setDefaultLabels(labels);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: r });
    const registers = [r];
    let snap: ScrapeValues | null = null;
    let snapAt = -Infinity;
    // About one read per scrape: the gauges of one scrape share a read.
    const values = (): ScrapeValues => {
      const now = performance.now();
      if (snap === null || now - snapAt > SCRAPE_READ_REUSE_MS) { snap = read(); snapAt = now; }
      return snap;
    };
    new Gauge({ name: 'waterbear_role', help: 'Role of this replica: 1 for the current role, 0 for the others', labelNames: ['role'], registers,
      collect() { const v = values(); for (const role of ROLES) this.set({ role }, v.role === role ? 1 : 0); } });
    new Gauge({ name: 'waterbear_view', help: 'View number this replica acts in (0: none yet)', registers, collect() { this.set(values().view); } });
    new Gauge({ name: 'waterbear_protected', help: '1 when this replica is the primary and its view has a backup acknowledging checkpoints; 0 otherwise', registers,
      collect() { this.set(values().protected ? 1 : 0); } });
    new Gauge({ name: 'waterbear_service_parked', help: '1 while this primary has lost its coordinator lease and freed the service address for a possible takeover; 0 otherwise', registers,
      collect() { this.set(values().serviceParked ? 1 : 0); } });
    new Gauge({ name: 'waterbear_epoch', help: 'Primary: highest epoch captured. Backup: highest epoch durable in its store', registers, collect() { this.set(values().epoch); } });
    new Gauge({ name: 'waterbear_released_epoch', help: 'Primary: output is released up to this epoch', registers, collect() { this.set(values().releasedEpoch); } });
    new Gauge({ name: 'waterbear_held_output_bytes', help: 'Guest output held by the network buffer until backups acknowledge its epoch (primary)', registers,
      collect() { this.set(values().heldBytes); } });
    new Gauge({ name: 'waterbear_guest_memory_bytes', help: 'Size of the guest linear memory (primary)', registers,
      collect() { const m = values().memoryBytes; if (m !== null) this.set(m); else this.reset(); } });
    new Gauge({ name: 'waterbear_replication_lag_epochs', help: 'Epochs captured by this primary and not yet acknowledged, per backup', labelNames: ['backup'], registers,
      collect() { this.reset(); for (const l of values().lag) this.set({ backup: l.backup }, l.epochs); } });
    new Gauge({ name: 'waterbear_replication_lag_seconds', help: 'Age of the oldest checkpoint a backup has not acknowledged, per backup (0 when caught up)', labelNames: ['backup'], registers,
      collect() { this.reset(); for (const l of values().lag) this.set({ backup: l.backup }, l.seconds); } });
    const self = this;
    const ioCounter = (name: string, help: string, key: keyof ReplicaMetrics['lastIo']): void => {
      new Counter({ name, help, registers, collect() {
        const io = values().io;
        if (io === null) return;
        const last = self.lastIo[key];
        const now = io[key];
        // A new primary platform starts from 0: count its whole value.
        this.inc(now >= last ? now - last : now);
        self.lastIo[key] = now;
      } });
    };
    ioCounter('waterbear_guest_connections_accepted_total', 'Connections the guest accepted on this replica while primary', 'connectionsAccepted');
    ioCounter('waterbear_guest_received_bytes_total', 'Bytes the guest read from its connections on this replica while primary', 'bytesReceived');
    ioCounter('waterbear_guest_sent_bytes_total', 'Bytes of guest output sent to clients (after release) on this replica while primary', 'bytesSent');
    this.checkpoints = new Counter({ name: 'waterbear_checkpoints_total', help: 'Checkpoints captured by this replica while primary', registers });
    this.checkpointBytes = new Histogram({ name: 'waterbear_checkpoint_bytes', help: 'Encoded size of each checkpoint captured', buckets: CHECKPOINT_BYTES_BUCKETS, registers });
    this.checkpointPages = new Counter({ name: 'waterbear_checkpoint_pages_total', help: 'Dirty pages in the checkpoints captured while primary, by encoding: "delta" (sub-page delta) or "whole"', labelNames: ['encoding'], registers });
    this.refusals = new Counter({ name: 'waterbear_checkpoints_refused_total', help: 'Checkpoints a backup refused while this replica was primary (each costs a full image), by error code', labelNames: ['code'], registers });
    this.pauseSeconds = new Histogram({ name: 'waterbear_checkpoint_pause_seconds', help: 'Guest pause to capture each checkpoint', buckets: PAUSE_SECONDS_BUCKETS, registers });
    this.commitLatency = new Histogram({ name: 'waterbear_output_commit_latency_seconds', help: "Delay from an epoch's checkpoint to the release of its output (latency output commit adds to replies)",
      buckets: COMMIT_SECONDS_BUCKETS, registers });
    this.applied = new Counter({ name: 'waterbear_checkpoints_applied_total', help: 'Checkpoints this replica stored and acknowledged as a backup', registers });
    this.appliedBytes = new Counter({ name: 'waterbear_checkpoint_applied_bytes_total', help: 'Bytes of checkpoints this replica stored as a backup', registers });
    this.failovers = new Counter({ name: 'waterbear_failovers_total', help: 'Times this replica took over as primary after the primary failed', registers });
    this.switchovers = new Counter({ name: 'waterbear_switchovers_total', help: 'Times this replica became primary by a planned switchover', registers });
    this.backupFailures = new Counter({ name: 'waterbear_backup_link_failures_total', help: 'Replication links to backups that failed while this replica was primary', registers });
    this.adminActions = new Counter({ name: 'waterbear_admin_actions_total', help: 'Operator actions handled by this dashboard, by action and result', labelNames: ['action', 'result'], registers });
  }

  /** The text exposition format. */
  metrics(): Promise<string> { return this.registry.metrics(); }
  get contentType(): string { return this.registry.contentType; }
}
