import type { ClusterConfig } from '../replica/config/cluster-config.js';
import { createLogger, type Logger } from '../replica/log.js';
import type { ReplicaAdmin } from '../replica/node/replica-node.js';
import { ClusterActions } from './actions.js';
import { clusterMetrics } from './cluster-metrics.js';
import { ClusterMonitor } from './cluster-monitor.js';
import { DashboardServer } from './dashboard-server.js';
import { readGuestInfo } from './guest-info.js';
import { ReplicaCollector, type CollectedNode } from './replica-collector.js';

/** Environment variable holding the admin token (preferred to --admin-token: argv is visible in ps). */
export const ADMIN_TOKEN_ENV = 'WATERBEAR_ADMIN_TOKEN';

/** The admin token from a flag, else from WATERBEAR_ADMIN_TOKEN, else null (actions disabled). */
export function adminTokenFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | null {
  const t = flag ?? env[ADMIN_TOKEN_ENV];
  return t === undefined || t === '' ? null : t;
}

export interface RunningDashboard {
  url: string;
  monitor: ClusterMonitor;
  server: DashboardServer;
  stop(): Promise<void>;
}

/** Tuning shared by both kinds of dashboard. */
export interface DashboardTuning {
  pollIntervalMs?: number;
  seriesIntervalMs?: number;
  inSyncMaxLagMs?: number;
}

/**
 * The dashboard a replica serves on its cluster-file `dashboard:` address (or `listen`): the
 * cluster as seen from this replica, its own metrics and health, actions run here when it is
 * primary and forwarded to the primary's dashboard otherwise.
 */
export async function startReplicaDashboard(
  node: CollectedNode & ReplicaAdmin, collector: ReplicaCollector,
  o: { listen?: string; adminToken: string | null; log?: Logger } & DashboardTuning,
): Promise<RunningDashboard> {
  const member = node.config.replicas.find((r) => r.id === node.self);
  const listen = o.listen ?? member?.dashboard ?? null;
  if (listen === null) throw new Error(`${node.self} has no dashboard address`);
  const log = o.log ?? createLogger('dashboard', { replica: node.self });
  const monitor = new ClusterMonitor({
    config: node.config, local: { id: node.self, status: () => node.statusReply() }, adminEnabled: o.adminToken !== null,
    ...tuning(o),
  });
  const server = new DashboardServer({
    listen, config: node.config, monitor, guest: readGuestInfo(node.config), adminToken: o.adminToken, log,
    actions: new ClusterActions({ config: node.config, monitor, local: node }),
    metrics: async () => ({ contentType: collector.metrics.contentType, body: await collector.metrics.metrics() }),
    health: () => ({ self: node.self, localRole: node.role, localParked: node.serviceParked }),
    onAction: (name, ok) => collector.metrics.adminActions.inc({ action: name, result: ok ? 'ok' : 'error' }),
  });
  return launch(monitor, server);
}

/** `waterbear dashboard`: the same UI for a whole cluster, from outside any replica. */
export async function startClusterDashboard(config: ClusterConfig, o: { listen: string; adminToken: string | null; log?: Logger } & DashboardTuning): Promise<RunningDashboard> {
  const log = o.log ?? createLogger('dashboard');
  const monitor = new ClusterMonitor({ config, local: null, adminEnabled: o.adminToken !== null, ...tuning(o) });
  const registry = clusterMetrics(monitor, config.cluster);
  const server = new DashboardServer({
    listen: o.listen, config, monitor, guest: readGuestInfo(config), adminToken: o.adminToken, log,
    actions: new ClusterActions({ config, monitor, local: null }),
    metrics: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
    health: () => ({ self: null, localRole: null }),
  });
  return launch(monitor, server);
}

function tuning(o: DashboardTuning): DashboardTuning {
  return {
    ...(o.pollIntervalMs !== undefined ? { pollIntervalMs: o.pollIntervalMs } : {}),
    ...(o.seriesIntervalMs !== undefined ? { seriesIntervalMs: o.seriesIntervalMs } : {}),
    ...(o.inSyncMaxLagMs !== undefined ? { inSyncMaxLagMs: o.inSyncMaxLagMs } : {}),
  };
}

async function launch(monitor: ClusterMonitor, server: DashboardServer): Promise<RunningDashboard> {
  const url = await server.start();
  monitor.start();
  return {
    url, monitor, server,
    stop: async () => { monitor.stop(); await server.stop(); },
  };
}
