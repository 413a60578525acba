import { parseArgs, type ParseArgsConfig } from 'node:util';
import { WaterbearError } from '../libos-host/errors.js';
import type { DirSpec, ListenSpec } from '../libos-host/wasi/lib-os.js';
import { parseListenUri } from '../libos-host/platform/listen-address.js';

/** parseArgs with usage errors turned into WB_CONFIG_INVALID (exit code 2 in the CLI). */
export function parseCommandArgs<T extends ParseArgsConfig['options']>(argv: string[], options: T, command: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `${command}: ${(err as Error).message}; see \`waterbear ${command} --help\``);
  }
}

/** `--listen [name=]host:port` */
export function parseListenFlag(text: string): ListenSpec {
  const eq = text.indexOf('=');
  const name = eq > 0 ? text.slice(0, eq) : null;
  const addr = eq > 0 ? text.slice(eq + 1) : text;
  const { host, port } = parseListenUri(addr);
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return { uri: `tcp.srv:${hostPart}:${port}`, name };
}

/** `--dir guestpath=hostdir` (or `--dir guestpath` for an empty directory). */
export function parseDirFlag(text: string): DirSpec {
  const eq = text.indexOf('=');
  const guestPath = eq >= 0 ? text.slice(0, eq) : text;
  const hostPath = eq >= 0 ? text.slice(eq + 1) : null;
  if (guestPath === '' || hostPath === '') {
    throw new WaterbearError('WB_CONFIG_INVALID', `--dir must be guestpath=hostdir (e.g. /data=./data) or a guest path alone: got "${text}"`);
  }
  return { guestPath, hostPath };
}

/** `--env K=V` */
export function parseEnvFlag(text: string): string {
  if (!/^[^=]+=/.test(text)) throw new WaterbearError('WB_CONFIG_INVALID', `--env must be KEY=VALUE: got "${text}"`);
  return text;
}
