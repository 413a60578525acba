/**
 * The dashboard's data model: what the JSON API returns and the Server-Sent Events carry. Shared
 * by the server (Node) and the UI (browser bundle), so it holds types and pure helpers only.
 * Times are wall-clock milliseconds since the Unix epoch unless a name says otherwise.
 */

/** The state the operator must see first. */
export type Protection = 'PROTECTED' | 'UNPROTECTED' | 'NO PRIMARY';

/** One replica or witness as the dashboard last saw it. */
export interface MemberState {
  id: string;
  kind: 'replica' | 'witness';
  /** gRPC address (replication, coordination, Status). */
  address: string;
  /** host:port of its own dashboard, or null. */
  dashboard: string | null;
  /** It answered the last Status request(s). */
  up: boolean;
  /** primary | backup | joining | removed | promoting | idle | starting | stopped | witness | down */
  role: string;
  /** The view this member acts in (0 when unknown; witnesses report none). */
  view: number;
  /** Primary: highest epoch captured. Backup: highest epoch durable. */
  epoch: number;
  /** A backup of the current view. */
  inView: boolean;
  /** Backups only: epochs captured by the primary and not yet acknowledged by this backup. */
  lagEpochs: number | null;
  /** Backups only: age of the oldest checkpoint this backup has not acknowledged, in seconds. */
  lagSeconds: number | null;
  /** Backups only: in the view and within the in-sync bound (see docs/dashboard.md). */
  inSync: boolean | null;
  /** When it last answered, or null. */
  lastSeenAt: number | null;
  /** Why it is down (the Status RPC's error), or null. */
  error: string | null;
  /** A primary that freed the service address after losing its coordinator lease (see PrimaryNumbers). */
  serviceParked: boolean;
}

/** The primary's numbers (cumulative counters reset when another replica becomes primary). */
export interface PrimaryNumbers {
  replica: string;
  capturedEpoch: number;
  releasedEpoch: number;
  checkpoints: number;
  checkpointBytes: number;
  /** Sum of guest pauses for checkpoints, in microseconds. */
  pauseUsSum: number;
  lastPauseUs: number;
  lastCheckpointBytes: number;
  /** Pages captured, those sent as sub-page deltas, and checkpoints backups refused (this primary's tenure). */
  capturedPages: number;
  deltaPages: number;
  refusals: number;
  /** Output held by the network buffer, waiting for acknowledgements. */
  heldBytes: number;
  /** Held plus released-but-not-yet-sent output. */
  bufferedBytes: number;
  /** Sum and count of capture-to-release delays of epochs (the latency output commit adds), in ms. */
  commitLatencyMsSum: number;
  commitLatencyCount: number;
  /** Their average over the last minute (RECENT_WINDOW_MS), or null if no epoch was released in it. */
  recentCommitLatencyMs: number | null;
  memoryBytes: number;
  bytesReceived: number;
  bytesSent: number;
  connectionsAccepted: number;
  /** Largest lag over the view's backups. */
  lagEpochs: number;
  lagSeconds: number;
  imageSha256: string;
  /** Extension stack above the platform, top first. */
  extensions: string[];
  /**
   * The primary lost its coordinator lease and freed the service address (listeners closed,
   * connections cut) while keeping the guest's state: clients cannot reach it until its lease
   * returns or a backup takes over.
   */
  serviceParked: boolean;
}

/** The cluster as one dashboard sees it. */
export interface ClusterState {
  cluster: string;
  at: number;
  /** Highest view any replica reported. */
  view: number;
  primary: string | null;
  backups: string[];
  protection: Protection;
  members: MemberState[];
  primaryNumbers: PrimaryNumbers | null;
  /** The replica serving this dashboard, or null for `waterbear dashboard`. */
  servedBy: string | null;
  /** Whether actions are enabled (an admin token is configured). */
  admin: { enabled: boolean };
  /**
   * When this dashboard started (ms since the epoch). Timeline seq numbers restart with it, and
   * its timeline starts empty: a script following `/api/timeline?since=SEQ` starts over when it changes.
   */
  startedAt: number;
}

/** One point of the live charts: rates and averages over the interval that ends at `t`. */
export interface SeriesPoint {
  /** Seconds since the Unix epoch (uPlot's x axis). */
  t: number;
  checkpointsPerSecond: number | null;
  /** Average checkpoint size over the interval. */
  checkpointBytes: number | null;
  /** Average guest pause per checkpoint over the interval. */
  pauseMs: number | null;
  lagEpochs: number | null;
  lagMs: number | null;
  heldBytes: number | null;
  /** Average capture-to-release delay of epochs released in the interval. */
  commitLatencyMs: number | null;
  receivedBytesPerSecond: number | null;
  sentBytesPerSecond: number | null;
  memoryBytes: number | null;
}

export type TimelineKind =
  | 'view-change' | 'failover' | 'switchover' | 'promoted' | 'backup-joining' | 'backup-caught-up' | 'backup-removed'
  | 'protection-lost' | 'protection-regained' | 'replica-down' | 'replica-up' | 'fault' | 'admin' | 'role'
  | 'service-parked' | 'service-unparked' | 'observed';

/** One entry of the event timeline. */
export interface TimelineEvent {
  /** Unique within this dashboard, increasing. */
  seq: number;
  at: number;
  kind: TimelineKind;
  message: string;
  replica?: string;
  view?: number;
  durationMs?: number;
  /** Who reported it: a replica id, "dashboard" (derived from Status), or an external source. */
  source: string;
}

/** The guest as configured and (when a primary runs it) as running. */
export interface GuestInfo {
  module: string;
  moduleBytes: number;
  moduleSha256: string;
  /** The prepared image's sha256, from the primary (null until one runs). */
  imageSha256: string | null;
  imports: Array<{ module: string; name: string; kind: string; supported: boolean }>;
  memory: { initialPages: number; maximumPages: number | null; limitBytes: number; currentBytes: number | null };
  listeners: string[];
  args: string[];
  /** Names only: values may be secrets. */
  envNames: string[];
  dirs: Array<{ guestPath: string; hostPath: string | null }>;
  /** Top first, ending with the platform. */
  extensionStack: string[];
  tracker: string;
  problems: string[];
}

/** Everything the UI needs at load; then SSE keeps it current. */
export interface DashboardState {
  cluster: ClusterState;
  guest: GuestInfo;
  timeline: TimelineEvent[];
  series: SeriesPoint[];
}

/** The JSON body of every API error. */
export interface ApiError { error: { code: string; message: string } }

/** The operator actions, as named in the URL (/api/actions/NAME). */
export const ACTIONS = ['checkpoint', 'switchover', 'add-backup', 'remove-backup'] as const;
export type ActionName = (typeof ACTIONS)[number];
