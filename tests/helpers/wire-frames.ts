import { crc32c } from '../../checkpoint/format/crc32c.js';
import { FRAME_CHECKSUM_BYTES } from '../../replica/wire/frame-checksum.js';

/** `frame` (a sealed replication or coordination message) sealed as waterbear before replication protocol 3 did: with CRC-32C. */
export function sealedBeforeProtocol3(frame: Uint8Array): Buffer {
  const out = Buffer.from(frame);
  const bodyBytes = out.length - FRAME_CHECKSUM_BYTES;
  out.writeUInt32LE(crc32c(out.subarray(0, bodyBytes)) >>> 0, bodyBytes);
  return out;
}
