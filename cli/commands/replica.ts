import { WaterbearError } from '../../libos-host/errors.js';
import { loadClusterConfig } from '../../replica/config/cluster-config.js';
import { coordinatorFactoryFor } from '../../replica/coord/create-coordinator.js';
import { ChaosControl } from '../../replica/chaos/chaos-control.js';
import { ReplicaNode } from '../../replica/node/replica-node.js';
import { parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';
import { applyV8Tuning } from '../v8-tuning.js';
import { ReplicaCollector } from '../../dashboard/replica-collector.js';
import { adminTokenFrom, startReplicaDashboard, type RunningDashboard } from '../../dashboard/start-dashboard.js';

export const REPLICA_USAGE = `usage: waterbear replica --config waterbear.yaml --id ID [--admin-token TOKEN]

Run one replica of a cluster: its gRPC server (replication and coordination), and the guest when
it is primary. Usually started by \`waterbear up\` or a systemd unit (deploy/).
When its cluster-file entry has "dashboard: HOST:PORT" it serves the dashboard, /metrics and
/health/* there (docs/dashboard.md). Actions need an admin token: --admin-token, or better the
environment variable WATERBEAR_ADMIN_TOKEN (argv is visible to other users); without one they are
disabled.`;

/** `waterbear replica` */
export async function replicaCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, { config: { type: 'string' }, id: { type: 'string' }, 'admin-token': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, 'replica');
  if (values.help === true) { io.out(REPLICA_USAGE + '\n'); return 0; }
  if (values.config === undefined || values.id === undefined) throw new WaterbearError('WB_CONFIG_INVALID', `replica: --config and --id are required\n${REPLICA_USAGE}`);
  const config = loadClusterConfig(values.config);
  applyV8Tuning();
  // TEST/CHAOS ONLY: with WATERBEAR_CHAOS_CONTROL set, the chaos harness skews this process's clock and fails its store.
  const chaos = ChaosControl.fromEnv();
  const node = new ReplicaNode(config, values.id, coordinatorFactoryFor(config, values.id, undefined, chaos?.clock), undefined,
    chaos === null ? {} : { clock: chaos.clock, storeFaultHook: chaos.storeFault });
  const done = new Promise<number>((resolve) => {
    const stop = (sig: string): void => { node.log.info(`${sig}: stopping`); void node.stop().then(() => resolve(0)); };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    node.on('guest-exit', (exit: { kind: string; code?: number }) => { void node.stop().then(() => resolve(exit.kind === 'exit' ? exit.code ?? 0 : 134)); });
  });
  // Always collected (cheap): any dashboard of the cluster reads it through the Status RPC.
  const collector = new ReplicaCollector(node, node.log);
  let dashboard: RunningDashboard | null = null;
  const started = node.start();
  started.catch(() => {}); // awaited below; meanwhile a failure must not be an unhandled rejection
  if (node.member.dashboard !== null) {
    try {
      dashboard = await startReplicaDashboard(node, collector, { adminToken: adminTokenFrom(values['admin-token']) });
      io.err(`waterbear: replica ${values.id} dashboard on ${dashboard.url}\n`);
    } catch (err) {
      // The replica matters more than its dashboard: keep replicating.
      node.log.error({ err: (err as Error).message }, 'dashboard not started');
    }
  }
  await started;
  io.err(`waterbear: replica ${values.id} serving on ${node.member.address} as ${node.role}\n`);
  const code = await done;
  await dashboard?.stop();
  collector.close();
  return code;
}
