import { WaterbearError } from '../../libos-host/errors.js';
import { loadClusterConfig, plaintextLinks } from '../../replica/config/cluster-config.js';
import { warnPlaintext } from '../plaintext-warning.js';
import { coordinatorFactoryFor } from '../../replica/coord/create-coordinator.js';
import { ChaosControl } from '../../replica/chaos/chaos-control.js';
import { ReplicaNode } from '../../replica/node/replica-node.js';
import { parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';
import { COORDINATOR_FAILED_EXIT_CODE, coordinatorFailedMessage, TRAP_EXIT_CODE } from '../exit-codes.js';
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
  return serveReplica({ configPath: values.config, id: values.id, adminToken: values['admin-token'] }, io);
}

/** What `waterbear replica` and `waterbear join` run. */
export interface ServeReplicaOptions {
  configPath: string;
  id: string;
  adminToken: string | undefined;
  /** `waterbear join`: never create the cluster's first view (ReplicaNodeOptions.joinOnly). */
  joinOnly?: boolean;
  /**
   * Called with the node before it starts, and `finish`, which stops the node and makes the
   * command return `code` (as SIGTERM does with 0).
   */
  watch?: (node: ReplicaNode, finish: (code: number) => void) => void;
}

/**
 * Run one replica in this process until SIGTERM/SIGINT (exit code 0), the guest's exit (its exit
 * code, TRAP_EXIT_CODE for a trap) or `finish`. A failure to start stops what was started and throws.
 */
export async function serveReplica(o: ServeReplicaOptions, io: CliIo): Promise<number> {
  const config = loadClusterConfig(o.configPath);
  warnPlaintext(io, `replica ${o.id}`, plaintextLinks(config));
  applyV8Tuning();
  // TEST/CHAOS ONLY: with WATERBEAR_CHAOS_CONTROL set, the chaos harness skews this process's clock and fails its store.
  const chaos = ChaosControl.fromEnv();
  const node = new ReplicaNode(config, o.id, coordinatorFactoryFor(config, o.id, undefined, chaos?.clock), undefined,
    { ...(chaos === null ? {} : { clock: chaos.clock, storeFaultHook: chaos.storeFault }), ...(o.joinOnly === true ? { joinOnly: true } : {}) });
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => { resolveDone = resolve; });
  const finish = (code: number): void => { void node.stop().then(() => resolveDone(code)); };
  const stop = (sig: string): void => { node.log.info(`${sig}: stopping`); finish(0); };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  node.on('guest-exit', (exit: { kind: string; code?: number }) => finish(exit.kind === 'exit' ? exit.code ?? 0 : TRAP_EXIT_CODE));
  node.on('coordinator-failed', (err: Error) => {
    io.err(`waterbear: replica ${o.id}: ${coordinatorFailedMessage(err)}\n`);
    finish(COORDINATOR_FAILED_EXIT_CODE);
  });
  o.watch?.(node, finish);
  // Always collected (cheap): any dashboard of the cluster reads it through the Status RPC.
  const collector = new ReplicaCollector(node, node.log);
  let dashboard: RunningDashboard | null = null;
  const started = node.start();
  started.catch(() => {}); // awaited below; meanwhile a failure must not be an unhandled rejection
  if (node.member.dashboard !== null) {
    try {
      dashboard = await startReplicaDashboard(node, collector, { adminToken: adminTokenFrom(o.adminToken) });
      io.err(`waterbear: replica ${o.id} dashboard on ${dashboard.url}\n`);
    } catch (err) {
      // The replica matters more than its dashboard: keep replicating.
      node.log.error({ err: (err as Error).message }, 'dashboard not started');
    }
  }
  try {
    await Promise.race([started, done]);
  } catch (err) {
    // Stopped while starting (a signal, or `finish`: node.stop() marks it stopped at once): that
    // is the outcome, not the start's error.
    if (node.role !== 'stopped') {
      // Nothing may keep the process alive after a failed start (the gRPC server, the coordinator).
      await node.stop();
      await dashboard?.stop();
      collector.close();
      throw err;
    }
  }
  if (node.role !== 'stopped') io.err(`waterbear: replica ${o.id} serving on ${node.member.address} as ${node.role}\n`);
  const code = await done;
  await dashboard?.stop();
  collector.close();
  return code;
}
