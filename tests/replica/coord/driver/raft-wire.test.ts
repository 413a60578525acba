/**
 * The coordination wire format and the member's refusals, in process: Raft messages survive the
 * proto round trip; batches and requests of another format version, cluster or sender are refused
 * with WB_PROTOCOL; options are validated; a one-member group restarts from its store.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import pino from 'pino';
import { isWaterbearError } from '../../../../libos-host/errors.js';
import { createRaftCoordinator, type RaftCoordinatorOptions } from '../../../../replica/coord/raft-coordinator.js';
import {
  COORD_FORMAT_VERSION,
  createCoordClient,
  decodeWire,
  encodeWire,
  header,
  messageFromWire,
  messageToWire,
  WB_CODE_METADATA_KEY,
  type ProposeReply,
  type RaftBatch,
} from '../../../../replica/coord/raft-driver/raft-wire.js';
import { makeMembership } from '../../../../replica/coord/raft/raft-membership.js';
import { makeMessage, type Message } from '../../../../replica/coord/raft/raft-types.js';
import { encodeViewProposal } from '../../../../replica/coord/view-state-machine.js';
import { recordingLogger } from '../../../helpers/recording-logger.js';
import { assertCorruptRefusal, corruptFrames, sealedBeforeProtocol3 } from '../../../helpers/wire-frames.js';

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-coord-wire-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

test('raft messages survive the proto round trip field for field', (t) => {
  const msgs: Message[] = [
    makeMessage({ type: 'app', from: 'a', to: 'b', term: 7, index: 10, logTerm: 6, commit: 9, entries: [
      { index: 11, term: 6, type: 'normal', data: bytes('x') },
      { index: 12, term: 7, type: 'conf', data: bytes('{"v":1}') },
      { index: 13, term: 7, type: 'normal', data: new Uint8Array(0) },
    ] }),
    makeMessage({ type: 'appResp', from: 'b', to: 'a', term: 7, index: 4, reject: true, rejectHint: 3, logTerm: 2 }),
    makeMessage({ type: 'preVote', from: 'c', to: 'a', term: 8, index: 13, logTerm: 7, context: 'transfer' }),
    makeMessage({ type: 'heartbeatResp', from: 'a', to: 'c', term: 8, context: 'ctx-1' }),
    makeMessage({ type: 'snap', from: 'a', to: 'c', term: 8, snapshot: { meta: { index: 40, term: 8, membership: makeMembership(['a', 'b', 'c'], ['d']) }, data: bytes('{"v":1}') } }),
    makeMessage({ type: 'timeoutNow', from: 'a', to: 'b', term: 9 }),
  ];
  const batch: RaftBatch = { formatVersion: COORD_FORMAT_VERSION, clusterId: 'k', from: 'a', messages: msgs.map(messageToWire) };
  const back = decodeWire<RaftBatch>('RaftBatch', encodeWire('RaftBatch', batch));
  t.is(back.formatVersion, COORD_FORMAT_VERSION);
  const decoded = back.messages.map(messageFromWire);
  t.is(decoded.length, msgs.length);
  decoded.forEach((m, i) => {
    const want = msgs[i];
    t.deepEqual(
      { ...m, entries: m.entries.map((e) => ({ ...e, data: [...e.data] })), snapshot: m.snapshot && { ...m.snapshot, data: [...m.snapshot.data] } },
      { ...want, entries: want.entries.map((e) => ({ ...e, data: [...e.data] })), snapshot: want.snapshot && { ...want.snapshot, data: [...want.snapshot.data] } },
    );
  });
});

test('indexes above 2^53 and unknown message types are refused with WB_PROTOCOL', (t) => {
  const w = messageToWire(makeMessage({ type: 'heartbeat', from: 'a', to: 'b', term: 1 }));
  const big = decodeWire<RaftBatch>('RaftBatch', encodeWire('RaftBatch', { formatVersion: 1, clusterId: 'k', from: 'a', messages: [{ ...w, term: 2 ** 60 }] }));
  t.throws(() => messageFromWire(big.messages[0]), { code: 'WB_PROTOCOL' } as never);
  t.throws(() => messageFromWire({ ...w, type: 42 }), { code: 'WB_PROTOCOL' } as never);
  t.throws(() => decodeWire('RaftBatch', Buffer.from([0xff, 0xff, 0xff])), { code: 'WB_PROTOCOL' } as never);
});

async function lonelyMember(t: ExecutionContext, extra: Partial<RaftCoordinatorOptions> = {}) {
  const c = await createRaftCoordinator({
    selfId: 'a',
    // b and c are never started: port 1 refuses connections at once.
    members: [{ id: 'a', address: '127.0.0.1:0' }, { id: 'b', address: '127.0.0.1:1' }, { id: 'c', address: '127.0.0.1:1' }],
    dataDir: tempDir(t),
    clusterName: 'k',
    credentials: grpc.credentials.createInsecure(),
    log: pino({ level: 'silent' }),
    ...extra,
  });
  t.teardown(() => c.close());
  const client = createCoordClient(`127.0.0.1:${c.port}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  return { c, client };
}

function sendBatch(client: ReturnType<typeof createCoordClient>, batch: RaftBatch): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    const call = client.send((err) => resolve(err));
    call.write(batch);
    setTimeout(() => call.end(), 200);
  });
}

test('a member refuses raft batches of another format version, another cluster or a non-member, with WB_PROTOCOL', async (t) => {
  const { client } = await lonelyMember(t);
  const hb = messageToWire(makeMessage({ type: 'heartbeat', from: 'b', to: 'a', term: 1 }));
  const cases: Array<[string, RaftBatch]> = [
    ['version', { formatVersion: COORD_FORMAT_VERSION + 1, clusterId: 'k', from: 'b', messages: [hb] }],
    ['cluster', { formatVersion: COORD_FORMAT_VERSION, clusterId: 'other', from: 'b', messages: [hb] }],
    ['sender', { formatVersion: COORD_FORMAT_VERSION, clusterId: 'k', from: 'zz', messages: [{ ...hb, from: 'zz' }] }],
  ];
  for (const [what, batch] of cases) {
    const err = await sendBatch(client, batch);
    t.truthy(err, what);
    t.is(err?.code, grpc.status.FAILED_PRECONDITION, what);
    t.is(err?.metadata.get(WB_CODE_METADATA_KEY)[0], 'WB_PROTOCOL', what);
  }
  // No version at all (or one of another wire type, which protobuf drops): not "coordination format 0".
  const none = await sendBatch(client, { formatVersion: 0, clusterId: 'k', from: 'b', messages: [hb] });
  t.is(none?.code, grpc.status.FAILED_PRECONDITION);
  t.regex(none?.details ?? '', /carries no coordination format version: it is corrupt or not from a waterbear member/);
  t.is(await sendBatch(client, { formatVersion: COORD_FORMAT_VERSION, clusterId: 'k', from: 'b', messages: [hb] }), null, 'a good batch is accepted');
});

/** Send `frame` (raw bytes) to the CoordRaft service of member `c` as a real gRPC client: as a batch on a Send stream, or a Status request. */
function rawCoordCall(c: { port: number | null }, method: 'Send' | 'Status', frame: Buffer): Promise<grpc.ServiceError | null> {
  const raw = new grpc.Client(`127.0.0.1:${c.port}`, grpc.credentials.createInsecure());
  const same = (b: Buffer): Buffer => b;
  const path = `/waterbear.coord.v1.CoordRaft/${method}`;
  return new Promise<grpc.ServiceError | null>((resolve) => {
    if (method === 'Status') { raw.makeUnaryRequest(path, same, same, frame, (err) => resolve(err)); return; }
    const call = raw.makeClientStreamRequest(path, same, same, (err) => resolve(err));
    call.write(frame);
    setTimeout(() => call.end(), 200);
  }).finally(() => raw.close());
}

