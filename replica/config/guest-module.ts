import { readFileSync } from 'node:fs';
import { WaterbearError } from '../../libos-host/errors.js';
import type { ClusterConfig } from './cluster-config.js';

/** The bytes of the cluster file's guest module; WB_CONFIG_INVALID naming it when it cannot be read. */
export function readGuestModule(c: ClusterConfig): Uint8Array<ArrayBuffer> {
  try {
    return new Uint8Array(readFileSync(c.guest.module));
  } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `guest.module: cannot read ${c.guest.module}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
