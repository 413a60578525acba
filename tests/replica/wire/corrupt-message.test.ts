import test from 'ava';
import { RespClient } from '../../../chaos/clients/resp-client.js';
import { REPLICATION_PROTOCOL_VERSION, replicaService, type BackupMessage, type JoinRequest, type PrimaryMessage } from '../../../replica/wire/replication-wire.js';
import { servedBackupDriver } from '../../helpers/backup-driver.js';
import { until } from '../../helpers/cluster.js';
import { recordingLogger } from '../../helpers/recording-logger.js';
import { rawReplicateStream, rawUnaryCall } from '../../helpers/replica-server.js';
import { inProcessTwoNodes } from '../../helpers/two-nodes.js';
import { assertCorruptRefusal, corruptFrames } from '../../helpers/wire-frames.js';

// A peer that sent a corrupt replication message (a flipped bit, a truncated frame, bytes that
// are no replication message) got grpc-js's bare INTERNAL "Error deserializing request", and the
// receiving replica logged nothing. Here real gRPC clients send such messages to a real backup
// driver, and to two real replica nodes, over loopback sockets.

const CORRUPT_WARNING = 'a peer sent a corrupt replication message';

const serializePrimary = (m: PrimaryMessage): Buffer => replicaService.replicate.requestSerialize(m);
const decodeBackup = (b: Buffer): BackupMessage => replicaService.replicate.responseDeserialize(b) as BackupMessage;
const heartbeat = (view: number, primaryId: string): Buffer => serializePrimary({ protocolVersion: REPLICATION_PROTOCOL_VERSION, view, primaryId, heartbeat: { sentAtMs: 1, epoch: 0 } });
const chunk = (epoch: number, chunkIndex: number): Buffer => serializePrimary({
  protocolVersion: REPLICATION_PROTOCOL_VERSION, view: 1, primaryId: 'a',
  checkpoint: { epoch, full: true, chunkIndex, chunkCount: 2, data: new Uint8Array(100).fill(chunkIndex + 1) },
});

/** The warnings of `lines` about corrupt messages, as [peer, corruption], and how many repeats went to debug. */
function corruptWarnings(lines: Array<Record<string, unknown>>): { warned: unknown[][]; repeats: number } {
  const logged = lines.filter((l) => l.msg === CORRUPT_WARNING);
  const warned = logged.filter((l) => l.level === 40);
  return { warned: warned.map((l) => [l.peer, l.corruption]), repeats: logged.length - warned.length };
}

test('a backup refuses a corrupt message of each kind: the peer is told what was wrong and what to do, the backup warns once per peer and kind', async (t) => {
  const { address, lines } = await servedBackupDriver(t);
  const cases = corruptFrames(heartbeat(1, 'a'));
  // A peer speaking nonsense reconnects and tries again: told each time, logged once.
  for (let round = 0; round < 3; round++) {
    for (const { what, kind, frame } of cases) {
      const stream = rawReplicateStream(address);
      stream.write(frame);
      assertCorruptRefusal(t, await stream.ended, kind, what);
    }
  }
  const { warned, repeats } = corruptWarnings(lines);
  t.deepEqual(warned, [['127.0.0.1', 'checksum'], ['127.0.0.1', 'truncated'], ['127.0.0.1', 'undecodable']]);
  t.is(repeats, 3 * cases.length - 3, 'the repeats went to debug');
  const first = lines.find((l) => l.msg === CORRUPT_WARNING)!;
  t.like(first, { self: 'b', type: 'PrimaryMessage' });
  t.regex(String(first.err), /^b refused a PrimaryMessage from the peer at 127\.0\.0\.1: it fails its checksum/);
  // The primary of the view is still served: its heartbeat is answered.
  const legit = rawReplicateStream(address);
  t.teardown(() => legit.close());
  legit.write(heartbeat(1, 'a'));
  await until('the heartbeat answered', () => legit.replies.length > 0, 5_000);
  t.like(decodeBackup(legit.replies[0]), { backupId: 'b', view: 1 });
  t.not(decodeBackup(legit.replies[0]).heartbeat, undefined);
});

