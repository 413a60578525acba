/**
 * Damaging a store's LMDB file on purpose, and loading it in a child process (LMDB may crash the
 * process on damage the store fails to refuse), for the damaged-store tests.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { spawnTs, watch } from './child.js';

/** What helpers/store-loader.ts printed last, and its exit code (null: killed by a signal). */
export interface LoadOutcome { line: string; code: number | null; signal: NodeJS.Signals | null }

/** Run helpers/store-loader.ts `mode DIR access [option]` in a child process. */
export async function storeLoader(mode: 'make' | 'load', dir: string, access: 'rw' | 'ro' = 'rw', option?: string): Promise<LoadOutcome> {
  const child = spawnTs('tests/checkpoint/helpers/store-loader.ts', [mode, dir, access, ...(option === undefined ? [] : [option])]);
  const w = watch(child);
  const code = await w.exited;
  return { line: w.stdout().trim().split('\n').at(-1) ?? '', code, signal: child.signalCode };
}

/** How a load went, for a test's log: its line, or the signal or exit code that ended it. */
export function describeLoad(r: LoadOutcome): string {
  if (r.signal !== null) return `crashed (${r.signal})`;
  return r.code === 0 ? r.line : `exited ${r.code}: ${r.line}`;
}

/** Invert `bytes` bytes of `file` at `offset`. */
export function flipBytes(file: string, offset: number, bytes = 8): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(bytes);
    readSync(fd, b, 0, bytes, offset);
    for (let i = 0; i < bytes; i++) b[i] ^= 0xff;
    writeSync(fd, b, 0, bytes, offset);
  } finally {
    closeSync(fd);
  }
}

/** Offset of a meta page's fields inside its page (LMDB data version 2, lmdb-js 3.x, 64-bit). */
export const LMDB_META_OFFSETS = { magic: 24, pageSize: 48, mainRoot: 136, lastPage: 144, txnid: 152 } as const;

/** The page size of an LMDB data file (meta page 0's, as LMDB reads it), which meta page is the newer, and its last page number. */
export function lmdbLayout(file: string): { pageBytes: number; newerMeta: 0 | 1; lastPage: number } {
  const fd = openSync(file, 'r');
  try {
    const read = (bytes: number, at: number): Buffer => { const b = Buffer.alloc(bytes); readSync(fd, b, 0, bytes, at); return b; };
    const pageBytes = read(4, LMDB_META_OFFSETS.pageSize).readUInt32LE(0);
    const field = (meta: number, name: 'txnid' | 'lastPage'): bigint => read(8, meta * pageBytes + LMDB_META_OFFSETS[name]).readBigUInt64LE(0);
    const newerMeta = field(0, 'txnid') >= field(1, 'txnid') ? 0 : 1;
    return { pageBytes, newerMeta, lastPage: Number(field(newerMeta, 'lastPage')) };
  } finally {
    closeSync(fd);
  }
}

/** The 24-byte LMDB header of page `page`. */
function pageHeader(file: string, page: number, pageBytes: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const header = Buffer.alloc(24);
    readSync(fd, header, 0, 24, page * pageBytes);
    return header;
  } finally {
    closeSync(fd);
  }
}

/** Whether page `page` is an LMDB leaf with more than one key. */
export function isLeafWithKeys(file: string, page: number, pageBytes: number): boolean {
  const header = pageHeader(file, page, pageBytes);
  return (header.readUInt16LE(18) & 0x02) !== 0 && header.readUInt16LE(20) > 2; // flags: P_LEAF; lower = 2 × keys
}

/**
 * If page `page` is an LMDB leaf with more than one key, make it list only its first key (a
 * page LMDB can read, that hides entries) and return true; else change nothing and return false.
 */
export function hideLeafKeys(file: string, page: number, pageBytes: number): boolean {
  if (!isLeafWithKeys(file, page, pageBytes)) return false;
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.from([2, 0]), 0, 2, page * pageBytes + 20);
    return true;
  } finally {
    closeSync(fd);
  }
}
