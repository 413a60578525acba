import { WaterbearError } from '../../libos-host/errors.js';
import { checkRange, parseDurationMs } from '../../libos-host/units.js';
import { loadClusterConfig, type ClusterConfig } from '../../replica/config/cluster-config.js';
import { ClusterMonitor } from '../../dashboard/cluster-monitor.js';
import type { ClusterState, MemberState, Protection } from '../../dashboard/model.js';
import { parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';

/** Exit codes of `waterbear status`, by protection. */
export const STATUS_EXIT_CODES: Record<Protection, number> = { PROTECTED: 0, 'NO PRIMARY': 1, UNPROTECTED: 3 };
/** How often --wait-protected asks again. */
export const STATUS_WAIT_POLL_MS = 250;
/** Longest --wait-protected. */
const STATUS_WAIT_MAX_MS = 24 * 3_600_000;

export const STATUS_USAGE = `usage: waterbear status --config waterbear.yaml [--json] [--wait-protected 60s]

Ask every member of a cluster for its status (the Status RPC the dashboard uses) and print who is
primary, which backups protect it, each backup's lag, and which members do not answer.

  --json                print the cluster state as JSON (the dashboard's /api/cluster shape)
  --wait-protected D    ask again every ${STATUS_WAIT_POLL_MS} ms until the cluster is PROTECTED, for at most D
                        (e.g. after \`waterbear join\` or a failover); prints the last state

Exit code: 0 PROTECTED (a primary whose every backup acknowledges checkpoints before output
leaves), 3 UNPROTECTED (a primary serving without a backup), 1 NO PRIMARY (no replica answers
as primary, or the primary parked its service after losing its coordinator lease: the service
is down), 2 usage or configuration error.`;

/** `waterbear status` */
export async function statusCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, {
    config: { type: 'string' }, json: { type: 'boolean' }, 'wait-protected': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, 'status');
  if (values.help === true) { io.out(STATUS_USAGE + '\n'); return 0; }
  if (values.config === undefined) throw new WaterbearError('WB_CONFIG_INVALID', `status: --config is required\n${STATUS_USAGE}`);
  const waitMs = values['wait-protected'] === undefined ? 0
    : checkRange(parseDurationMs(values['wait-protected'], '--wait-protected'), 0, STATUS_WAIT_MAX_MS, '--wait-protected', (x) => `${x} ms`);
  const config = loadClusterConfig(values.config);
  const deadline = performance.now() + waitMs;
  let state = await askOnce(config);
  while ((state.protection !== 'PROTECTED' || primaryParked(state)) && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.min(STATUS_WAIT_POLL_MS, Math.max(0, deadline - performance.now()))));
    state = await askOnce(config);
  }
  io.out(values.json === true ? `${JSON.stringify(state, null, 2)}\n` : formatClusterStatus(state));
  return primaryParked(state) ? STATUS_EXIT_CODES['NO PRIMARY'] : STATUS_EXIT_CODES[state.protection];
}

/** The primary lost its coordinator lease and freed the service address: clients cannot connect. */
function primaryParked(c: ClusterState): boolean {
  return c.primary !== null && c.members.some((m) => m.id === c.primary && m.serviceParked);
}

/**
 * Every member's status, asked once over new connections: a gRPC channel that was refused keeps
 * failing fast for its reconnect backoff (a second or more), which would show a member that has
 * just come up as down.
 */
async function askOnce(config: ClusterConfig): Promise<ClusterState> {
  const monitor = new ClusterMonitor({ config, adminEnabled: false });
  try {
    await monitor.pollOnce();
    return monitor.state();
  } finally {
    monitor.stop();
  }
}

/** The cluster state as `waterbear status` prints it: a summary line and one row per member. */
export function formatClusterStatus(c: ClusterState): string {
  const summary = c.primary === null
    ? 'NO PRIMARY: no replica answers as primary; the service is unavailable'
    : primaryParked(c) ? `PARKED: primary ${c.primary} of view ${c.view} lost its coordinator lease and freed the service address; the service is unavailable until it has the lease again or a backup takes over`
    : `${c.protection}: primary ${c.primary} in view ${c.view}, ${c.backups.length === 0 ? 'no backups (output leaves without acknowledgement)' : `backups ${c.backups.join(', ')}`}`;
  const header = ['member', 'kind', 'address', 'role', 'view', 'epoch', 'in view', 'lag', 'note'];
  const rows = c.members.map((m) => [
    m.id, m.kind, m.address, m.role,
    m.kind === 'witness' || m.view === 0 ? '-' : String(m.view),
    m.kind === 'witness' || !m.up ? '-' : String(m.epoch),
    m.kind === 'witness' || m.role === 'primary' || !m.up ? '-' : m.inView ? 'yes' : 'no',
    lag(m), note(m),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((x, i) => (i === cells.length - 1 ? x : x.padEnd(widths[i]))).join('  ').trimEnd();
  return `cluster "${c.cluster}": ${summary}\n${[header, ...rows].map(line).join('\n')}\n`;
}

function lag(m: MemberState): string {
  if (m.lagEpochs === null || m.lagSeconds === null) return '-';
  return `${m.lagEpochs} epoch${m.lagEpochs === 1 ? '' : 's'}, ${m.lagSeconds.toFixed(2)} s${m.inSync === false ? ' (not in sync)' : ''}`;
}

function note(m: MemberState): string {
  // grpc-js ends a refused connection's message with an empty "Resolution note:".
  if (!m.up) return `not answering: ${(m.error ?? 'no answer').replace(/\s*Resolution note:\s*$/, '')}`;
  if (m.serviceParked) return 'lost its coordinator lease: service address freed until it returns';
  if (m.role === 'joining') return 'catching up (full image, then increments)';
  if (m.role === 'removed') return `removed by an operator: the primary refuses it until \`waterbear action add-backup --replica ${m.id}\``;
  return '';
}
