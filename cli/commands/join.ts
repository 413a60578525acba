import { WaterbearError } from '../../libos-host/errors.js';
import { checkRange, parseDurationMs } from '../../libos-host/units.js';
import type { JoinAnswer } from '../../replica/backup/backup-driver.js';
import type { ReplicaNode } from '../../replica/node/replica-node.js';
import { CHECKPOINT_PAGE_BYTES } from '../../checkpoint/checkpoint-data.js';
import { parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';
import { serveReplica } from './replica.js';

/** Default --timeout of `waterbear join`. */
export const JOIN_DEFAULT_TIMEOUT = '5m';
/** How often join checks whether the replica is a backup of the view yet. */
export const JOIN_CHECK_INTERVAL_MS = 250;
/** At most one pre-copy progress line per this many ms. */
export const JOIN_PROGRESS_INTERVAL_MS = 1000;
/** Longest --timeout. */
const JOIN_MAX_TIMEOUT_MS = 24 * 3_600_000;

export const JOIN_USAGE = `usage: waterbear join --config waterbear.yaml --id ID [--timeout ${JOIN_DEFAULT_TIMEOUT}] [--admin-token TOKEN]

Start replica ID and have it join the running cluster as a backup while the primary keeps serving
(re-protection): it asks the primary of the current view to protect it, receives the guest's full
image (an iterative pre-copy for large guests) and then incremental checkpoints, and the primary
commits a view that includes it once it has caught up. Progress goes to stderr. Once ID is a
backup of the view it keeps running as that replica, like \`waterbear replica\`, until SIGTERM or
SIGINT. Use it to bring a replica back after maintenance or a crash; \`waterbear up\` and systemd
(which run \`waterbear replica\`) rejoin a returning replica the same way, without the progress.

  --timeout D   give up when ID is not a backup of the view after D (default ${JOIN_DEFAULT_TIMEOUT};
                0s waits for ever): the replica stops, the command says why and exits with code 1
  --admin-token as for \`waterbear replica\` (its dashboard's actions)

It never creates a cluster: with no view yet it fails with WB_JOIN_FAILED (start the cluster with
\`waterbear up\` or \`waterbear replica\`). A replica an operator removed from the view is refused
until it is added back (the dashboard's "add backup", or \`waterbear action add-backup\`).
Exit code: 0 after SIGTERM/SIGINT, 1 when it gave up or could not start, 2 usage error.`;

/** `waterbear join` */
export async function joinCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, {
    config: { type: 'string' }, id: { type: 'string' }, timeout: { type: 'string' }, 'admin-token': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, 'join');
  if (values.help === true) { io.out(JOIN_USAGE + '\n'); return 0; }
  if (values.config === undefined || values.id === undefined) throw new WaterbearError('WB_CONFIG_INVALID', `join: --config and --id are required\n${JOIN_USAGE}`);
  const timeoutMs = checkRange(parseDurationMs(values.timeout ?? JOIN_DEFAULT_TIMEOUT, '--timeout'), 0, JOIN_MAX_TIMEOUT_MS, '--timeout', (x) => `${x} ms`);
  const id = values.id;
  return serveReplica({
    configPath: values.config, id, adminToken: values['admin-token'], joinOnly: true,
    watch: (node, finish) => watchJoin(node, id, timeoutMs, (line) => io.err(`waterbear join: ${line}\n`), finish),
  }, io);
}

/**
 * Report a joining replica's progress until it is a backup of the committed view (it has stored
 * a checkpoint and the view lists it) or took over as primary; after `timeoutMs` (0: never) say
 * what it last heard and `finish(1)`.
 */
export function watchJoin(node: ReplicaNode, id: string, timeoutMs: number, say: (line: string) => void, finish: (code: number) => void): void {
  const startedAtMs = performance.now();
  let done = false;
  let applied = 0;
  let stagedPages = 0;
  let lastProgressMs = -Infinity;
  let toldView = 0;
  let last = 'the coordinator has not answered yet (are the cluster\'s other members running?)';
  const told = new Set<string>();
  let wasBackup = false;
  node.on('role', (role: string) => { if (role !== 'primary') wasBackup = true; }); // becomeBackup, before any promotion

  const check = (): void => {
    if (done) return;
    const s = node.statusReply();
    const seconds = ((performance.now() - startedAtMs) / 1000).toFixed(1);
    if (s.role === 'stopped') { end(); return; }
    if (s.role === 'primary') {
      say(wasBackup ? `${id} took over as primary of view ${s.view} (its primary failed while it was a backup)`
        : `${id} is primary of view ${s.view}: the cluster's first view names it and no replica has served yet, so it starts the guest`);
      end();
      return;
    }
    if (s.view > toldView && s.role !== 'starting') {
      toldView = s.view;
      if (s.primaryId === id) say(`view ${s.view} still names ${id} as its primary (it was primary before it stopped): it waits until a backup takes over, then joins`);
      else if (!s.backups.includes(id)) say(`joining view ${s.view}: asking primary ${s.primaryId} to protect ${id}`);
      else if (applied === 0) say(`${id} is a backup of view ${s.view}: waiting for primary ${s.primaryId} to send it a full image`);
      if (last.startsWith('the coordinator')) last = `no answer from primary ${s.primaryId} yet`;
    }
    if (s.role === 'backup' && s.backups.includes(id) && applied > 0) {
      say(`${id} is a backup of view ${s.view}: primary ${s.primaryId} is protected by ${s.backups.join(', ')} (joined in ${seconds} s); serving as a backup until stopped`);
      end();
      return;
    }
    if (timeoutMs > 0 && performance.now() - startedAtMs > timeoutMs) {
      say(`${id} is not a backup of the view after ${seconds} s; last: ${last}. Stopping it`);
      end();
      finish(1);
    }
  };
  const timer = setInterval(check, JOIN_CHECK_INTERVAL_MS);
  timer.unref();
  const end = (): void => { done = true; clearInterval(timer); };

  node.on('join-answer', (a: JoinAnswer) => {
    check(); // the view first, then what its primary said
    last = a.accepted ? `primary ${a.primary} accepted ${id} and is sending the guest's image`
      : a.answered ? `primary ${a.primary} refused: ${a.reason}` : `cannot reach primary ${a.primary}: ${a.reason}`;
    const key = `${a.primary} ${a.accepted} ${a.answered} ${a.reason}`;
    if (done || told.has(key)) return;
    told.add(key);
    say(a.accepted ? `${a.primary} accepted: receiving the guest's image, then increments` : `${last}; asking again`);
  });
  node.on('staged', (e: { pages: number }) => {
    stagedPages += e.pages;
    const now = performance.now();
    if (done || now - lastProgressMs < JOIN_PROGRESS_INTERVAL_MS) return;
    lastProgressMs = now;
    say(`pre-copy: ${(stagedPages * CHECKPOINT_PAGE_BYTES / 2 ** 20).toFixed(1)} MiB of the guest's memory received`);
  });
  node.on('applied', (e: { epoch: number; full: boolean }) => {
    applied++;
    check();
    if (e.full && !done) say(`full image stored (epoch ${e.epoch}); waiting for the primary to commit a view with ${id}`);
  });
}