const heartbeatBatch = (): Buffer => encodeWire('RaftBatch', { formatVersion: COORD_FORMAT_VERSION, clusterId: 'k', from: 'b', messages: [messageToWire(makeMessage({ type: 'heartbeat', from: 'b', to: 'a', term: 1 }))] });
const statusRequest = (): Buffer => encodeWire('StatusRequest', { header: header('k', 'b', 1_000) });

test('a member too old to seal frames as we do is told so and what to do, not "Error deserializing request", and the refusal is logged', async (t) => {
  // Its frames used to be refused in the deserializer, whose error grpc-js discards (found by an audit).
  const lines: Array<Record<string, unknown>> = [];
  const { c } = await lonelyMember(t, { log: recordingLogger(lines) });
  const errors: Array<[string, grpc.ServiceError | null]> = [
    ['Send', await rawCoordCall(c, 'Send', sealedBeforeProtocol3(heartbeatBatch()))],
    ['Status', await rawCoordCall(c, 'Status', sealedBeforeProtocol3(statusRequest()))],
  ];
  for (const [what, err] of errors) {
    t.is(err?.code, grpc.status.FAILED_PRECONDITION, what);
    t.is(err?.metadata.get(WB_CODE_METADATA_KEY)[0], 'WB_PROTOCOL', what);
    t.regex(err?.details ?? '', /^the member at 127\.0\.0\.1 seals coordination messages with CRC-32C, as waterbear before replication protocol 3 did; a speaks coordination format \d+ .*: upgrade the member at 127\.0\.0\.1, the older one/, what);
  }
  const warned = lines.filter((l) => l.level === 40 && l.msg === 'refused a coordination stream');
  t.is(warned.length, 1, 'the same refusal is logged once');
  t.regex(String(warned[0]?.err), /seals coordination messages with CRC-32C/);
});