test('a corrupt chunk in the middle of a checkpoint: nothing of the checkpoint is applied or acknowledged, nothing after it on the stream is read', async (t) => {
  const { driver, address, lines } = await servedBackupDriver(t);
  const applied: unknown[] = [];
  driver.on('applied', (a) => applied.push(a));
  const stream = rawReplicateStream(address);
  stream.write(chunk(7, 0));
  stream.write(corruptFrames(chunk(7, 1))[0].frame); // chunk 1 with a flipped bit
  stream.write(chunk(7, 1)); // the intact chunk 1 after it: had it been read, the checkpoint would complete (and be nacked: its data is no checkpoint)
  stream.write(heartbeat(1, 'a'));
  assertCorruptRefusal(t, await stream.ended, 'checksum', 'corrupt chunk');
  await new Promise((r) => setTimeout(r, 200)); // a verify turn
  t.deepEqual(stream.replies.map(decodeBackup), [], 'no ack, nack or heartbeat reply');
  t.deepEqual(applied, []);
  t.is(driver.durableEpoch, 0);
  t.false(lines.some((l) => l.msg === 'checkpoint received'), 'the chunks never made a checkpoint');
});

test('two replicas: corrupt messages to the backup\'s Replicate and the primary\'s Join and Status are refused and logged once per peer and kind; replication goes on', async (t) => {
  const logs = { a: [] as Array<Record<string, unknown>>, b: [] as Array<Record<string, unknown>> };
  const { a, b, svc } = await inProcessTwoNodes({ log: { a: recordingLogger(logs.a), b: recordingLogger(logs.b) } });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const c = await until('service', () => RespClient.connect(svc));
  t.teardown(() => c.close());
  for (let i = 1; i <= 10; i++) t.is(await c.call('INCR', 'n'), i);
  await until('protected', () => a.statusReply().protected);
  const ackedBefore = a.statusReply().ackedEpoch;

  const join = Buffer.from(replicaService.join.requestSerialize({ protocolVersion: REPLICATION_PROTOCOL_VERSION, replicaId: 'b', replicationAddress: b.member.address } satisfies JoinRequest));
  for (let round = 0; round < 2; round++) {
    for (const { what, kind, frame } of corruptFrames(heartbeat(1, 'a'))) {
      const stream = rawReplicateStream(b.member.address);
      stream.write(frame);
      assertCorruptRefusal(t, await stream.ended, kind, `Replicate: ${what}`);
    }
    for (const { what, kind, frame } of corruptFrames(join)) assertCorruptRefusal(t, await rawUnaryCall(a.member.address, 'Join', frame), kind, `Join: ${what}`);
    // StatusRequest is empty: only its checksum can be wrong, or missing.
    assertCorruptRefusal(t, await rawUnaryCall(a.member.address, 'Status', Buffer.from([0, 0, 0, 1])), 'checksum', 'Status: a wrong checksum');
    assertCorruptRefusal(t, await rawUnaryCall(a.member.address, 'Status', Buffer.alloc(0)), 'truncated', 'Status: an empty message');
  }
  const kinds = [['127.0.0.1', 'checksum'], ['127.0.0.1', 'truncated'], ['127.0.0.1', 'undecodable']];
  t.deepEqual(corruptWarnings(logs.b).warned, kinds, 'the backup warned once per kind');
  t.deepEqual(corruptWarnings(logs.a).warned, kinds, 'the primary warned once per kind');

  // Nothing harmed: the backup still acknowledges its primary's checkpoints (every reply below
  // waits for one: output commit), both keep their roles.
  for (let i = 11; i <= 20; i++) t.is(await c.call('INCR', 'n'), i);
  t.true(a.statusReply().ackedEpoch > ackedBefore);
  t.true(a.statusReply().protected);
  t.is(b.role, 'backup');
  t.is(a.role, 'primary');
});
