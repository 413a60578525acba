import zlib from 'node:zlib';
import { crcSlicingBy8, type CrcFunction } from '../../checkpoint/format/crc32c.js';

/** IEEE 802.3 CRC-32 (reflected polynomial 0xEDB88320), as zlib, gzip and Ethernet use. */
const CRC32_POLY = 0xedb88320;

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** The portable version, for Node releases without `zlib.crc32` (before 20.15 / 22.2). */
export const crc32Js: CrcFunction = crcSlicingBy8(CRC32_POLY);

/**
 * CRC-32 of `bytes`, continuing from `previous` (0 to start); unsigned. zlib's is the one used
 * where Node has it: ~4 GB/s against ~1 GB/s for our slicing-by-8, which matters because every
 * replication message is checksummed whole on both sides (a 1 MiB pre-copy slice twice).
 */
export const crc32: CrcFunction = native !== undefined ? (bytes, previous = 0) => native(bytes, previous) : crc32Js;
