import type { ClusterConfig } from '../config/cluster-config.js';
import type { CoordinatorFactory } from '../node/replica-node.js';
import { WaterbearError } from '../../libos-host/errors.js';

/** The coordinator a replica uses, from the cluster file (embedded Raft by default, or etcd). */
export function coordinatorFactoryFor(config: ClusterConfig, self: string): CoordinatorFactory {
  return async () => {
    throw new WaterbearError('WB_COORD_UNAVAILABLE', `coordinator backend ${config.coordinator.backend} for ${self} is not wired yet`);
  };
}
