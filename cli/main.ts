import { isWaterbearError } from '../libos-host/errors.js';
import { checkpointCommand } from './commands/checkpoint.js';
import { inspectCommand } from './commands/inspect.js';
import { restoreCommand } from './commands/restore.js';
import { runCommand } from './commands/run.js';
import { replicaCommand } from './commands/replica.js';
import { upCommand } from './commands/up.js';
import { guestTrapMessage, TRAP_EXIT_CODE } from './exit-codes.js';
import { processIo, type CliIo } from './io.js';

export { muteKnownWarnings } from './known-warnings.js';

type Command = (argv: string[], io: CliIo) => Promise<number>;

const COMMANDS: Record<string, { run: Command; summary: string }> = {
  up: { run: upCommand, summary: 'start a local cluster with the example key-value service' },
  run: { run: runCommand, summary: 'run a WASI guest in a lightweight VM' },
  inspect: { run: inspectCommand, summary: "print a guest's imports, exports and memory; can it run?" },
  replica: { run: replicaCommand, summary: 'run one replica of a cluster (started by up or systemd)' },
  join: { run: (argv, io) => import('./commands/join.js').then((m) => m.joinCommand(argv, io)), summary: 'start a replica that joins the running cluster as a backup, with progress (re-protection)' },
  restore: { run: restoreCommand, summary: 'resume a guest from its checkpoint directory (run --checkpoint-dir)' },
  checkpoint: { run: checkpointCommand, summary: 'inspect a checkpoint directory: epochs, sizes, page counts' },
  witness: { run: (argv, io) => import('./commands/witness.js').then((m) => m.witnessCommand(argv, io)), summary: 'run a coordinator member without an LVM (the third voter of two replicas)' },
  dashboard: { run: (argv, io) => import('./commands/dashboard.js').then((m) => m.dashboardCommand(argv, io)), summary: 'serve the operator dashboard, /metrics and health checks for a cluster' },
  status: { run: (argv, io) => import('./commands/status.js').then((m) => m.statusCommand(argv, io)), summary: 'print who is primary, which backups protect it and who does not answer; exit code says PROTECTED or not' },
  action: { run: (argv, io) => import('./commands/action.js').then((m) => m.actionCommand(argv, io)), summary: 'run an operator action on the primary: checkpoint, switchover, add-backup, remove-backup' },
  chaos: { run: (argv, io) => import('./commands/chaos.js').then((m) => m.chaosCommand(argv, io)), summary: 'test a cluster under seeded faults (kill, pause, partition, corrupt…) and check the history' },
};

export const USAGE = `usage: waterbear <command> [options]

commands:
${Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`).join('\n')}

Run \`waterbear <command> --help\` for a command's options.`;

/** Exit code for bad usage or configuration. */
export const USAGE_EXIT_CODE = 2;

/** Entry point of the `waterbear` command: returns the process exit code. */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(USAGE + '\n');
    return name === undefined ? USAGE_EXIT_CODE : 0;
  }
  const cmd = COMMANDS[name];
  if (cmd === undefined) {
    io.err(`waterbear: unknown command "${name}"\n${USAGE}\n`);
    return USAGE_EXIT_CODE;
  }
  try {
    return await cmd.run(rest, io);
  } catch (err) {
    // A trap that escapes a command happened while the guest was launched (its start function):
    // it ends the process as a trap in _start does.
    if (isWaterbearError(err, 'WB_GUEST_TRAP')) {
      io.err(guestTrapMessage(err));
      return TRAP_EXIT_CODE;
    }
    if (isWaterbearError(err)) {
      io.err(`waterbear: ${err.message} [${err.code}]\n`);
      return err.code === 'WB_CONFIG_INVALID' ? USAGE_EXIT_CODE : 1;
    }
    throw err;
  }
}
