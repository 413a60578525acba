import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';
import { refusalError } from '../../../replica/wire/refused-message.js';
import { REPLICATION_PROTOCOL_VERSION, ReplicaClient, type BackupMessage, type JoinRequest, type PrimaryMessage } from '../../../replica/wire/replication-wire.js';
import { RespClient } from '../../../chaos/clients/resp-client.js';
import { startTestCluster, until } from '../../helpers/cluster.js';

type Duplex = grpc.ClientDuplexStream<PrimaryMessage, BackupMessage>;

function rogueStream(address: string): { stream: Duplex; replies: BackupMessage[]; errors: Error[]; close(): void } {
  const client = new ReplicaClient(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & { replicate(): Duplex };
  const stream = client.replicate();
  const replies: BackupMessage[] = [];
  const errors: Error[] = [];
  stream.on('data', (m: BackupMessage) => replies.push(m));
  stream.on('error', (e: Error) => errors.push(e));
  return { stream, replies, errors, close: () => { stream.cancel(); client.close(); } };
}

test('corrupt, truncated, replayed, wrong-view and wrong-version messages are refused without harm', async (t) => {
  const stderrFile = join(mkdtempSync(join(tmpdir(), 'wb-hostile-')), 'members.log');
  t.teardown(() => rmSync(dirname(stderrFile), { recursive: true, force: true }));
  const c = await startTestCluster({ stderrFile, env: { WATERBEAR_LOG_LEVEL: 'warn' } });
  t.teardown(() => c.stop());
  const p = await c.protectedPrimary();
  const backupId = p.backups[0];
  const address = c.config.replicas.find((r) => r.id === backupId)!.address;
  const client = await c.client();
  for (let i = 1; i <= 20; i++) t.is(await client.call('INCR', 'n'), i);

  const base = { protocolVersion: REPLICATION_PROTOCOL_VERSION, view: p.view, primaryId: p.replicaId };
  const garbage = new Uint8Array(5000).map((_, i) => (i * 7919) & 0xff);
  const r = rogueStream(address);
  // Wrong view: refused as stale.
  r.stream.write({ ...base, view: p.view + 100, checkpoint: { epoch: 1_000_000, full: true, chunkIndex: 0, chunkCount: 1, data: garbage } });
  // Forged primary id, right view: corrupt bytes (full image), then a replayed old epoch, then a torn chunk sequence.
  r.stream.write({ ...base, checkpoint: { epoch: 1_000_001, full: true, chunkIndex: 0, chunkCount: 1, data: garbage } });
  r.stream.write({ ...base, checkpoint: { epoch: 1, full: true, chunkIndex: 0, chunkCount: 1, data: garbage } });
  r.stream.write({ ...base, checkpoint: { epoch: 1_000_002, full: true, chunkIndex: 1, chunkCount: 2, data: garbage } });
  await until('four refusals', () => r.replies.filter((m) => m.nack != null).length >= 4, 10_000);
  const codes = r.replies.filter((m) => m.nack != null).map((m) => m.nack!.code);
  t.true(codes.includes('WB_STALE_VIEW'), codes.join(','));
  t.true(codes.includes('WB_CHECKPOINT_CORRUPT') || codes.includes('WB_CHECKPOINT_TRUNCATED'), codes.join(','));
  t.false(r.replies.some((m) => m.ack != null), 'nothing a rogue sent was acknowledged');
  r.close();
  // A peer speaking another protocol version is cut off and told which versions and what to do
  // (it got grpc-js's bare "Error deserializing request"), however often it tries; the backup
  // logs it once. Likewise a join request to the primary.
  const versions = (from: string, to: string): RegExp => new RegExp(`${from} speaks replication protocol 99, ${to} speaks replication protocol ${REPLICATION_PROTOCOL_VERSION}: upgrade ${to}, the older member`);
  for (let i = 0; i < 3; i++) {
    const v = rogueStream(address);
    v.stream.write({ ...base, protocolVersion: 99, heartbeat: { sentAtMs: 1, epoch: 1 } });
    await until('the stream fails', () => v.errors.length > 0, 10_000);
    const err = v.errors[0] as grpc.ServiceError;
    t.is(err.code, grpc.status.FAILED_PRECONDITION);
    t.regex(err.details, versions(p.replicaId, backupId));
    t.is(refusalError(err)?.code, 'WB_PROTOCOL');
    v.close();
  }
  const primaryAddress = c.config.replicas.find((r) => r.id === p.replicaId)!.address;
  const joiner = new ReplicaClient(primaryAddress, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    join(req: JoinRequest, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void): void;
  };
  const joinErr = await new Promise<grpc.ServiceError | null>((resolve) => {
    joiner.join({ protocolVersion: 99, replicaId: backupId, replicationAddress: address }, { deadline: Date.now() + 5_000 }, (err) => resolve(err));
  });
  joiner.close();
  t.is(joinErr?.code, grpc.status.FAILED_PRECONDITION);
  t.regex(joinErr?.details ?? '', versions(backupId, p.replicaId));
  const warnings = readFileSync(stderrFile, 'utf8').split('\n').filter((l) => l.includes('a peer speaks another replication protocol version'))
    .map((l) => JSON.parse(l) as { replica: string; peer: string; peerVersion: number });
  t.deepEqual(warnings.map((w) => [w.replica, w.peer, w.peerVersion]), [[backupId, p.replicaId, 99], [p.replicaId, backupId, 99]]);

  // The cluster is unharmed: it serves, and the backup still takes over with every write.
  for (let i = 21; i <= 30; i++) t.is(await client.call('INCR', 'n'), i);
  client.close();
  process.kill(c.cluster.pid(p.replicaId)!, 'SIGKILL');
  // A fresh connection per attempt: one opened in the instant after the kill may reach the dying primary.
  const value = await until('the counter after failover', async () => {
    const after = await RespClient.connect(c.servicePort, '127.0.0.1', 1000);
    try { return await after.call('GET', 'n'); } finally { after.close(); }
  });
  t.is(value, '30');
});
