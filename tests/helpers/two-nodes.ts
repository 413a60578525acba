import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../bench/support/servers.js';
import { parseClusterConfig } from '../../replica/config/cluster-config.js';
import type { Coordinator } from '../../replica/coord/coordinator.js';
import type { Logger } from '../../replica/log.js';
import { ReplicaNode, type ReplicaNodeOptions } from '../../replica/node/replica-node.js';
import { REPO } from './lvm.js';
import { MemoryCoordinatorGroup } from './memory-coordinator.js';

/**
 * Two replica nodes, a (primary) and b (backup), in this process over a test-only coordinator,
 * with real gRPC between them and real LVMs. Both share one event loop (image preparation, LMDB
 * fsyncs): use generous timeouts. Stopping both must leave nothing that keeps the worker alive
 * (an early version left gRPC and LMDB handles; ava reports "Failed to exit" if that returns).
 */
export async function inProcessTwoNodes(o: {
  replication?: string;
  options?: { a?: ReplicaNodeOptions; b?: ReplicaNodeOptions };
  /** Wraps a replica's coordinator client (e.g. to make its proposals time out). */
  coordinator?: (id: 'a' | 'b', client: Coordinator) => Coordinator;
  /** A replica's logger (default: its own on stderr, as in production). */
  log?: { a?: Logger; b?: Logger };
} = {}): Promise<{ a: ReplicaNode; b: ReplicaNode; svc: number; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-node-'));
  const [svc, pa, pb] = [await freePort(), await freePort(), await freePort()];
  const config = parseClusterConfig(`
guest: { module: ${REPO}guests/kv.wasm }
listen: [127.0.0.1:${svc}]
replicas:
  - { id: a, address: 127.0.0.1:${pa}, dataDir: ${dir}/a }
  - { id: b, address: 127.0.0.1:${pb}, dataDir: ${dir}/b }
coordinator: { backend: etcd, endpoints: ["http://127.0.0.1:1"] }
replication: { ${o.replication ?? 'heartbeatInterval: 100ms, heartbeatTimeout: 3s'} }
`, join(dir, 'cluster.yaml'));
  const group = new MemoryCoordinatorGroup(1000);
  const client = (id: 'a' | 'b'): Coordinator => (o.coordinator ?? ((_, c) => c))(id, group.client());
  const a = new ReplicaNode(config, 'a', async () => client('a'), o.log?.a, o.options?.a);
  const b = new ReplicaNode(config, 'b', async () => client('b'), o.log?.b, o.options?.b);
  await Promise.all([a.start(), b.start()]);
  return { a, b, svc, dir };
}
