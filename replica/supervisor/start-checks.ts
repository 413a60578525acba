import { statSync } from 'node:fs';
import { WaterbearError } from '../../libos-host/errors.js';
import type { ClusterConfig } from '../config/cluster-config.js';
import { notADirectory } from '../config/data-dir.js';
import { readGuestModule } from '../config/guest-module.js';
import { etcdOptionsFor } from '../coord/create-coordinator.js';
import { resolveEtcdOptions } from '../coord/etcd/etcd-options.js';

/**
 * What every member would refuse at start, checked once before anything is started or cleared:
 * otherwise `waterbear up` cleared the data folders and then restarted failing members for ever.
 * The cluster's own TLS files are checked by the status client (LocalCluster.check).
 * Throws WB_CONFIG_INVALID or WB_INVALID_MODULE naming the field.
 */
export function checkBeforeStart(config: ClusterConfig): void {
  if (!WebAssembly.validate(readGuestModule(config))) {
    throw new WaterbearError('WB_INVALID_MODULE', `guest.module ${config.guest.module} is not a valid WebAssembly module: build it for wasm32-wasi (waterbear inspect says more)`);
  }
  for (const [m, kind] of [...config.replicas.map((r) => [r, 'replica'] as const), ...config.witnesses.map((w) => [w, 'witness'] as const)]) {
    let isDir = true;
    try { isDir = statSync(m.dataDir).isDirectory(); } catch { /* missing: the member creates it */ }
    if (!isDir) throw notADirectory(m.dataDir, `the dataDir of ${kind} ${m.id}`);
  }
  // etcd's TLS files, as each replica reads them (connecting is left to the replicas).
  if (config.coordinator.backend === 'etcd') resolveEtcdOptions(etcdOptionsFor(config, config.coordinator));
}
