/**
 * CRC-32C (Castagnoli, polynomial 0x82F63B78 reflected), as used by iSCSI, ext4 and LevelDB.
 * Pure TypeScript, slicing-by-8: about 1 GB/s on one core under V8, several times faster than
 * sha256 from node:crypto for 4 KiB pages (measured in docs/checkpoint.md), and no native
 * dependency. `crc32c(bytes)` is the checksum of every checkpoint page and of every checkpoint.
 * `crcSlicingBy8(poly)` builds the same routine for another reflected polynomial.
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function buildTables(poly: number): Uint32Array[] {
  const t: Uint32Array[] = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[0][n];
    for (let k = 1; k < 8; k++) {
      c = t[0][c & 0xff] ^ (c >>> 8);
      t[k][n] = c >>> 0;
    }
  }
  return t;
}

/** A CRC function for the reflected polynomial `poly`, with the signature of `crc32c`. */
export function crcSlicingBy8(poly: number): (bytes: Uint8Array, previous?: number) => number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = buildTables(poly);
  return (bytes: Uint8Array, previous = 0): number => {
    let crc = ~previous >>> 0;
    let i = 0;
    const n = bytes.length;
    const end8 = n - (n % 8);
    if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0 && end8 > 0) {
      // Aligned fast path: two 32-bit loads per 8 bytes.
      const words = new Uint32Array(bytes.buffer, bytes.byteOffset, end8 >>> 2);
      for (let w = 0; w < words.length; w += 2) {
        const a = words[w] ^ crc;
        const b = words[w + 1];
        crc = t7[a & 0xff] ^ t6[(a >>> 8) & 0xff] ^ t5[(a >>> 16) & 0xff] ^ t4[a >>> 24] ^
          t3[b & 0xff] ^ t2[(b >>> 8) & 0xff] ^ t1[(b >>> 16) & 0xff] ^ t0[b >>> 24];
      }
      i = end8;
    }
    while (i < end8) {
      const a = (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) ^ crc;
      crc = t7[a & 0xff] ^ t6[(a >>> 8) & 0xff] ^ t5[(a >>> 16) & 0xff] ^ t4[a >>> 24] ^
        t3[bytes[i + 4]] ^ t2[bytes[i + 5]] ^ t1[bytes[i + 6]] ^ t0[bytes[i + 7]];
      i += 8;
    }
    while (i < n) crc = t0[(crc ^ bytes[i++]) & 0xff] ^ (crc >>> 8);
    return ~crc >>> 0;
  };
}

/**
 * CRC-32C of `bytes`, continuing from `previous` (the CRC of the bytes before them; 0 to start).
 * Returns an unsigned 32-bit integer.
 */
export const crc32c: (bytes: Uint8Array, previous?: number) => number = crcSlicingBy8(0x82f63b78);
