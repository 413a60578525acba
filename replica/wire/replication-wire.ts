import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { encodeReusing } from '../../checkpoint/format/reused-writer.js';
import { WaterbearError } from '../../libos-host/errors.js';
import { packageFile } from '../../libos-host/platform/package-files.js';
import { openFrame, sealFrame, sealedBeforeProtocol3 } from './frame-checksum.js';
import { RepeatedWarningPerKey, WarningOncePerKey, type Logger } from '../log.js';
import {
  CORRUPTION_STATUS, corruptMessage, corruptRefusal, isCorrupt, refusalStatus, refusedMessage, type Refusal, type VersionRefusal,
} from './refused-message.js';

/** Version of the replication protocol; a peer speaking another is refused with WB_PROTOCOL. */
export const REPLICATION_PROTOCOL_VERSION = 4;
/** Largest gRPC message we accept (a checkpoint chunk plus framing). */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Checkpoints larger than this travel in several chunks. */
export const CHECKPOINT_CHUNK_BYTES = 4 * 1024 * 1024;

export interface HelloMsg { backupId: string; imageSha256: string }
export interface CheckpointChunkMsg { epoch: number; full: boolean; chunkIndex: number; chunkCount: number; data: Uint8Array }
export interface HeartbeatMsg { sentAtMs: number; epoch: number }
/** Pages of a pre-copy (`start` on the first message of one); `data` holds indices.length pages. */
export interface PrecopyMsg { token: string; start: boolean; indices: number[]; crc32c: number[]; data: Uint8Array }
export interface PrimaryMessage {
  protocolVersion: number; view: number; primaryId: string;
  hello?: HelloMsg; checkpoint?: CheckpointChunkMsg; heartbeat?: HeartbeatMsg; precopy?: PrecopyMsg;
}
export interface BackupMessage {
  protocolVersion: number; view: number; backupId: string;
  ack?: { epoch: number }; nack?: { epoch: number; code: string; reason: string }; heartbeat?: HeartbeatMsg;
  staged?: { token: string; pages: number };
}
export interface JoinRequest { protocolVersion: number; replicaId: string; replicationAddress: string }
export interface JoinReply { accepted: boolean; view: number; primaryId: string; reason: string; removed?: boolean }
export interface StatusReply {
  replicaId: string; role: string; view: number; primaryId: string; backups: string[]; protected: boolean;
  epoch: number; ackedEpoch: number; statusJson: string;
}

const DECODE = { longs: Number, bytes: Uint8Array, defaults: true, oneofs: false } as const;

let types: Record<'PrimaryMessage' | 'BackupMessage' | 'JoinRequest' | 'JoinReply' | 'StatusRequest' | 'StatusReply', protobuf.Type> | null = null;

function loadTypes(): NonNullable<typeof types> {
  if (types === null) {
    const root = protobuf.loadSync(packageFile('proto/replication.proto'));
    const t = (n: string): protobuf.Type => root.lookupType(`waterbear.replication.v1.${n}`);
    types = {
      PrimaryMessage: t('PrimaryMessage'), BackupMessage: t('BackupMessage'), JoinRequest: t('JoinRequest'),
      JoinReply: t('JoinReply'), StatusRequest: t('StatusRequest'), StatusReply: t('StatusReply'),
    };
  }
  return types;
}

/** Who sent a message of one of the versioned types (the id it gives). */
const senderOf = (m: Partial<PrimaryMessage & BackupMessage & JoinRequest>): string | null => m.primaryId ?? m.backupId ?? m.replicaId ?? null;

/**
 * Serializers for one message type. A message of `refusing` types (those a handler reads:
 * PrimaryMessage, JoinRequest, StatusRequest on the server, BackupMessage on the client) that
 * is corrupt or from a peer that speaks another protocol version is not thrown, which grpc-js
 * would swallow, but returned as a RefusedMessage (refused-message.ts): the reader must check
 * `refusalOf` first (read it as `OrRefused<T>`) and answer the peer (`answerRefusal`). Decoding
 * any other type throws WB_PROTOCOL for a corrupt message (`corruptionOf` says how), which grpc-js
 * hands to the caller.
 */
function codec<T>(name: keyof NonNullable<typeof types>, refusing: boolean): { serialize: (m: T) => Buffer; deserialize: (b: Buffer) => T } {
  return {
    serialize: (m: T) => encodeReusing(loadTypes()[name], m as object, sealFrame),
    deserialize: (b: Buffer) => {
      const type = loadTypes()[name];
      let msg: T & { protocolVersion?: number };
      try {
        msg = type.toObject(type.decode(openFrame(b, name)), DECODE) as T & { protocolVersion?: number };
      } catch (err) {
        if (refusing && sealedBeforeProtocol3(err)) return refusedMessage<T>({ peerVersion: null, peerId: null });
        if (refusing) return corruptRefusal<T>(err, name, b.length);
        if (err instanceof WaterbearError) throw err;
        throw new WaterbearError('WB_PROTOCOL', `malformed ${name} from peer: ${(err as Error).message}`, { cause: err, details: { corruption: 'undecodable' } });
      }
      // Only refusing types carry a version (JoinReply and StatusReply have none). Every waterbear
      // sets it (from 1): 0 means the message has none — not ours, or a protocol_version field of
      // another wire type, which protobuf skips like any field of the wrong type.
      if (msg.protocolVersion === 0) return refusedMessage<T>({ corruption: 'undecodable', type: name, bytes: b.length, cause: 'no protocol_version' });
      if (msg.protocolVersion !== undefined && msg.protocolVersion !== REPLICATION_PROTOCOL_VERSION) {
        return refusedMessage<T>({ peerVersion: msg.protocolVersion, peerId: senderOf(msg) });
      }
      return msg;
    },
  };
}

