import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { WaterbearError } from '../../../libos-host/errors.js';
import type { JoinAnswer } from '../../../replica/backup/backup-driver.js';
import { refusalError, refusalStatus } from '../../../replica/wire/refused-message.js';
import { REPLICATION_PROTOCOL_VERSION, replicaService, type PrimaryMessage } from '../../../replica/wire/replication-wire.js';
import { servedBackupDriver, testBackupDriver } from '../../helpers/backup-driver.js';
import { until } from '../../helpers/cluster.js';
import { recordingLogger } from '../../helpers/recording-logger.js';
import { rawReplicateStream, replicaServer } from '../../helpers/replica-server.js';
import { sealedBeforeProtocol3 } from '../../helpers/wire-frames.js';

// A primary of another protocol version used to get grpc-js's bare "Error deserializing request"
// (our WB_PROTOCOL error, thrown in the deserializer, was discarded) and the backup logged nothing
// (found by an audit). Here a real backup driver behind a real gRPC server is sent messages of
// other versions by real gRPC clients.

/** Open a Replicate stream, write `frame` (already encoded), and resolve with the error the stream ends with. */
async function refusedStream(address: string, frame: Buffer): Promise<grpc.ServiceError> {
  const stream = rawReplicateStream(address);
  stream.write(frame);
  return (await stream.ended)!;
}

const hello = (protocolVersion: number, primaryId: string): Buffer => replicaService.replicate.requestSerialize({ protocolVersion, view: 1, primaryId, hello: { backupId: 'b', imageSha256: '' } } satisfies PrimaryMessage);

test('a backup refuses a primary of another protocol version: the primary is told which versions and what to do, the backup warns once per peer', async (t) => {
  const { address, lines } = await servedBackupDriver(t);
  const newer = REPLICATION_PROTOCOL_VERSION + 1;
  const older = REPLICATION_PROTOCOL_VERSION - 1;
  const cases: Array<[string, Buffer, RegExp]> = [
    // A newer primary reconnects every heartbeat interval: told each time, logged once.
    ...Array.from({ length: 3 }, (): [string, Buffer, RegExp] => [`a at ${newer}`, hello(newer, 'a'),
      new RegExp(`^a speaks replication protocol ${newer}, b speaks replication protocol ${REPLICATION_PROTOCOL_VERSION}: upgrade b, the older member, so that every replica and witness runs the same waterbear version$`)]),
    [`c at ${older}`, hello(older, 'c'), new RegExp(`^c speaks replication protocol ${older}, b speaks replication protocol ${REPLICATION_PROTOCOL_VERSION}: upgrade c, the older member`)],
    ['a member before protocol 3', sealedBeforeProtocol3(hello(2, 'old')),
      new RegExp(`^the peer at 127\\.0\\.0\\.1 speaks a replication protocol before 3, b speaks replication protocol ${REPLICATION_PROTOCOL_VERSION}: upgrade the peer at 127\\.0\\.0\\.1`)],
  ];
  for (const [what, frame, message] of cases) {
    const err = await refusedStream(address, frame);
    t.is(err.code, grpc.status.FAILED_PRECONDITION, what);
    t.regex(err.details, message, what);
    t.is(refusalError(err)?.code, 'WB_PROTOCOL', what);
  }
  const logged = lines.filter((l) => l.msg === 'a peer speaks another replication protocol version');
  const warned = logged.filter((l) => l.level === 40).map((l) => [l.peer, l.peerVersion, l.version, l.self]);
  t.deepEqual(warned, [['a', newer, REPLICATION_PROTOCOL_VERSION, 'b'], ['c', older, REPLICATION_PROTOCOL_VERSION, 'b'], ['the peer at 127.0.0.1', null, REPLICATION_PROTOCOL_VERSION, 'b']]);
  t.is(logged.length - warned.length, 2, 'the repeats of a went to debug');
  t.true(logged.every((l) => typeof l.err === 'string' && / speaks .*: upgrade /.test(l.err)), 'the warning says what to do');
});

test('a replica whose join request the primary refuses for its protocol version warns once, with the primary\'s reason', async (t) => {
  const reason = `b speaks replication protocol ${REPLICATION_PROTOCOL_VERSION}, a speaks replication protocol ${REPLICATION_PROTOCOL_VERSION + 1}: upgrade b, the older member`;
  let asked = 0;
  const primary = await replicaServer(() => {}, (_call, cb) => { asked++; cb(refusalStatus(new WaterbearError('WB_PROTOCOL', reason))); });
  t.teardown(() => primary.close());
  const lines: Array<Record<string, unknown>> = [];
  const driver = testBackupDriver({ primaryPort: primary.port, view: { view: 1, primary: 'a', backups: [] }, log: recordingLogger(lines) });
  t.teardown(() => driver.stop());
  const answers: JoinAnswer[] = [];
  driver.on('join-answer', (a: JoinAnswer) => answers.push(a));
  driver.start(); // b is outside the view: it asks to join every JOIN_RETRY_INTERVAL_MS
  await until('three refused join requests', () => answers.length >= 3, 5_000);
  t.true(asked >= 3);
  t.true(answers.every((a) => !a.accepted && a.reason === reason), JSON.stringify(answers));
  const logged = lines.filter((l) => l.msg === 'a peer speaks another replication protocol version');
  t.deepEqual(logged.filter((l) => l.level === 40).map((l) => [l.peer, l.err]), [['a', reason]]);
});
