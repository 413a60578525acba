import { isAbsolute, resolve } from 'node:path';
import { WaterbearError } from '../../libos-host/errors.js';
import { parseListenUri } from '../../libos-host/platform/listen-address.js';
import { findMember, loadClusterConfig, plaintextLinks } from '../../replica/config/cluster-config.js';
import { isLoopback } from '../../replica/config/machine-clashes.js';
import { ensureDataDir } from '../../replica/config/data-dir.js';
import { COORDINATOR_FAILED_EXIT_CODE, coordinatorFailedMessage } from '../exit-codes.js';
import { RAFT_STORE_SUBDIR, type RaftPeer } from '../../replica/coord/raft-driver/raft-driver-options.js';
import { createRaftCoordinator, type RaftCoordinatorOptions } from '../../replica/coord/raft-coordinator.js';
import { ChaosControl } from '../../replica/chaos/chaos-control.js';
import { channelCredentials, serverCredentials } from '../../replica/wire/credentials.js';
import { parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';
import { warnPlaintext } from '../plaintext-warning.js';

/** A second SIGINT/SIGTERM this long after the first exits at once, without closing the store cleanly. */
const SECOND_SIGNAL_FORCES_AFTER_MS = 1_000;

export const WITNESS_USAGE = `usage: waterbear witness --config waterbear.yaml --id ID
       waterbear witness --id ID --data-dir DIR --peers ID=HOST:PORT,ID=HOST:PORT,… [--listen HOST:PORT] [--cluster NAME]

Run a coordinator member that holds no LVM: a voter of the embedded Raft group, so that two replicas
plus one witness tolerate the failure of any one machine. Prints one line when it serves; stops
cleanly on SIGTERM or SIGINT (Ctrl-C).

  --config FILE       the cluster file; ID must be one of its witnesses (TLS, addresses and data
                      directories come from it)
  --id ID             this witness's member id
Without a cluster file (plaintext; loopback addresses unless --allow-plaintext):
  --peers LIST        every member of the group, ID=HOST:PORT separated by commas, this one included
  --data-dir DIR      where the witness keeps its Raft store (DIR/coord-raft)
  --listen HOST:PORT  where to listen (default: this member's address in --peers)
  --cluster NAME      the cluster name members must share (default "default")
  --allow-plaintext   allow non-loopback addresses without TLS`;

function parsePeers(text: string): RaftPeer[] {
  const peers: RaftPeer[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || eq === part.length - 1) throw new WaterbearError('WB_CONFIG_INVALID', `--peers entries must be ID=HOST:PORT: got "${part}"`);
    const address = part.slice(eq + 1);
    parseListenUri(address);
    peers.push({ id: part.slice(0, eq), address });
  }
  if (peers.length === 0) throw new WaterbearError('WB_CONFIG_INVALID', '--peers must list every member of the group, e.g. a=127.0.0.1:7101,b=127.0.0.1:7102,w=127.0.0.1:7103');
  return peers;
}