/**
 * The error for a peer that speaks another replication protocol (`peer.peerId`, or `address`
 * when the message did not say), as `self` refuses it: which version each speaks, and what to
 * do — upgrade the older member. The peer receives the message (refusalStatus), `self` logs it.
 */
export function protocolMismatch(self: string, peer: VersionRefusal, address: string): WaterbearError {
  const who = peer.peerId !== null && peer.peerId !== '' ? peer.peerId : `the peer at ${address}`;
  const theirs = peer.peerVersion === null ? 'a replication protocol before 3' : `replication protocol ${peer.peerVersion}`;
  const older = peer.peerVersion === null || peer.peerVersion < REPLICATION_PROTOCOL_VERSION ? who : self;
  return new WaterbearError('WB_PROTOCOL',
    `${who} speaks ${theirs}, ${self} speaks replication protocol ${REPLICATION_PROTOCOL_VERSION}: ` +
    `upgrade ${older}, the older member, so that every replica and witness runs the same waterbear version`,
    { details: { peer: who, peerVersion: peer.peerVersion, self, version: REPLICATION_PROTOCOL_VERSION } });
}

/**
 * A peer that keeps sending corrupt messages is warned about at most this often per kind
 * (the repeats at debug, counted in the next warning): it may resend every heartbeat interval.
 */
export const CORRUPT_MESSAGE_WARNING_INTERVAL_MS = 60_000;

/** The logs of refused peers: another protocol version once per peer and version, corrupt messages once per peer, kind and interval. */
export interface RefusalWarnings { version: WarningOncePerKey; corrupt: RepeatedWarningPerKey }

/** Warnings for the peers a receiver refuses, on `log`; `nowMs` is the clock of the corrupt-message interval. */
export function refusalWarnings(log: Logger, nowMs: () => number): RefusalWarnings {
  return {
    version: new WarningOncePerKey(log, 'a peer speaks another replication protocol version'),
    corrupt: new RepeatedWarningPerKey(log, 'a peer sent a corrupt replication message', nowMs, CORRUPT_MESSAGE_WARNING_INTERVAL_MS),
  };
}

/** Log `err` (of `corruptMessage`) on `warnings`: once per peer, kind and interval. */
export function warnCorrupt(warnings: RefusalWarnings, err: WaterbearError): void {
  warnings.corrupt.warn(`${String(err.details?.peer)} ${String(err.details?.corruption)}`, { ...err.details, err: err.message });
}

/**
 * Refuse a message of a peer connected from `address` (host) as `self`, for `refusal`: the status
 * to answer it with — protocolMismatch's message (FAILED_PRECONDITION) or corruptMessage's
 * (CORRUPTION_STATUS), WB_PROTOCOL in metadata — after a warning on `warnings`.
 */
export function answerRefusal(self: string, refusal: Refusal, address: string, warnings: RefusalWarnings): grpc.StatusObject {
  if (isCorrupt(refusal)) {
    const err = corruptMessage(self, refusal, { id: null, address });
    warnCorrupt(warnings, err);
    return refusalStatus(err, CORRUPTION_STATUS[refusal.corruption]);
  }
  const err = protocolMismatch(self, refusal, address);
  warnings.version.warn(`${String(err.details?.peer)} ${String(refusal.peerVersion)}`, { ...err.details, err: err.message });
  return refusalStatus(err);
}

function method<Req, Res>(name: string, req: keyof NonNullable<typeof types>, res: keyof NonNullable<typeof types>, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Req, Res> {
  // Requests are read by our handlers; of the responses, only BackupMessage is (the primary's link).
  const a = codec<Req>(req, true);
  const b = codec<Res>(res, res === 'BackupMessage');
  return {
    path: `/waterbear.replication.v1.Replica/${name}`, requestStream, responseStream,
    requestSerialize: a.serialize, requestDeserialize: a.deserialize,
    responseSerialize: b.serialize, responseDeserialize: b.deserialize,
  };
}

/** The Replica gRPC service (proto/replication.proto). */
export const replicaService = {
  replicate: method<PrimaryMessage, BackupMessage>('Replicate', 'PrimaryMessage', 'BackupMessage', true, true),
  join: method<JoinRequest, JoinReply>('Join', 'JoinRequest', 'JoinReply', false, false),
  status: method<Record<string, never>, StatusReply>('Status', 'StatusRequest', 'StatusReply', false, false),
} satisfies grpc.ServiceDefinition;

export const ReplicaClient = grpc.makeGenericClientConstructor(replicaService, 'Replica');

/**
 * End a server stream with an error status the client sees (with `metadata`, e.g. our error code:
 * refusalStatus). Not `call.destroy(err)`: grpc-js then never sends a status, and the client's
 * stream hangs with no error (a primary opening its link while the backup was still starting
 * waited a whole heartbeat timeout on it).
 */
export function refuseStream(call: grpc.ServerDuplexStream<unknown, unknown>, code: grpc.status, message: string, metadata?: grpc.Metadata): void {
  call.emit('error', Object.assign(new Error(message), { code, details: message, ...(metadata === undefined ? {} : { metadata }) }));
}