test('a corrupt coordination message (bad checksum, truncated, undecodable) is refused saying what was wrong, not "Error deserializing request"; logged once per peer and kind; the member goes on', async (t) => {
  // grpc-js answered a bare INTERNAL and the member logged nothing.
  const lines: Array<Record<string, unknown>> = [];
  const { c, client } = await lonelyMember(t, { log: recordingLogger(lines) });
  // A batch whose format_version has another wire type decodes without one: the handler refuses it
  // as carrying no version (FAILED_PRECONDITION, tested above), so that case is left out here.
  const batches = corruptFrames(heartbeatBatch()).filter((c) => !c.what.startsWith('protocol_version'));
  for (let round = 0; round < 2; round++) {
    for (const { what, kind, frame } of batches) assertCorruptRefusal(t, await rawCoordCall(c, 'Send', frame), kind, `Send: ${what}`);
    for (const { what, kind, frame } of corruptFrames(statusRequest())) assertCorruptRefusal(t, await rawCoordCall(c, 'Status', frame), kind, `Status: ${what}`);
  }
  const warned = lines.filter((l) => l.level === 40 && l.msg === 'refused a coordination stream');
  t.deepEqual(warned.map((l) => [l.peer, l.corruption]), [['127.0.0.1', 'checksum'], ['127.0.0.1', 'truncated'], ['127.0.0.1', 'undecodable']]);
  t.regex(String(warned[0]?.err), /^a refused a RaftBatch from the peer at 127\.0\.0\.1: it fails its checksum/);
  const hb = messageToWire(makeMessage({ type: 'heartbeat', from: 'b', to: 'a', term: 1 }));
  t.is(await sendBatch(client, { formatVersion: COORD_FORMAT_VERSION, clusterId: 'k', from: 'b', messages: [hb] }), null, 'a good batch is still accepted');
});

