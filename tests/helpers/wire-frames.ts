import * as grpc from '@grpc/grpc-js';
import type { ExecutionContext } from 'ava';
import { crc32c } from '../../checkpoint/format/crc32c.js';
import { FRAME_CHECKSUM_BYTES, sealFrame } from '../../replica/wire/frame-checksum.js';
import { WB_CODE_METADATA_KEY } from '../../replica/wire/refused-message.js';

/** `frame` (a sealed replication or coordination message) sealed as waterbear before replication protocol 3 did: with CRC-32C. */
export function sealedBeforeProtocol3(frame: Uint8Array): Buffer {
  const out = Buffer.from(frame);
  const bodyBytes = out.length - FRAME_CHECKSUM_BYTES;
  out.writeUInt32LE(crc32c(out.subarray(0, bodyBytes)) >>> 0, bodyBytes);
  return out;
}

/** The kinds of corrupt message a receiver tells apart (replica/wire/refused-message.ts). */
export type CorruptionKind = 'checksum' | 'truncated' | 'undecodable';

/**
 * Corrupt forms of `frame`, a sealed message: a flipped bit (checksum), cut short and empty
 * (truncated: too short for the checksum), and bytes that are no protobuf sealed with a right
 * checksum (undecodable: sent that way). For a message whose encoding starts with
 * protocol_version (field 1, a varint, as every versioned replication message does), also that
 * message with protocol_version as a string (undecodable: protobuf skips the field).
 */
export function corruptFrames(frame: Buffer): Array<{ what: string; kind: CorruptionKind; frame: Buffer }> {
  const flipped = Buffer.from(frame);
  flipped[flipped.length >> 1] ^= 0x10;
  const body = frame.subarray(0, frame.length - FRAME_CHECKSUM_BYTES);
  const cases: Array<{ what: string; kind: CorruptionKind; frame: Buffer }> = [
    { what: 'a flipped bit', kind: 'checksum', frame: flipped },
    { what: 'three bytes', kind: 'truncated', frame: frame.subarray(0, 3) },
    { what: 'an empty message', kind: 'truncated', frame: Buffer.alloc(0) },
    { what: 'an HTTP request, sealed', kind: 'undecodable', frame: sealFrame(Buffer.from('GET / HTTP/1.1\r\nHost: b\r\n\r\n')) },
  ];
  if (body[0] === 0x08 && body[1] < 10) {
    // Field 1 as a length-delimited string (its one digit) in place of the varint.
    cases.push({ what: 'protocol_version as a string, sealed', kind: 'undecodable', frame: sealFrame(Buffer.concat([Buffer.from([0x0a, 0x01, 0x30 + body[1]]), body.subarray(2)])) });
  }
  return cases;
}

/** The status a peer gets per kind: DATA_LOSS for bytes changed on the way, INVALID_ARGUMENT for a message sent that way. */
const CORRUPTION_STATUS: Record<CorruptionKind, grpc.status> = { checksum: grpc.status.DATA_LOSS, truncated: grpc.status.INVALID_ARGUMENT, undecodable: grpc.status.INVALID_ARGUMENT };
/** What the message says was wrong, per kind. */
const CORRUPTION_SAYS: Record<CorruptionKind, RegExp> = { checksum: /fails its checksum/, truncated: /too short to carry its checksum/, undecodable: /does not decode/ };

/**
 * Check the status a peer got for a corrupt message of `kind` (`what`, for the assertion
 * messages): the gRPC code, WB_PROTOCOL in metadata, a message that says what was wrong, that
 * nothing of it was applied, and what to check.
 */
export function assertCorruptRefusal(t: ExecutionContext, err: grpc.ServiceError | null, kind: CorruptionKind, what: string): void {
  t.is(err?.code, CORRUPTION_STATUS[kind], `${what}: ${err?.code} ${err?.details}`);
  t.is(err?.metadata.get(WB_CODE_METADATA_KEY)[0], 'WB_PROTOCOL', what);
  t.regex(err?.details ?? '', CORRUPTION_SAYS[kind], what);
  t.regex(err?.details ?? '', /; nothing in it was applied: check /, what);
}
