/**
 * The coordination wire format (proto/coord.proto) with protobufjs codecs, in the pattern of
 * replica/wire/replication-wire.ts: the gRPC service definition, the client constructor, conversions
 * between Raft `Message`s and their wire form, and the header checks (format version, cluster, sender)
 * that refuse mismatches with WB_PROTOCOL.
 */
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { encodeReusing } from '../../../checkpoint/format/reused-writer.js';
import { WaterbearError, type ErrorCode, ERROR_CODES } from '../../../libos-host/errors.js';
import { openFrame, sealFrame, sealedBeforeProtocol3 } from '../../wire/frame-checksum.js';
import { corruptRefusal, refusedMessage } from '../../wire/refused-message.js';
import { OWN_SUBCHANNEL_OPTIONS } from '../../wire/wedged-connection.js';
import { packageFile } from '../../../libos-host/platform/package-files.js';
import type { ApplyResult } from '../view-state-machine.js';
import { makeMembership } from '../raft/raft-membership.js';
import { MESSAGE_TYPES, type Entry, type Message, type Snapshot } from '../raft/raft-types.js';

/** Version of the coordination wire format; every batch and request carries it and a receiver refuses others. */
export const COORD_FORMAT_VERSION = 1;
export { WB_CODE_METADATA_KEY } from '../../wire/refused-message.js';

// ---------------------------------------------------------------- wire types (camelCase, as protobufjs gives them)

export interface WireEntry { index: number; term: number; type: number; data: Uint8Array }
export interface WireSnapshot { meta: { index: number; term: number; membership: { voters: string[]; learners: string[] } | null } | null; data: Uint8Array }
export interface WireRaftMessage {
  type: number; from: string; to: string; term: number; index: number; logTerm: number; entries: WireEntry[];
  commit: number; reject: boolean; rejectHint: number; context: string; snapshot: WireSnapshot | null;
}
export interface RaftBatch { formatVersion: number; clusterId: string; from: string; messages: WireRaftMessage[] }
export interface RequestHeader { formatVersion: number; clusterId: string; from: string; timeoutMs: number }
export interface Failure { code: string; message: string; leaderHint: string }
export interface WireApplyResult {
  ok: boolean; reason: string; key: string; version: number; value: string; currentVersion: number; currentValue: string; hasCurrentValue: boolean;
}
export interface WireLeaseTiming { ttlMs: number; maxDriftRate: number; marginMs: number }
export interface ProposeRequest { header: RequestHeader; command: Uint8Array }
export interface ProposeReply { failure: Failure | null; result: WireApplyResult | null; index: number }
export interface ReadIndexRequest { header: RequestHeader }
export interface ReadIndexReply { failure: Failure | null; index: number }
export interface KeepAliveRequest { header: RequestHeader; replicaId: string; timing: WireLeaseTiming | null }
export interface KeepAliveReply { failure: Failure | null; view: number }
export interface LeaseExpiryRequest { header: RequestHeader; replicaId: string; timing: WireLeaseTiming | null }
export interface LeaseExpiryReply { failure: Failure | null; expired: boolean; remainingMs: number }
export interface StatusRequest { header: RequestHeader }
export interface StatusReply {
  id: string; role: string; term: number; leader: string; commit: number; applied: number; snapshotIndex: number; lastIndex: number; voters: string[]; view: number;
}

type TypeName =
  | 'RaftBatch' | 'RaftBatchAck' | 'ProposeRequest' | 'ProposeReply' | 'ReadIndexRequest' | 'ReadIndexReply'
  | 'KeepAliveRequest' | 'KeepAliveReply' | 'LeaseExpiryRequest' | 'LeaseExpiryReply' | 'StatusRequest' | 'StatusReply';

const DECODE: protobuf.IConversionOptions = { longs: Number, enums: Number, bytes: Uint8Array as unknown as typeof String, defaults: true, oneofs: false };

let types: Record<TypeName, protobuf.Type> | null = null;

function loadTypes(): Record<TypeName, protobuf.Type> {
  if (types === null) {
    const root = protobuf.loadSync(packageFile('proto/coord.proto'));
    const names: TypeName[] = [
      'RaftBatch', 'RaftBatchAck', 'ProposeRequest', 'ProposeReply', 'ReadIndexRequest', 'ReadIndexReply',
      'KeepAliveRequest', 'KeepAliveReply', 'LeaseExpiryRequest', 'LeaseExpiryReply', 'StatusRequest', 'StatusReply',
    ];
    const t = {} as Record<TypeName, protobuf.Type>;
    for (const n of names) t[n] = root.lookupType(`waterbear.coord.v1.${n}`);
    types = t;
  }
  return types;
}

