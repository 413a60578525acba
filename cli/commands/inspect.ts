import { readFileSync } from 'node:fs';
import { WaterbearError } from '../../libos-host/errors.js';
import { formatReport, inspectModule } from '../../libos-host/image/inspect.js';
import { parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';

export const INSPECT_USAGE = `usage: waterbear inspect GUEST.wasm [--json]

Print a guest's imports, exports and memory limits, and whether waterbear can run it.
Exit code 0 when it can run, 1 when it cannot.`;

/** `waterbear inspect` */
export async function inspectCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, 'inspect');
  if (values.help === true) { io.out(INSPECT_USAGE + '\n'); return 0; }
  const path = positionals[0];
  if (path === undefined) throw new WaterbearError('WB_CONFIG_INVALID', `inspect: missing GUEST.wasm\n${INSPECT_USAGE}`);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `inspect: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const report = inspectModule(bytes);
  io.out(values.json === true ? JSON.stringify(report, null, 2) + '\n' : formatReport(report) + '\n');
  return report.runnable ? 0 : 1;
}
