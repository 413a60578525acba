import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { ADMIN_TOKEN_ENV, adminTokenFrom } from '../../dashboard/start-dashboard.js';
import { loadClusterConfig } from '../../replica/config/cluster-config.js';
import { LocalCluster } from '../../replica/supervisor/local-cluster.js';
import { parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';
import { packageFile } from '../../libos-host/platform/package-files.js';

export const UP_USAGE = `usage: waterbear up [--config waterbear.yaml] [--keep-data] [--admin-token TOKEN]

Start a local replicated cluster: every replica and witness of the cluster file as its own
process (default: deploy/local/waterbear.yaml — primary, backup and witness with the example
key-value service on 127.0.0.1:7000). Members that die are restarted and rejoin as backups.
Without --keep-data the members' data folders are cleared first, once every check passed
(guest module, TLS files, data paths): a refused start clears nothing. Ctrl-C stops everything.
Replicas with a "dashboard:" address serve the dashboard there; up prints their URLs. The
dashboard's actions use the admin token from --admin-token or WATERBEAR_ADMIN_TOKEN; without
either, up makes a random one and prints it in the URLs (#token=…, never sent to the server).`;

/** Bytes of the random admin token `up` makes when none is given. */
export const UP_TOKEN_BYTES = 16;

/** How often `up` checks who is primary, to report failovers. */
export const UP_POLL_INTERVAL_MS = 250;

/** `waterbear up`: the main job. */
export async function upCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, {
    config: { type: 'string' }, 'keep-data': { type: 'boolean' }, 'admin-token': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, 'up');
  if (values.help === true) { io.out(UP_USAGE + '\n'); return 0; }
  const configPath = values.config ?? packageFile('deploy/local/waterbear.yaml');
  const config = loadClusterConfig(configPath);
  // The replicas read the token from their environment (argv would show it in ps).
  const adminToken = adminTokenFrom(values['admin-token']) ?? randomBytes(UP_TOKEN_BYTES).toString('hex');
  const cluster = new LocalCluster({ configPath, config, env: { [ADMIN_TOKEN_ENV]: adminToken } });
  // Every check that can refuse the start comes before the data folders are cleared: a refused start loses nothing.
  cluster.check();
  if (values['keep-data'] !== true) {
    for (const m of [...config.replicas, ...config.witnesses]) rmSync(m.dataDir, { recursive: true, force: true });
  }
  const dashboards = config.replicas.filter((r) => r.dashboard !== null).map((r) => `http://${r.dashboard}/#token=${adminToken}  (${r.id})`);
  cluster.on('restart', (id: string, code: number | null, signal: string | null) => {
    io.err(`waterbear: ${id} exited (${signal ?? `code ${code}`}); restarted it — it rejoins as a backup\n`);
  });
  cluster.start();
  let lastPrimary = '';
  let lastView = 0;
  let announced = false;
  const poll = setInterval(() => {
    void cluster.primary().then((p) => {
      if (p === null) return;
      if (!announced) {
        announced = true;
        const pids = [...cluster.members.values()].map((m) => `${m.id} (${m.kind}, pid ${m.child?.pid ?? '-'})`).join(', ');
        io.out(`waterbear: cluster "${config.cluster}" is up: ${pids}\n` +
          `  service:    ${config.listen.join(', ')}  (guest ${config.guest.module})\n` +
          `  connect:    redis-cli -p ${config.listen[0].split(':').pop()}\n` +
          (dashboards.length > 0 ? `  dashboard:  ${dashboards.join('\n              ')}\n` +
            `  metrics:    ${config.replicas.filter((r) => r.dashboard !== null).map((r) => `http://${r.dashboard}/metrics`).join('  ')}\n` : '') +
          `  failover:   kill -9 ${cluster.pid(p.replicaId)}   (the primary, ${p.replicaId}); watch the backup take over\n` +
          `  status:     node ${shownPath(packageFile('cli/waterbear.js'))} status --config ${shownPath(configPath)}\n` +
          `  stop:       Ctrl-C\n`);
      } else if (p.replicaId !== lastPrimary || p.view !== lastView) {
        io.out(`waterbear: view ${p.view}: primary ${p.replicaId} (pid ${cluster.pid(p.replicaId)}), backups [${p.backups.join(', ')}]${p.protected ? '' : ' — UNPROTECTED'}\n`);
      }
      lastPrimary = p.replicaId;
      lastView = p.view;
    });
  }, UP_POLL_INTERVAL_MS);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  clearInterval(poll);
  io.err('waterbear: stopping the cluster\n');
  await cluster.stop();
  return 0;
}

/** `path` relative to the working directory when it lies under it (shorter to copy), else absolute. */
function shownPath(path: string): string {
  const rel = relative(process.cwd(), resolve(path));
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? resolve(path) : rel;
}
