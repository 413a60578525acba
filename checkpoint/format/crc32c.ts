/**
 * CRC-32C (Castagnoli, polynomial 0x82F63B78 reflected), as used by iSCSI, ext4 and LevelDB.
 * `crc32c(bytes)` is the checksum of every checkpoint page and of every checkpoint: every dirty
 * page is checksummed on the primary and again on each backup, so its speed is paid per epoch.
 * It runs in the optional native addon (native/uffd/src/crc32c.c: the CPU's CRC-32C instruction,
 * 7.5-8.1x the TypeScript speed here, bench/results/checksum.txt) when that was built, and
 * otherwise in TypeScript (`crc32cJs`, slicing-by-8, ~1 GB/s). The addon is checked against the
 * TypeScript version when it loads; a mismatch or a load error falls back to TypeScript.
 * WATERBEAR_CRC32C=js forces TypeScript.
 * `crcSlicingBy8(poly)` builds the TypeScript routine for another reflected polynomial.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { findNativeAddon } from '../native-addon.js';

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

/** A CRC of `bytes`, continuing from `previous` (0 to start); an unsigned 32-bit integer. */
export type CrcFunction = (bytes: Uint8Array, previous?: number) => number;

/** A CRC function for the reflected polynomial `poly`, with the signature of `crc32c`. */
export function crcSlicingBy8(poly: number): CrcFunction {
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

/** CRC-32C in TypeScript: the fallback, and the reference the addon is checked against. */
export const crc32cJs: CrcFunction = crcSlicingBy8(0x82f63b78);

/** File name of the built addon under native/uffd/build/Release. */
export const CRC32C_ADDON_FILE = 'waterbear_crc32c.node';
/** Threads `verifyPageChecksums` may use. */
const VERIFY_THREADS = Math.max(1, Math.min(16, availableParallelism()));
/** Shorter inputs stay in TypeScript: calling into the addon costs about as much as they do. */
const NATIVE_MIN_BYTES = 64;

interface Crc32cAddon {
  crc32c(bytes: Uint8Array, previous: number): number;
  hardware(): boolean;
  verifyPages(memory: Uint8Array, indices: Uint32Array, expected: Uint32Array, count: number, pageBytes: number, threads: number): number;
  /** Absent from addons built before sub-page deltas (page-delta.ts then compares in TypeScript). */
  changedRuns?: NativeChangedRuns;
}

/** native/uffd/src/crc32c.c's changedRuns: see page-delta.ts's `changedRunsJs`, which it equals. */
export type NativeChangedRuns = (base: Uint8Array, next: Uint8Array, out: Uint16Array, mergeGap: number, maxBytes: number) => number;

/** Which implementation `crc32c` is, for logs, benchmarks and tests. */
export interface Crc32cImplementation { native: boolean; hardware: boolean; addonPath: string | null; reason: string }

function loadNative(): { addon: Crc32cAddon | null; impl: Crc32cImplementation } {
  const js = (reason: string, addonPath: string | null = null): { addon: null; impl: Crc32cImplementation } => ({ addon: null, impl: { native: false, hardware: false, addonPath, reason } });
  if (process.env.WATERBEAR_CRC32C === 'js') return js('WATERBEAR_CRC32C=js');
  const path = findNativeAddon(CRC32C_ADDON_FILE, 'WATERBEAR_CRC32C_ADDON');
  if (path === undefined) return js('the native addon is not built (npm run build:native; needs node-gyp and a C compiler)');
  try {
    const addon = createRequire(import.meta.url)(path) as Crc32cAddon;
    const probe = new Uint8Array(1000).map((_, i) => (i * 167 + 13) & 0xff);
    if (addon.crc32c(new TextEncoder().encode('123456789'), 0) !== 0xe3069283 || addon.crc32c(probe.subarray(3), 0x1234) !== crc32cJs(probe.subarray(3), 0x1234)) {
      return js('the native addon computes another checksum than the TypeScript version', path);
    }
    if (typeof addon.verifyPages !== 'function') return js('the native addon predates verifyPages: rebuild it (npm run build:native)', path);
    const hardware = addon.hardware();
    return { addon, impl: { native: true, hardware, addonPath: path, reason: `native addon ${path} (${hardware ? 'CPU CRC-32C instruction' : 'slicing-by-8 in C'})` } };
  } catch (err) {
    return js(`the native addon does not load: ${err instanceof Error ? err.message : String(err)}`, path);
  }
}

const loaded = loadNative();
const addon = loaded.addon;

/** How `crc32c` computes (decided once, when this module loads). */
export const crc32cImplementation: Crc32cImplementation = loaded.impl;

/**
 * CRC-32C of `bytes`, continuing from `previous` (the CRC of the bytes before them; 0 to start).
 * Returns an unsigned 32-bit integer.
 */
export const crc32c: CrcFunction = addon === null
  ? crc32cJs
  : (bytes, previous = 0) => (bytes.length < NATIVE_MIN_BYTES ? crc32cJs(bytes, previous) : addon.crc32c(bytes, previous >>> 0));

/** The addon's page comparison for sub-page deltas, when it was loaded and has one. */
export const nativeChangedRuns: NativeChangedRuns | null = typeof addon?.changedRuns === 'function' ? addon.changedRuns : null;

/**
 * Check `count` pages of `memory` at once: page `indices[i]` (of `pageBytes` bytes) must have the
 * CRC-32C `expected[i]`. Returns the first position i that does not (or lies outside `memory`),
 * else -1. The native addon splits the list over every core; without it, a loop here.
 */
export function verifyPageChecksums(memory: Uint8Array, indices: Uint32Array, expected: Uint32Array, count: number, pageBytes: number): number {
  if (addon !== null) return addon.verifyPages(memory, indices, expected, count, pageBytes, VERIFY_THREADS);
  for (let i = 0; i < count; i++) {
    const at = indices[i] * pageBytes;
    if (at + pageBytes > memory.length || crc32cJs(memory.subarray(at, at + pageBytes)) !== expected[i]) return i;
  }
  return -1;
}
