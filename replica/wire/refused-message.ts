/**
 * Refusing a message from a peer that speaks another protocol version, or a corrupt one, so that
 * the peer is told.
 *
 * grpc-js discards whatever a deserializer throws: the peer gets a bare INTERNAL "Error
 * deserializing request" and the receiving server logs nothing (found by an audit: a replica of
 * another waterbear version was cut off without either side saying why; and a peer whose messages
 * were corrupt, likewise). So a deserializer does not throw for another version or a corrupt
 * message: it returns a `RefusedMessage` saying what it found, the handler receives it like any
 * message (`refusalOf`), answers with a status that carries our error (`refusalStatus`: our
 * message, our code in metadata), which the peer maps back to a WaterbearError (`refusalError`),
 * and logs it. The gRPC status tells the two apart: FAILED_PRECONDITION for another version (no
 * use retrying), DATA_LOSS or INVALID_ARGUMENT for a corrupt message (`CORRUPTION_STATUS`).
 */
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODES, WaterbearError, type ErrorCode } from '../../libos-host/errors.js';
import { corruptionOf, type Corruption } from './frame-checksum.js';

/** gRPC metadata key carrying a WaterbearError code on a refused call (replication and coordination). */
export const WB_CODE_METADATA_KEY = 'wb-code';

const REFUSED = Symbol('refused message');

/** What a deserializer found in a message from a peer that speaks another protocol version. */
export interface VersionRefusal {
  /** The version the peer speaks; null when it is too old to say (it seals frames with CRC-32C). */
  peerVersion: number | null;
  /** Who the message says it is from; null when it could not be decoded. */
  peerId: string | null;
}

/** What a deserializer found in a corrupt message (none of it is used: it was not decoded, or not trusted). */
export interface CorruptMessage {
  corruption: Corruption;
  /** The message type it should have been (e.g. PrimaryMessage). */
  type: string;
  /** Its size as received, checksum included. */
  bytes: number;
  /** For an undecodable message: why it does not decode (protobuf's error); empty otherwise. */
  cause: string;
}

/** Why a deserializer refused a message. */
export type Refusal = VersionRefusal | CorruptMessage;

/** True for the refusal of a corrupt message (false: another protocol version). */
export function isCorrupt(r: Refusal): r is CorruptMessage {
  return 'corruption' in r;
}

/** A message its deserializer refused, as the handler receives it. */
export interface RefusedMessage { readonly [REFUSED]: Refusal }

/** A message as a handler receives it from a deserializer that refuses other versions and corrupt messages. */
export type OrRefused<T> = T | RefusedMessage;

/** The value a deserializer returns for a message it refuses (typed as the message: see `OrRefused`). */
export function refusedMessage<T>(refusal: Refusal): T {
  return { [REFUSED]: refusal } as RefusedMessage as unknown as T;
}

/**
 * The value a deserializer returns for a message of `type` (`bytes` long, as received) that it
 * could not open or decode: `err` is openFrame's error (checksum, truncated) or the decoder's
 * (undecodable: its text says why).
 */
export function corruptRefusal<T>(err: unknown, type: string, bytes: number): T {
  const corruption = corruptionOf(err) ?? 'undecodable';
  return refusedMessage<T>({ corruption, type, bytes, cause: corruption === 'undecodable' ? (err as Error).message : '' });
}

/** The refusal a received message stands for, or null for a message to handle. */
export function refusalOf(m: unknown): Refusal | null {
  return typeof m === 'object' && m !== null && REFUSED in m ? (m as RefusedMessage)[REFUSED] : null;
}

/**
 * The gRPC status for a corrupt message. DATA_LOSS ("unrecoverable data loss or corruption") for
 * a checksum that does not match: the bytes changed between the sender's encoder and us, so the
 * request itself may have been fine (a sender of ours resends on a new stream). INVALID_ARGUMENT
 * for a message too short to carry a checksum, or with a right checksum that does not decode:
 * it arrived as it was sent, and sending it again as is will not help. Neither is
 * FAILED_PRECONDITION, which is for a peer of another protocol version (BackupLink gives up on it).
 */
export const CORRUPTION_STATUS: Readonly<Record<Corruption, grpc.status>> = {
  checksum: grpc.status.DATA_LOSS,
  truncated: grpc.status.INVALID_ARGUMENT,
  undecodable: grpc.status.INVALID_ARGUMENT,
};

/**
 * The error for a corrupt message `c` that `self` refused from `peer` (its id when known, and
 * where it connects from): what was wrong, that nothing in it was used, and what to check. The
 * peer receives the message (refusalStatus), `self` logs it.
 */
export function corruptMessage(self: string, c: CorruptMessage, peer: { id: string | null; address: string }): WaterbearError {
  const who = peer.id === null ? `the peer at ${peer.address}` : `${peer.id} at ${peer.address}`;
  const problem: Record<Corruption, string> = {
    checksum: 'it fails its checksum (changed on the way, or not a waterbear message)',
    truncated: `its ${c.bytes} bytes are too short to carry its checksum (cut short, or not a waterbear message)`,
    undecodable: `it does not decode (${c.cause}) although its checksum is right, so it was sent that way`,
  };
  const check: Record<Corruption, string> = {
    checksum: `check the network between them if it repeats (a proxy, load balancer or NIC that alters traffic), and that ${who} is a member of this cluster (a replica or witness)`,
    truncated: `check that ${who} is a member of this cluster (a replica or witness), and that nothing between them cuts messages short`,
    undecodable: `check that ${who} is a member of this cluster (a replica or witness) running the same waterbear version`,
  };
  return new WaterbearError('WB_PROTOCOL', `${self} refused a ${c.type} from ${who}: ${problem[c.corruption]}; nothing in it was applied: ${check[c.corruption]}`,
    { details: { peer: peer.id ?? peer.address, address: peer.address, corruption: c.corruption, type: c.type, self } });
}

/**
 * The status refusing a call with `err`, our message, our code in metadata: by default
 * FAILED_PRECONDITION (the peer is up but cannot be served); CORRUPTION_STATUS for a corrupt message.
 */
export function refusalStatus(err: WaterbearError, code: grpc.status = grpc.status.FAILED_PRECONDITION): grpc.StatusObject {
  const metadata = new grpc.Metadata();
  metadata.set(WB_CODE_METADATA_KEY, err.code);
  return { code, details: err.message, metadata };
}

/** The WaterbearError a peer refused our call with (its code in metadata), or null for any other failure. */
export function refusalError(err: Partial<grpc.StatusObject> | null | undefined): WaterbearError | null {
  const code = err?.metadata?.get(WB_CODE_METADATA_KEY)?.[0];
  if (typeof code !== 'string') return null;
  return new WaterbearError((ERROR_CODES as readonly string[]).includes(code) ? (code as ErrorCode) : 'WB_PROTOCOL', err?.details ?? '');
}

/**
 * The WaterbearError a peer refused our call with for our protocol version (FAILED_PRECONDITION
 * and our code in metadata: no use retrying), or null for any other failure, among them a message
 * of ours it refused as corrupt (CORRUPTION_STATUS: worth sending again).
 */
export function versionRefusalError(err: Partial<grpc.StatusObject> | null | undefined): WaterbearError | null {
  return err?.code === grpc.status.FAILED_PRECONDITION ? refusalError(err) : null;
}

/** Where a call comes from, for a message and a log key: its host, without the connection's port (grpc-js: "ipv4:10.0.0.2:53512"). */
export function peerHost(call: { getPeer(): string }): string {
  return call.getPeer().replace(/^ipv[46]:/, '').replace(/:\d+$/, '');
}
