import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { encodeReusing } from '../../checkpoint/format/reused-writer.js';
import { WaterbearError } from '../../libos-host/errors.js';
import { packageFile } from '../../libos-host/platform/package-files.js';
import { openFrame, sealFrame } from './frame-checksum.js';

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

/** Serializers for one message type; decoding a malformed message throws WB_PROTOCOL. */
function codec<T>(name: keyof NonNullable<typeof types>): { serialize: (m: T) => Buffer; deserialize: (b: Buffer) => T } {
  return {
    serialize: (m: T) => encodeReusing(loadTypes()[name], m as object, sealFrame),
    deserialize: (b: Buffer) => {
      try {
        const type = loadTypes()[name];
        const msg = type.toObject(type.decode(openFrame(b, name)), DECODE) as T & { protocolVersion?: number };
        if (msg.protocolVersion !== undefined && name !== 'JoinReply' && name !== 'StatusReply' && msg.protocolVersion !== REPLICATION_PROTOCOL_VERSION) {
          throw new WaterbearError('WB_PROTOCOL', `peer speaks replication protocol ${msg.protocolVersion}, this replica speaks ${REPLICATION_PROTOCOL_VERSION}: run the same waterbear version on every replica`);
        }
        return msg;
      } catch (err) {
        if (err instanceof WaterbearError) throw err;
        throw new WaterbearError('WB_PROTOCOL', `malformed ${name} from peer: ${(err as Error).message}`, { cause: err });
      }
    },
  };
}

function method<Req, Res>(name: string, req: keyof NonNullable<typeof types>, res: keyof NonNullable<typeof types>, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Req, Res> {
  const a = codec<Req>(req);
  const b = codec<Res>(res);
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
 * End a server stream with an error status the client sees. Not `call.destroy(err)`: grpc-js
 * then never sends a status, and the client's stream hangs with no error (a primary opening its
 * link while the backup was still starting waited a whole heartbeat timeout on it).
 */
export function refuseStream(call: grpc.ServerDuplexStream<unknown, unknown>, code: grpc.status, message: string): void {
  call.emit('error', Object.assign(new Error(message), { code }));
}