test('client requests of another version or cluster are refused with WB_PROTOCOL; a non-leader answers WB_NOT_LEADER', async (t) => {
  const { client } = await lonelyMember(t);
  const propose = (h: ReturnType<typeof header>): Promise<ProposeReply> =>
    new Promise((resolve, reject) => {
      client.propose({ header: h, command: encodeViewProposal(0, { view: 1, primary: 'a', backups: [] }) }, { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  t.is((await propose({ ...header('k', 'b', 1_000), formatVersion: 2 })).failure?.code, 'WB_PROTOCOL');
  t.is((await propose(header('other', 'b', 1_000))).failure?.code, 'WB_PROTOCOL');
  const r = await propose(header('k', 'b', 1_000));
  t.is(r.failure?.code, 'WB_NOT_LEADER');
});

test('without a quorum, proposals and reads fail with WB_COORD_UNAVAILABLE within the request timeout', async (t) => {
  const { c } = await lonelyMember(t, { requestTimeoutMs: 400 });
  const started = performance.now();
  const err = await t.throwsAsync(c.proposeView(0, { view: 1, primary: 'a', backups: [] }));
  t.true(isWaterbearError(err, 'WB_COORD_UNAVAILABLE'), String(err));
  t.true(performance.now() - started < 2_000);
  const readErr = await t.throwsAsync(c.readView());
  t.true(isWaterbearError(readErr, 'WB_COORD_UNAVAILABLE'));
  const kaErr = await t.throwsAsync(c.keepAlive('a'));
  t.true(isWaterbearError(kaErr) && ['WB_COORD_UNAVAILABLE', 'WB_TIMEOUT'].includes(kaErr.code));
  t.true(c.leaseExpired('a'));
  t.is(c.lastConfirmedMs('a'), null);
  const ctrl = new AbortController();
  setTimeout(() => ctrl.abort(), 300);
  const awaitErr = await t.throwsAsync(c.awaitLeaseExpiry('a', ctrl.signal));
  t.true(isWaterbearError(awaitErr, 'WB_TIMEOUT'));
});

test('options are validated at the boundary with WB_CONFIG_INVALID', async (t) => {
  const base: RaftCoordinatorOptions = {
    selfId: 'a', members: [{ id: 'a', address: '127.0.0.1:0' }], dataDir: tempDir(t), clusterName: 'k', credentials: grpc.credentials.createInsecure(),
  };
  const bad: Array<Partial<RaftCoordinatorOptions>> = [
    { leaseTtlMs: 5 },
    { leaseTtlMs: 60, tickIntervalMs: 50 },
    { leaseMarginMs: 400 },
    { leaseMaxDriftRate: 0.5 },
    { electionTicks: 1 },
    { heartbeatTicks: 6 },
    { tickIntervalMs: 0 },
    { requestTimeoutMs: 1.5 },
    { selfId: 'z' },
    { members: [{ id: 'a', address: '127.0.0.1:0' }, { id: 'a', address: '127.0.0.1:1' }] },
    { snapshotEveryEntries: 0 },
  ];
  for (const o of bad) {
    const err = await t.throwsAsync(createRaftCoordinator({ ...base, ...o }), undefined, JSON.stringify(o));
    t.true(isWaterbearError(err, 'WB_CONFIG_INVALID'), `${JSON.stringify(o)}: ${String(err)}`);
  }
});

test('a one-member group elects itself, commits, and restarts from its store', async (t) => {
  const dataDir = tempDir(t);
  const opts: RaftCoordinatorOptions = {
    selfId: 'solo', members: [{ id: 'solo', address: '127.0.0.1:0' }], dataDir, clusterName: 'k', credentials: grpc.credentials.createInsecure(), snapshotEveryEntries: 3,
  };
  let c = await createRaftCoordinator(opts);
  for (let v = 1; v <= 10; v++) await c.proposeView(v - 1, { view: v, primary: 'solo', backups: [] });
  const seen: number[] = [];
  const unwatch = c.watchViews((v) => seen.push(v.view));
  await c.proposeView(10, { view: 11, primary: 'solo', backups: ['x'] });
  unwatch();
  t.deepEqual(seen, [10, 11]);
  await c.close();
  await c.close();
  c = await createRaftCoordinator(opts);
  t.deepEqual(await c.readView(), { view: 11, primary: 'solo', backups: ['x'] });
  t.true(c.member.status().snapshotIndex > 0);
  await c.close();
});