/** Encodes one wire message. */
export function encodeWire<T>(name: TypeName, m: T): Buffer {
  return encodeReusing(loadTypes()[name], m as object, sealFrame);
}

/** Opens and decodes one wire message of `type` (named `name`); throws openFrame's error or protobuf's. */
function decodeFrame<T>(type: protobuf.Type, name: TypeName, b: Uint8Array): T {
  // Integrity first: a corrupted term, index or view must be refused, never decoded.
  return type.toObject(type.decode(openFrame(b, name)), DECODE) as T;
}

/** Decodes one wire message. @throws WaterbearError WB_PROTOCOL when the bytes are not a valid `name`. */
export function decodeWire<T>(name: TypeName, b: Uint8Array): T {
  const type = loadTypes()[name];
  try {
    return decodeFrame<T>(type, name, b);
  } catch (err) {
    if (err instanceof WaterbearError) throw err;
    throw new WaterbearError('WB_PROTOCOL', `malformed ${name} from a coordination peer: ${(err as Error).message}`, { cause: err, details: { corruption: 'undecodable' } });
  }
}

/**
 * Decodes a request for a handler: a request from a member too old to seal frames as we do, or a
 * corrupt one, is not thrown (grpc-js would swallow it and answer a bare "Error deserializing
 * request") but handed over as a RefusedMessage (replica/wire/refused-message.ts), which the
 * handler answers with `oldMemberRefusal` or `corruptMessage`. (The handlers check the format
 * version and cluster: checkHeader.)
 */
function decodeRequest<T>(name: TypeName, b: Uint8Array): T {
  const type = loadTypes()[name];
  try {
    return decodeFrame<T>(type, name, b);
  } catch (err) {
    if (sealedBeforeProtocol3(err)) return refusedMessage<T>({ peerVersion: null, peerId: null });
    return corruptRefusal<T>(err, name, b.length);
  }
}

/** The error refusing a member at `address` that seals frames as waterbear before replication protocol 3 did. */
export function oldMemberRefusal(self: string, address: string): WaterbearError {
  return new WaterbearError('WB_PROTOCOL',
    `the member at ${address} seals coordination messages with CRC-32C, as waterbear before replication protocol 3 did; ` +
    `${self} speaks coordination format ${COORD_FORMAT_VERSION} and seals them with CRC-32: upgrade the member at ${address}, the older one, ` +
    'so that every replica and witness runs the same waterbear version');
}

function method<Req, Res>(name: string, req: TypeName, res: TypeName, requestStream: boolean): grpc.MethodDefinition<Req, Res> {
  return {
    path: `/waterbear.coord.v1.CoordRaft/${name}`,
    requestStream,
    responseStream: false,
    requestSerialize: (m: Req) => encodeWire(req, m),
    requestDeserialize: (b: Buffer) => decodeRequest<Req>(req, b),
    responseSerialize: (m: Res) => encodeWire(res, m),
    responseDeserialize: (b: Buffer) => decodeWire<Res>(res, b),
  };
}

/** The CoordRaft gRPC service (proto/coord.proto). */
export const coordRaftService = {
  send: method<RaftBatch, Record<string, never>>('Send', 'RaftBatch', 'RaftBatchAck', true),
  propose: method<ProposeRequest, ProposeReply>('Propose', 'ProposeRequest', 'ProposeReply', false),
  readIndex: method<ReadIndexRequest, ReadIndexReply>('ReadIndex', 'ReadIndexRequest', 'ReadIndexReply', false),
  keepAlive: method<KeepAliveRequest, KeepAliveReply>('KeepAlive', 'KeepAliveRequest', 'KeepAliveReply', false),
  leaseExpiry: method<LeaseExpiryRequest, LeaseExpiryReply>('LeaseExpiry', 'LeaseExpiryRequest', 'LeaseExpiryReply', false),
  status: method<StatusRequest, StatusReply>('Status', 'StatusRequest', 'StatusReply', false),
} satisfies grpc.ServiceDefinition;

