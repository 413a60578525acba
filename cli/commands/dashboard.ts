import { WaterbearError } from '../../libos-host/errors.js';
import { parseDurationMs } from '../../libos-host/units.js';
import { loadClusterConfig } from '../../replica/config/cluster-config.js';
import { adminTokenFrom, startClusterDashboard } from '../../dashboard/start-dashboard.js';
import { parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';

/** Where `waterbear dashboard` listens unless told. */
export const DEFAULT_DASHBOARD_LISTEN = '127.0.0.1:7200';

export const DASHBOARD_USAGE = `usage: waterbear dashboard --config waterbear.yaml [--listen 127.0.0.1:7200] [--admin-token TOKEN] [--in-sync-max-lag 1s]

Serve the operator dashboard for a whole cluster from outside its replicas: the UI, the JSON API
and live updates, /metrics (waterbear_cluster_*) and /health/*. It asks every member for its
status over the replicas' gRPC addresses (TLS from the cluster file). Actions (switchover, add or
remove a backup, checkpoint) are forwarded to the primary's own dashboard, so they need the
replicas' "dashboard:" addresses and the same admin token. Give the token with
WATERBEAR_ADMIN_TOKEN (preferred: argv is visible to other users) or --admin-token; without one
actions are disabled. See docs/dashboard.md.`;

/** `waterbear dashboard`: runs until SIGINT/SIGTERM. */
export async function dashboardCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, {
    config: { type: 'string', short: 'c' }, listen: { type: 'string' }, 'admin-token': { type: 'string' },
    'in-sync-max-lag': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, 'dashboard');
  if (values.help === true) { io.out(DASHBOARD_USAGE + '\n'); return 0; }
  if (values.config === undefined) throw new WaterbearError('WB_CONFIG_INVALID', `dashboard: --config is required\n${DASHBOARD_USAGE}`);
  const config = loadClusterConfig(values.config);
  const inSync = values['in-sync-max-lag'] === undefined ? undefined : parseDurationMs(values['in-sync-max-lag'], '--in-sync-max-lag');
  const d = await startClusterDashboard(config, {
    listen: values.listen ?? DEFAULT_DASHBOARD_LISTEN, adminToken: adminTokenFrom(values['admin-token']),
    ...(inSync !== undefined ? { inSyncMaxLagMs: inSync } : {}),
  });
  io.out(`waterbear: dashboard for cluster "${config.cluster}" on ${d.url}${adminTokenFrom(values['admin-token']) === null ? ' (actions disabled: no admin token)' : ''}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await d.stop();
  return 0;
}
