import { parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';
import { guestPath } from '../paths.js';
import { runCommand } from './run.js';

export const UP_USAGE = `usage: waterbear up [--listen HOST:PORT]

Start the example key-value service (guests/kv.wasm, a Redis-protocol server) on 127.0.0.1:7000.
Connect with \`redis-cli -p 7000\` or any Redis client.`;

export const DEFAULT_SERVICE_ADDRESS = '127.0.0.1:7000';

/** `waterbear up`: the main job. */
export async function upCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, { listen: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, 'up');
  if (values.help === true) { io.out(UP_USAGE + '\n'); return 0; }
  const listen = values.listen ?? DEFAULT_SERVICE_ADDRESS;
  const kv = guestPath('kv');
  io.err(`waterbear: key-value service (guests/kv.wasm) on ${listen}\n` +
    `  connect:  redis-cli -p ${listen.split(':').pop()}   (or any Redis client)\n` +
    `  stop:     Ctrl-C\n`);
  return runCommand([kv, '--listen', listen], io);
}