type UnaryFn<Req, Res> = (req: Req, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall;

/** A typed client of the CoordRaft service. */
export type CoordRaftClient = grpc.Client & {
  send(cb: (err: grpc.ServiceError | null) => void): grpc.ClientWritableStream<RaftBatch>;
  propose: UnaryFn<ProposeRequest, ProposeReply>;
  readIndex: UnaryFn<ReadIndexRequest, ReadIndexReply>;
  keepAlive: UnaryFn<KeepAliveRequest, KeepAliveReply>;
  leaseExpiry: UnaryFn<LeaseExpiryRequest, LeaseExpiryReply>;
  status: UnaryFn<StatusRequest, StatusReply>;
};

const CoordRaftClientCtor = grpc.makeGenericClientConstructor(coordRaftService, 'CoordRaft');

/** Channel options for peer links: reconnect fast after a peer restarts, notice dead connections. */
export const COORD_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 50,
  'grpc.min_reconnect_backoff_ms': 50,
  'grpc.max_reconnect_backoff_ms': 500,
  // Our own connection per client, so that a link can replace a wedged one (wedged-connection.ts).
  ...OWN_SUBCHANNEL_OPTIONS,
  // Like the replication links: servers we share with the replica reject more frequent pings.
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.max_send_message_length': 16 * 1024 * 1024,
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
};

/** Creates a client of a member's CoordRaft service. */
export function createCoordClient(address: string, credentials: grpc.ChannelCredentials): CoordRaftClient {
  return new CoordRaftClientCtor(address, credentials, COORD_CHANNEL_OPTIONS) as unknown as CoordRaftClient;
}

// ---------------------------------------------------------------- header checks

/**
 * Checks the version and cluster of a batch or request header.
 * @throws WaterbearError WB_PROTOCOL with a message that tells the operator what to fix.
 */
export function checkHeader(h: { formatVersion: number; clusterId: string } | null | undefined, clusterName: string, what: string): void {
  if (h === null || h === undefined) throw new WaterbearError('WB_PROTOCOL', `${what} has no header`);
  // Every member sets it (from 1): 0 is a message without one, or whose field has another wire type.
  if (h.formatVersion === 0) {
    throw new WaterbearError('WB_PROTOCOL', `${what} carries no coordination format version: it is corrupt or not from a waterbear member; check that the peer is a member of this cluster running the same waterbear version`);
  }
  if (h.formatVersion !== COORD_FORMAT_VERSION) {
    throw new WaterbearError(
      'WB_PROTOCOL',
      `${what} has coordination format ${h.formatVersion}, this member speaks ${COORD_FORMAT_VERSION}: run the same waterbear version on every member`,
    );
  }
  if (h.clusterId !== clusterName) {
    throw new WaterbearError('WB_PROTOCOL', `${what} is for cluster "${h.clusterId}", this member belongs to cluster "${clusterName}": check the cluster files`);
  }
}

/** A request header. */
export function header(clusterName: string, from: string, timeoutMs: number): RequestHeader {
  return { formatVersion: COORD_FORMAT_VERSION, clusterId: clusterName, from, timeoutMs: Math.max(0, Math.min(0xffffffff, Math.ceil(timeoutMs))) };
}

/** The wire form of a WaterbearError (or any error, as WB_COORD_UNAVAILABLE). */
export function toFailure(err: unknown): Failure {
  if (err instanceof WaterbearError) {
    const leader = err.details?.leader;
    return { code: err.code, message: err.message, leaderHint: typeof leader === 'string' ? leader : '' };
  }
  return { code: 'WB_COORD_UNAVAILABLE', message: `coordination request failed: ${(err as Error)?.message ?? String(err)}`, leaderHint: '' };
}

/** The WaterbearError a Failure stands for (unknown codes become WB_PROTOCOL). */
export function fromFailure(f: Failure): WaterbearError {
  const code: ErrorCode = (ERROR_CODES as readonly string[]).includes(f.code) ? (f.code as ErrorCode) : 'WB_PROTOCOL';
  return new WaterbearError(code, f.message, f.leaderHint !== '' || code === 'WB_NOT_LEADER' ? { details: { leader: f.leaderHint } } : undefined);
}

// ---------------------------------------------------------------- Raft messages

const ENTRY_TYPES = ['normal', 'conf'] as const;

function safe(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new WaterbearError('WB_PROTOCOL', `malformed raft message: ${what} ${String(n)} is not a non-negative integer below 2^53`);
  return n;
}

