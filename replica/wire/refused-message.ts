/**
 * Refusing a message from a peer that speaks another protocol version, so that the peer is told.
 *
 * grpc-js discards whatever a deserializer throws: the peer gets a bare INTERNAL "Error
 * deserializing request" and the receiving server logs nothing (found by an audit: a replica of
 * another waterbear version was cut off without either side saying why). So a deserializer does
 * not throw for another version: it returns a `RefusedMessage` saying what it found, the handler
 * receives it like any message (`refusalOf`), answers with a status that carries our error
 * (`refusalStatus`: FAILED_PRECONDITION, our message, our code in metadata), which the peer maps
 * back to a WaterbearError (`refusalError`), and logs it. A corrupt or malformed message is still
 * thrown: the stream is reset as before, and the sender resends on a new one.
 */
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODES, WaterbearError, type ErrorCode } from '../../libos-host/errors.js';

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

/** A message its deserializer refused, as the handler receives it. */
export interface RefusedMessage { readonly [REFUSED]: VersionRefusal }

/** A message as a handler receives it from a deserializer that refuses other versions. */
export type OrRefused<T> = T | RefusedMessage;

/** The value a deserializer returns for a message it refuses (typed as the message: see `OrRefused`). */
export function refusedMessage<T>(refusal: VersionRefusal): T {
  return { [REFUSED]: refusal } as RefusedMessage as unknown as T;
}

/** The refusal a received message stands for, or null for a message to handle. */
export function refusalOf(m: unknown): VersionRefusal | null {
  return typeof m === 'object' && m !== null && REFUSED in m ? (m as RefusedMessage)[REFUSED] : null;
}

/** The status refusing a call with `err`: FAILED_PRECONDITION (the peer is up but cannot be served), our message, our code in metadata. */
export function refusalStatus(err: WaterbearError): grpc.StatusObject {
  const metadata = new grpc.Metadata();
  metadata.set(WB_CODE_METADATA_KEY, err.code);
  return { code: grpc.status.FAILED_PRECONDITION, details: err.message, metadata };
}

/** The WaterbearError a peer refused our call with (its code in metadata), or null for any other failure. */
export function refusalError(err: Partial<grpc.StatusObject> | null | undefined): WaterbearError | null {
  const code = err?.metadata?.get(WB_CODE_METADATA_KEY)?.[0];
  if (typeof code !== 'string') return null;
  return new WaterbearError((ERROR_CODES as readonly string[]).includes(code) ? (code as ErrorCode) : 'WB_PROTOCOL', err?.details ?? '');
}

/** Where a call comes from, for a message and a log key: its host, without the connection's port (grpc-js: "ipv4:10.0.0.2:53512"). */
export function peerHost(call: { getPeer(): string }): string {
  return call.getPeer().replace(/^ipv[46]:/, '').replace(/:\d+$/, '');
}
