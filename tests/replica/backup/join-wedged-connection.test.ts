import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { CheckpointStore } from '../../../checkpoint/store/checkpoint-store.js';
import { BackupDriver, type JoinAnswer } from '../../../replica/backup/backup-driver.js';
import { parseClusterConfig } from '../../../replica/config/cluster-config.js';
import type { View } from '../../../replica/protocol/view.js';
import { replicaService } from '../../../replica/wire/replication-wire.js';
import { serverDeafToFirstConnection } from '../../helpers/deaf-server.js';
import { MemoryCoordinatorGroup } from '../../helpers/memory-coordinator.js';

// A join request whose connection to the primary is wedged (answers never come, as when flipped
// bits stall HTTP/2 flow control) must not keep every later request on that connection: with
// grpc-js's shared subchannel pool, each retry's new client got the connection of a request still
// open, and the replica never joined (docs/chaos.md, finding 13).

test('join requests after one that hangs go over a new connection and are answered', async (t) => {
  const primary = await serverDeafToFirstConnection(replicaService, 'join', { accepted: true, view: 1, primaryId: 'a', reason: '' });
  t.teardown(() => primary.stop());
  const config = parseClusterConfig(`
cluster: t
guest: { module: kv.wasm }
listen: [127.0.0.1:7000]
replicas:
  - { id: a, address: 127.0.0.1:${primary.port}, dataDir: a }
  - { id: b, address: 127.0.0.1:1, dataDir: b }
witnesses:
  - { id: w, address: 127.0.0.1:3, dataDir: w }
`, 'test.yaml');
  const view: View = { view: 1, primary: 'a', backups: [] }; // b is outside the view: it joins
  const coordinators = new MemoryCoordinatorGroup();
  coordinators.view = view;
  const coordinator = coordinators.client();
  const store = { latestEpoch: () => 0 } as unknown as CheckpointStore;
  const driver = new BackupDriver({
    self: 'b', dataDir: mkdtempSync(join(tmpdir(), 'wb-join-wedged-')), config, store, coordinator,
    credentials: grpc.credentials.createInsecure(), log: pino({ level: 'silent' }),
  }, view);
  t.teardown(() => driver.stop());
  const answers: JoinAnswer[] = [];
  const accepted = new Promise<JoinAnswer>((resolve) => {
    driver.on('join-answer', (a: JoinAnswer) => { answers.push(a); if (a.accepted) resolve(a); });
  });
  driver.start();
  // Bounded: the first request hangs until its 2 s deadline; retries come every 500 ms.
  const first = await Promise.race([accepted, new Promise<null>((r) => setTimeout(() => r(null), 6_000))]);
  t.not(first, null, `no join accepted in 6 s; answers: ${JSON.stringify(answers)}`);
  t.is(first?.primary, 'a');
  t.true(primary.connections.size >= 2, 'the answer came on another connection than the hanging one');
});
