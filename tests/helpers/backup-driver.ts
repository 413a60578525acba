import * as grpc from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { CheckpointStore } from '../../checkpoint/store/checkpoint-store.js';
import { BackupDriver } from '../../replica/backup/backup-driver.js';
import { parseClusterConfig } from '../../replica/config/cluster-config.js';
import type { Logger } from '../../replica/log.js';
import type { View } from '../../replica/protocol/view.js';
import { MemoryCoordinatorGroup } from './memory-coordinator.js';

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