/** `waterbear witness`: runs until SIGTERM/SIGINT; exit code 0 after a clean stop. */
export async function witnessCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    config: { type: 'string', short: 'c' },
    id: { type: 'string' },
    peers: { type: 'string' },
    'data-dir': { type: 'string' },
    listen: { type: 'string' },
    cluster: { type: 'string' },
    'allow-plaintext': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, 'witness');
  if (values.help === true) { io.out(WITNESS_USAGE + '\n'); return 0; }
  if (positionals.length > 0) throw new WaterbearError('WB_CONFIG_INVALID', `witness takes no positional arguments: got ${positionals.join(' ')}; see \`waterbear witness --help\``);
  const id = values.id;
  if (id === undefined || id === '') throw new WaterbearError('WB_CONFIG_INVALID', 'witness: --id is required; see `waterbear witness --help`');

  let options: RaftCoordinatorOptions;
  if (values.config !== undefined) {
    for (const flag of ['peers', 'data-dir', 'listen', 'cluster', 'allow-plaintext'] as const) {
      if (values[flag] !== undefined) throw new WaterbearError('WB_CONFIG_INVALID', `witness: --${flag} cannot be combined with --config (the cluster file says it)`);
    }
    const config = loadClusterConfig(values.config);
    if (config.coordinator.backend !== 'raft') {
      throw new WaterbearError('WB_CONFIG_INVALID', `${values.config}: the coordinator backend is ${config.coordinator.backend}; witnesses serve only the embedded Raft`);
    }
    warnPlaintext(io, `witness ${id}`, plaintextLinks(config));
    const { member, witness } = findMember(config, id);
    if (!witness) throw new WaterbearError('WB_CONFIG_INVALID', `${id} is a replica in ${values.config}; its coordinator member runs inside the replica process. Give a witness id`);
    options = {
      selfId: id,
      members: [...config.replicas, ...config.witnesses].map((m) => ({ id: m.id, address: m.address })),
      dataDir: member.dataDir,
      clusterName: config.cluster,
      credentials: channelCredentials(config.tls),
      serverCredentials: serverCredentials(config.tls),
    };
  } else {
    if (values.peers === undefined || values['data-dir'] === undefined) {
      throw new WaterbearError('WB_CONFIG_INVALID', 'witness: give --config FILE, or --peers and --data-dir; see `waterbear witness --help`');
    }
    const members = parsePeers(values.peers);
    if (values.listen !== undefined) parseListenUri(values.listen);
    const remote = members.filter((m) => !isLoopback(parseListenUri(m.address).host));
    if (values['allow-plaintext'] !== true && remote.length > 0) {
      throw new WaterbearError('WB_CONFIG_INVALID', `member ${remote[0].id} address ${remote[0].address} is not loopback: use a cluster file with tls, or --allow-plaintext to coordinate unencrypted`);
    }
    warnPlaintext(io, `witness ${id}`, remote.map((m) => `member ${m.id} ${m.address}`));
    const dir = values['data-dir'];
    options = {
      selfId: id,
      members,
      dataDir: isAbsolute(dir) ? dir : resolve(dir),
      clusterName: values.cluster ?? 'default',
      credentials: channelCredentials(null),
      serverCredentials: serverCredentials(null),
      listenAddress: values.listen,
    };
  }

  ensureDataDir(options.dataDir, values.config !== undefined ? `the dataDir of witness ${id}` : '--data-dir');
  // Handlers first: a signal that arrives while the member starts still stops it cleanly.
  let firstSignalMs: number | null = null;
  let requestStop: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => { requestStop = resolve; });
  const onSignal = (): void => {
    // Ctrl-C under `waterbear up` reaches this process twice: from the terminal (same process
    // group) and from up stopping its members. Only a signal well after the first forces the exit.
    const now = performance.now();
    if (firstSignalMs === null) firstSignalMs = now;
    else if (now - firstSignalMs >= SECOND_SIGNAL_FORCES_AFTER_MS) {
      io.err(`waterbear witness ${id}: second signal, exiting without closing the store cleanly\n`);
      process.exit(130);
    }
    requestStop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // TEST/CHAOS ONLY: with WATERBEAR_CHAOS_CONTROL set, the chaos harness skews this process's lease clock.
  const chaos = ChaosControl.fromEnv();
  if (chaos !== null) options = { ...options, clock: chaos.clock };
  let coordinator;
  try {
    coordinator = await createRaftCoordinator(options);
  } catch (err) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    throw err;
  }
  const listen = options.listenAddress ?? options.members.find((m) => m.id === id)?.address ?? '?';
  const { host } = parseListenUri(listen);
  io.out(
    `waterbear witness ${id}: coordinator member of cluster "${options.clusterName}" serving on ${host}:${coordinator.port} ` +
      `(members ${options.members.map((m) => m.id).join(', ')}; store ${resolve(options.dataDir, RAFT_STORE_SUBDIR)})\n`,
  );
  let code = 0;
  coordinator.onFatal((err) => {
    io.err(`waterbear witness ${id}: ${coordinatorFailedMessage(err)}\n`);
    code = COORDINATOR_FAILED_EXIT_CODE;
    requestStop();
  });
  await stopRequested;
  await coordinator.close();
  // The handlers stay: a signal that arrives between here and the process's exit (up's SIGTERM
  // after the terminal's SIGINT) must not kill it with that signal's default action.
  io.err(`waterbear witness ${id}: stopped\n`);
  return code;
}