export function messageToWire(m: Message): WireRaftMessage {
  return {
    type: MESSAGE_TYPES.indexOf(m.type),
    from: m.from,
    to: m.to,
    term: m.term,
    index: m.index,
    logTerm: m.logTerm,
    entries: m.entries.map((e) => ({ index: e.index, term: e.term, type: e.type === 'conf' ? 1 : 0, data: e.data })),
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: m.context,
    snapshot: m.snapshot === null ? null : snapshotToWire(m.snapshot),
  };
}

function snapshotToWire(s: Snapshot): WireSnapshot {
  return {
    meta: { index: s.meta.index, term: s.meta.term, membership: { voters: [...s.meta.membership.voters], learners: [...s.meta.membership.learners] } },
    data: s.data,
  };
}

/**
 * The Raft message a wire message stands for. Structural checks only; `validateRaftMessage` (run by
 * RaftNode.step) checks the protocol-level rules.
 * @throws WaterbearError WB_PROTOCOL when a field is out of range.
 */
export function messageFromWire(w: WireRaftMessage): Message {
  const type = MESSAGE_TYPES[w.type];
  if (type === undefined) throw new WaterbearError('WB_PROTOCOL', `malformed raft message: unknown type ${w.type}`);
  const entries: Entry[] = (w.entries ?? []).map((e) => {
    const et = ENTRY_TYPES[e.type];
    if (et === undefined) throw new WaterbearError('WB_PROTOCOL', `malformed raft message: unknown entry type ${e.type}`);
    return { index: safe(e.index, 'entry index'), term: safe(e.term, 'entry term'), type: et, data: e.data ?? new Uint8Array(0) };
  });
  let snapshot: Snapshot | null = null;
  if (w.snapshot !== null && w.snapshot !== undefined) {
    const meta = w.snapshot.meta;
    if (meta === null || meta === undefined) throw new WaterbearError('WB_PROTOCOL', 'malformed raft message: snapshot without meta');
    let membership;
    try {
      membership = makeMembership(meta.membership?.voters ?? [], meta.membership?.learners ?? []);
    } catch (cause) {
      throw new WaterbearError('WB_PROTOCOL', 'malformed raft message: snapshot membership is invalid', { cause });
    }
    snapshot = { meta: { index: safe(meta.index, 'snapshot index'), term: safe(meta.term, 'snapshot term'), membership }, data: w.snapshot.data ?? new Uint8Array(0) };
  }
  return {
    type,
    from: w.from,
    to: w.to,
    term: safe(w.term, 'term'),
    index: safe(w.index, 'index'),
    logTerm: safe(w.logTerm, 'logTerm'),
    entries,
    commit: safe(w.commit, 'commit'),
    reject: w.reject,
    rejectHint: safe(w.rejectHint, 'rejectHint'),
    context: w.context,
    snapshot,
  };
}

// ---------------------------------------------------------------- apply results

export function applyResultToWire(r: ApplyResult): WireApplyResult {
  if (r.ok) return { ok: true, reason: '', key: r.key, version: r.version, value: r.value, currentVersion: 0, currentValue: '', hasCurrentValue: false };
  if (r.reason === 'conflict') {
    return {
      ok: false, reason: 'conflict', key: r.key, version: 0, value: '', currentVersion: r.currentVersion,
      currentValue: r.currentValue ?? '', hasCurrentValue: r.currentValue !== null,
    };
  }
  return { ok: false, reason: 'malformed', key: '', version: 0, value: '', currentVersion: 0, currentValue: '', hasCurrentValue: false };
}

/** @throws WaterbearError WB_PROTOCOL on an unknown reason. */
export function applyResultFromWire(w: WireApplyResult, requestId: string): ApplyResult {
  if (w.ok) return { ok: true, requestId, key: w.key, version: safe(w.version, 'version'), value: w.value };
  if (w.reason === 'conflict') {
    return { ok: false, reason: 'conflict', requestId, key: w.key, currentVersion: safe(w.currentVersion, 'version'), currentValue: w.hasCurrentValue ? w.currentValue : null };
  }
  if (w.reason === 'malformed') return { ok: false, reason: 'malformed', requestId };
  throw new WaterbearError('WB_PROTOCOL', `unknown apply result ${JSON.stringify(w.reason)} from the leader`);
}
