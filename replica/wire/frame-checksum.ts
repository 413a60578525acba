import { crc32c } from '../../checkpoint/format/crc32c.js';
import { WaterbearError } from '../../libos-host/errors.js';
import { crc32 } from './crc32.js';

/** Bytes of the CRC-32 trailer on every replication and coordination message. */
export const FRAME_CHECKSUM_BYTES = 4;

/**
 * Append a CRC-32 of `message` (an encoded protobuf). TCP's 16-bit checksum misses corruption
 * that a faulty NIC, middlebox or a byte-flipping proxy introduces; a corrupted view number or
 * Raft term must be refused, never decoded. CRC-32 (zlib's, hardware-assisted) rather than the
 * CRC-32C of checkpoints: same strength for this purpose, ~4x faster in Node.
 */
export function sealFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(message.length + FRAME_CHECKSUM_BYTES);
  out.set(message, 0);
  out.writeUInt32LE(crc32(message) >>> 0, message.length);
  return out;
}

/**
 * What is wrong with a message a receiver refuses as corrupt: its checksum does not match
 * (changed on the way), it is too short to carry one (truncated), or it has a right checksum
 * but does not decode as the message it should be (undecodable: sent that way).
 */
export type Corruption = 'checksum' | 'truncated' | 'undecodable';

/**
 * Verify and strip the trailer. Throws WB_PROTOCOL for a short or corrupt frame (`corruptionOf`
 * says which), and for a frame of a peer too old to speak this framing (`sealedBeforeProtocol3`
 * tells that one apart).
 */
export function openFrame(frame: Uint8Array, what: string): Uint8Array {
  if (frame.length < FRAME_CHECKSUM_BYTES) {
    throw new WaterbearError('WB_PROTOCOL', `${what}: a ${frame.length}-byte message is too short to carry its checksum`, { details: { corruption: 'truncated' } });
  }
  const body = frame.subarray(0, frame.length - FRAME_CHECKSUM_BYTES);
  const want = Buffer.from(frame.buffer, frame.byteOffset + body.length, FRAME_CHECKSUM_BYTES).readUInt32LE(0);
  if ((crc32(body) >>> 0) === want) return body;
  // Waterbear before replication protocol 3 sealed frames with CRC-32C: name the real problem.
  if ((crc32c(body) >>> 0) === want) {
    throw new WaterbearError('WB_PROTOCOL', `${what}: the peer seals messages with CRC-32C, as waterbear before replication protocol 3 did; the message was refused: run the same waterbear version on every replica and witness`,
      { details: { sealedBeforeProtocol3: true } });
  }
  throw new WaterbearError('WB_PROTOCOL', `${what}: checksum mismatch (corrupted in transit); the message was refused`, { details: { corruption: 'checksum' } });
}

/** What is wrong with the message `err` refused (an error of `openFrame` or of a decoder that says), or null for any other error. */
export function corruptionOf(err: unknown): Corruption | null {
  return err instanceof WaterbearError ? (err.details?.corruption as Corruption | undefined) ?? null : null;
}

/** True for the error of `openFrame` on a frame sealed as waterbear before replication protocol 3 did (another version, not corruption). */
export function sealedBeforeProtocol3(err: unknown): boolean {
  return err instanceof WaterbearError && err.details?.sealedBeforeProtocol3 === true;
}
