import { readFileSync, statSync } from 'node:fs';
import { WaterbearError } from '../../libos-host/errors.js';
import type { ClusterConfig } from '../config/cluster-config.js';
import { etcdOptionsFor } from '../coord/create-coordinator.js';
import { resolveEtcdOptions } from '../coord/etcd/etcd-options.js';

/**
 * What every member would refuse at start, checked once before anything is started or cleared:
 * otherwise `waterbear up` cleared the data folders and then restarted failing members for ever.
 * The cluster's own TLS files are checked by the status client (LocalCluster.check).
 * Throws WB_CONFIG_INVALID or WB_INVALID_MODULE naming the field.
 */
export function checkBeforeStart(config: ClusterConfig): void {
  let guest: Uint8Array<ArrayBuffer>;
  try {
    guest = new Uint8Array(readFileSync(config.guest.module));
  } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `guest.module: cannot read ${config.guest.module}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!WebAssembly.validate(guest)) {
    throw new WaterbearError('WB_INVALID_MODULE', `guest.module ${config.guest.module} is not a valid WebAssembly module: build it for wasm32-wasi (waterbear inspect says more)`);
  }
  for (const [m, kind] of [...config.replicas.map((r) => [r, 'replica'] as const), ...config.witnesses.map((w) => [w, 'witness'] as const)]) {
    let isDir = true;
    try { isDir = statSync(m.dataDir).isDirectory(); } catch { /* missing: the member creates it */ }
    if (!isDir) throw new WaterbearError('WB_CONFIG_INVALID', `the dataDir of ${kind} ${m.id} ${m.dataDir} is not a directory (a file is in the way): point it at a directory, or move the file`);
  }
  // etcd's TLS files, as each replica reads them (connecting is left to the replicas).
  if (config.coordinator.backend === 'etcd') resolveEtcdOptions(etcdOptionsFor(config, config.coordinator));
}
