import { WaterbearError } from '../../libos-host/errors.js';
import { loadClusterConfig } from '../../replica/config/cluster-config.js';
import { ClusterActions, validateActionArgs } from '../../dashboard/actions.js';
import { ClusterMonitor } from '../../dashboard/cluster-monitor.js';
import { ACTIONS, type ActionName } from '../../dashboard/model.js';
import { ADMIN_TOKEN_ENV, adminTokenFrom } from '../../dashboard/start-dashboard.js';
import { parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';

export const ACTION_USAGE = `usage: waterbear action <${ACTIONS.join('|')}> --config waterbear.yaml [--target ID] [--replica ID] [--admin-token TOKEN]

Run an operator action on the cluster's primary, as the dashboard's buttons do, through the
primary's dashboard HTTP API (its cluster-file entry needs "dashboard: HOST:PORT"; docs/dashboard.md):

  checkpoint                   take a checkpoint at the guest's next suspension
  switchover --target ID       hand the primary role to in-sync backup ID; no output is lost
  remove-backup --replica ID   drop backup ID from the view; it is not re-admitted until added
  add-backup --replica ID      allow ID to join again (it is added once caught up)

The admin token is the one the replicas run with: ${ADMIN_TOKEN_ENV} in the environment, or
--admin-token (visible to other users in ps). \`waterbear up\` prints it in the dashboard URLs
(#token=…). Prints the result as JSON; exit code 0 done, 1 refused or failed (with the reason
and its WB_ code), 2 usage error.`;

/** `waterbear action` */
export async function actionCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    config: { type: 'string' }, target: { type: 'string' }, replica: { type: 'string' }, 'admin-token': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, 'action');
  if (values.help === true) { io.out(ACTION_USAGE + '\n'); return 0; }
  const name = positionals[0];
  if (positionals.length !== 1 || !(ACTIONS as readonly string[]).includes(name)) {
    throw new WaterbearError('WB_CONFIG_INVALID', `action: name one action of ${ACTIONS.join(', ')}${positionals.length > 0 ? `: got ${positionals.join(' ')}` : ''}\n${ACTION_USAGE}`);
  }
  if (values.config === undefined) throw new WaterbearError('WB_CONFIG_INVALID', `action: --config is required\n${ACTION_USAGE}`);
  const token = adminTokenFrom(values['admin-token']);
  if (token === null) throw new WaterbearError('WB_CONFIG_INVALID', `action: no admin token: set ${ADMIN_TOKEN_ENV} (or pass --admin-token) to the token the replicas run with`);
  const config = loadClusterConfig(values.config);
  const body = { ...(values.target !== undefined ? { target: values.target } : {}), ...(values.replica !== undefined ? { replica: values.replica } : {}) };
  let args;
  try {
    args = validateActionArgs(name as ActionName, body, config);
  } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `action ${name}: ${(err as Error).message.replace(/"(target|replica)"/, '--$1')}`);
  }
  // Find the primary the way a dashboard does, then let ClusterActions forward to its dashboard.
  const monitor = new ClusterMonitor({ config, adminEnabled: true });
  try {
    await monitor.pollOnce();
    const result = await new ClusterActions({ config, monitor, local: null }).run(name as ActionName, args, { authorization: `Bearer ${token}`, forwarded: false });
    io.out(`${JSON.stringify({ action: name, ...result })}\n`);
    return 0;
  } finally {
    monitor.stop();
  }
}
