import * as grpc from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import pino from 'pino';
import type { CheckpointStore } from '../../checkpoint/store/checkpoint-store.js';
import { BackupDriver } from '../../replica/backup/backup-driver.js';
import { parseClusterConfig } from '../../replica/config/cluster-config.js';
import type { Logger } from '../../replica/log.js';
import type { View } from '../../replica/protocol/view.js';
import { MemoryCoordinatorGroup } from './memory-coordinator.js';
import { recordingLogger } from './recording-logger.js';
import { replicaServer } from './replica-server.js';

/**
 * A real BackupDriver for wire tests: replica b of a cluster whose replica a (the primary) is at
 * 127.0.0.1:`primaryPort`, in `view` on an in-memory coordinator, with a store that holds nothing.
 * Not started: the test calls start() (watchdog, join requests) if it wants them.
 */
export function testBackupDriver(o: { primaryPort: number; view: View; log?: Logger }): BackupDriver {
  const config = parseClusterConfig(`
cluster: t
guest: { module: kv.wasm }
listen: [127.0.0.1:7000]
replicas:
  - { id: a, address: 127.0.0.1:${o.primaryPort}, dataDir: a }
  - { id: b, address: 127.0.0.1:4, dataDir: b }
witnesses:
  - { id: w, address: 127.0.0.1:3, dataDir: w }
`, 'test.yaml');
  const coordinators = new MemoryCoordinatorGroup();
  coordinators.view = o.view;
  const store = { latestEpoch: () => 0 } as unknown as CheckpointStore;
  return new BackupDriver({
    self: 'b', dataDir: mkdtempSync(join(tmpdir(), 'wb-backup-driver-')), config, store, coordinator: coordinators.client(),
    credentials: grpc.credentials.createInsecure(), log: o.log ?? pino({ level: 'silent' }),
  }, o.view);
}

/**
 * testBackupDriver for replica b in view 1 (primary a), behind a real gRPC Replica server on a
 * free loopback port, logging at debug to `lines`; both stop when test `t` ends.
 */
export async function servedBackupDriver(t: ExecutionContext): Promise<{ driver: BackupDriver; address: string; lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = [];
  const driver = testBackupDriver({ primaryPort: 1, view: { view: 1, primary: 'a', backups: ['b'] }, log: recordingLogger(lines) });
  t.teardown(() => driver.stop());
  const server = await replicaServer((call) => driver.handleStream(call));
  t.teardown(() => server.close());
  return { driver, address: server.address, lines };
}
