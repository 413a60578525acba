import { crc32c } from '../../checkpoint/format/crc32c.js';
import { FRAME_CHECKSUM_BYTES, sealFrame } from '../../replica/wire/frame-checksum.js';

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
 * Corrupt forms of `frame`, a sealed message whose encoding starts with protocol_version (field 1,
 * a varint, as every versioned replication message does): a flipped bit (checksum), cut short
 * and empty (truncated: too short for the checksum), bytes that are no protobuf and a message whose
 * protocol_version is a string, both sealed with a right checksum (undecodable: sent that way).
 */
export function corruptFrames(frame: Buffer): Array<{ what: string; kind: CorruptionKind; frame: Buffer }> {
  const flipped = Buffer.from(frame);
  flipped[flipped.length >> 1] ^= 0x10;
  const body = frame.subarray(0, frame.length - FRAME_CHECKSUM_BYTES);
  if (body[0] !== 0x08) throw new Error('the frame does not start with protocol_version');
  // Field 1 as a length-delimited string ("4") in place of the varint: protobuf skips it as unknown.
  const versionAsString = Buffer.concat([Buffer.from([0x0a, 0x01, 0x30 + body[1]]), body.subarray(2)]);
  return [
    { what: 'a flipped bit', kind: 'checksum', frame: flipped },
    { what: 'three bytes', kind: 'truncated', frame: frame.subarray(0, 3) },
    { what: 'an empty message', kind: 'truncated', frame: Buffer.alloc(0) },
    { what: 'an HTTP request, sealed', kind: 'undecodable', frame: sealFrame(Buffer.from('GET / HTTP/1.1\r\nHost: b\r\n\r\n')) },
    { what: 'protocol_version as a string, sealed', kind: 'undecodable', frame: sealFrame(versionAsString) },
  ];
}
