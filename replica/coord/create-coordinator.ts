import type { ClusterConfig } from '../config/cluster-config.js';
import type { CoordinatorFactory } from '../node/replica-node.js';
import { channelCredentials } from '../wire/credentials.js';
import type { Logger } from '../log.js';
import type { MonotonicClock } from './lease.js';
import { createRaftCoordinator } from './raft-coordinator.js';
import type { EtcdCoordinatorOptions } from './etcd/etcd-options.js';

type EtcdBackend = Extract<ClusterConfig['coordinator'], { backend: 'etcd' }>;

/** The etcd coordinator's options from the cluster file. */
export function etcdOptionsFor(config: ClusterConfig, c: EtcdBackend): EtcdCoordinatorOptions {
  return {
    endpoints: c.endpoints, keyPrefix: c.prefix.endsWith('/') ? c.prefix : `${c.prefix}/`, cluster: config.cluster,
    ...(c.tls !== null ? { tls: { caFile: c.tls.ca, ...(c.tls.cert !== null && c.tls.key !== null ? { certFile: c.tls.cert, keyFile: c.tls.key } : {}) } } : {}),
  };
}

/**
 * The coordinator a cluster member uses, from the cluster file: the embedded Raft group (every
 * replica and witness is a voter; its service rides on the replica's gRPC server) or etcd.
 * `clock`: the leases' monotonic clock (test and chaos only; default performance.now).
 */
export function coordinatorFactoryFor(config: ClusterConfig, self: string, log?: Logger, clock?: MonotonicClock): CoordinatorFactory {
  return async (server) => {
    const c = config.coordinator;
    if (c.backend === 'etcd') {
      // Loaded only here: the etcd client and its own grpc-js cost every replica ~170 ms of
      // start-up (time a restarted backup adds to its re-protection), and most clusters use Raft.
      const { EtcdCoordinator } = await import('./etcd/etcd-coordinator.js');
      return new EtcdCoordinator(etcdOptionsFor(config, c));
    }
    const members = [...config.replicas, ...config.witnesses];
    const me = members.find((m) => m.id === self)!;
    return createRaftCoordinator({
      selfId: self, members: members.map((m) => ({ id: m.id, address: m.address })), dataDir: me.dataDir,
      clusterName: config.cluster, credentials: channelCredentials(config.tls), server,
      ...(log !== undefined ? { log } : {}),
      ...(clock !== undefined ? { clock } : {}),
    });
  };
}
