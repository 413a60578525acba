import { parseArgs } from 'node:util';
import { WaterbearError } from '../../libos-host/errors.js';

/** One command-line option of a benchmark; `hidden` ones (internal plumbing) are not listed. */
export interface BenchOption {
  type: 'string' | 'boolean';
  help: string;
  hidden?: boolean;
}

export type BenchValues<O extends Record<string, BenchOption>> = {
  [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string;
};

/** --out, which every benchmark takes. */
export const OUT_OPTION = { type: 'string', help: 'also write the results to this file (bench/results/…)' } as const satisfies BenchOption;

/** The usage text `--help` prints; `command` is how the benchmark is run, e.g. "npm run bench:lvm --". */
export function benchUsage(command: string, about: string, options: Record<string, BenchOption>): string {
  const shown = Object.entries(options).filter(([, o]) => o.hidden !== true);
  const width = Math.max(6, ...shown.map(([k, o]) => k.length + (o.type === 'string' ? 4 : 0)));
  const rows = shown.map(([k, o]) => `  --${`${k}${o.type === 'string' ? ' VAL' : ''}`.padEnd(width)}  ${o.help}`);
  return [`${command} [OPTIONS]`, '', about, '', 'Options:', ...rows, `  --${'help'.padEnd(width)}  this text`].join('\n');
}

/**
 * Parse a benchmark's arguments. Throws WB_CONFIG_INVALID for an unknown or malformed option (the
 * message names it and shows the usage), as the CLI does; returns null after `--help` (the usage is printed).
 */
export function parseBenchArgs<O extends Record<string, BenchOption>>(
  command: string, about: string, options: O, args: string[] = process.argv.slice(2),
): BenchValues<O> | null {
  const config = Object.fromEntries(Object.entries(options).map(([k, o]) => [k, { type: o.type }]));
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args, options: { ...config, help: { type: 'boolean' } }, strict: true, allowPositionals: false }).values as typeof values;
  } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `${command.replace(/ --$/, '')}: ${(err as Error).message}\n\n${benchUsage(command, about, options)}`);
  }
  if (values.help === true) {
    console.log(benchUsage(command, about, options));
    return null;
  }
  delete values.help;
  return values as BenchValues<O>;
}

/** parseBenchArgs for a benchmark's entry point: exits 0 after --help, 2 on a usage error. */
export function benchArgs<O extends Record<string, BenchOption>>(command: string, about: string, options: O): BenchValues<O> {
  try {
    const v = parseBenchArgs(command, about, options);
    if (v === null) process.exit(0);
    return v;
  } catch (err) {
    if (!(err instanceof WaterbearError) || err.code !== 'WB_CONFIG_INVALID') throw err;
    console.error(err.message);
    process.exit(2);
  }
}

/** A benchmark option's value is out of range: say so (the message names the option and the range) and exit 2. */
export function badOptionValue(message: string): never {
  console.error(`${message}; see --help`);
  process.exit(2);
}
