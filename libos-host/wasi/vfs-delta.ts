/**
 * The checkpoint format of the virtual file system.
 *
 * One structure serves both purposes:
 * - a FULL image (`full: true`): every inode, every directory entry and all file data; applying
 *   it to an empty VFS reproduces the saved one exactly (`Vfs.save`/`Vfs.load`);
 * - a DELTA (`full: false`): what changed since the previous checkpoint (`Vfs.takeDelta`);
 *   applying deltas 1..N in order to a VFS restored from the full image of checkpoint 0 gives
 *   the live state at checkpoint N (`Vfs.applyDelta`).
 *
 * Apply order: `removed` inodes are dropped; `inodes` are created or updated (a file is resized to
 * `size`, zero-filled when it grows); `entries` are set or deleted (null ino); `chunks` overwrite
 * file bytes at `offset`. File data is tracked at VFS_BLOCK_BYTES granularity and adjacent dirty
 * blocks are coalesced into one chunk, clipped to the file's size.
 *
 * Metadata is JSON-able (times are decimal strings of ns); only chunk payloads are bytes.
 * `encodeVfsDelta` packs it into one Uint8Array:
 *   "WBVD" | u32 version | u32 json length | JSON (chunks without their data) | chunk payloads.
 */
import { WaterbearError } from '../errors.js';

/** Version of the VFS checkpoint format. A reader refuses any other. */
export const VFS_DELTA_VERSION = 1;
const MAGIC = [0x57, 0x42, 0x56, 0x44]; // "WBVD"
const HEADER_BYTES = 12;

/** An inode's full metadata (created or changed inode). */
export interface VfsInodeRecord {
  ino: number;
  kind: 'file' | 'dir' | 'symlink';
  nlink: number;
  openRefs: number;
  atimeNs: string;
  mtimeNs: string;
  ctimeNs: string;
  /** Regular files: size in bytes. */
  size?: number;
  /** Symlinks: the target path. */
  target?: string;
  /** Directories: the parent directory's inode. */
  parent?: number;
  /** Directories: the cookie the next new entry will take. */
  nextCookie?: number;
}

/** A directory entry set (`ino` non-null) or removed (`ino` null). */
export interface VfsEntryRecord {
  dir: number;
  name: string;
  ino: number | null;
  /** Cookie of the entry when set; 0 when removed. */
  cookie: number;
}

/** File bytes written at `offset` (within the file's size after the inode records are applied). */
export interface VfsChunk {
  ino: number;
  offset: number;
  data: Uint8Array;
}

export interface VfsDelta {
  version: number;
  /** True for a full image (apply to an empty VFS only). */
  full: boolean;
  /** Next inode number to hand out (inode numbers are never reused). */
  nextIno: number;
  /** Device id reported in filestat. Decimal string. */
  dev: string;
  /** Inodes of pre-opened directories (roots), in the order they were added. */
  roots: number[];
  /** Inodes that existed at the previous checkpoint and are gone now. */
  removed: number[];
  inodes: VfsInodeRecord[];
  entries: VfsEntryRecord[];
  chunks: VfsChunk[];
}

type ChunkHeader = { ino: number; offset: number; length: number };

/** Pack a delta (or full image) into bytes. */
export function encodeVfsDelta(delta: VfsDelta): Uint8Array {
  const chunkHeaders: ChunkHeader[] = delta.chunks.map((c) => ({ ino: c.ino, offset: c.offset, length: c.data.length }));
  const json = new TextEncoder().encode(JSON.stringify({ ...delta, chunks: chunkHeaders }));
  const payloadBytes = delta.chunks.reduce((n, c) => n + c.data.length, 0);
  const out = new Uint8Array(HEADER_BYTES + json.length + payloadBytes);
  const dv = new DataView(out.buffer);
  out.set(MAGIC, 0);
  dv.setUint32(4, delta.version, true);
  dv.setUint32(8, json.length, true);
  out.set(json, HEADER_BYTES);
  let p = HEADER_BYTES + json.length;
  for (const c of delta.chunks) {
    out.set(c.data, p);
    p += c.data.length;
  }
  return out;
}

/**
 * Unpack bytes made by `encodeVfsDelta`. Chunk data are views into `bytes` (no copy).
 * Throws WB_CHECKPOINT_VERSION for another format version, WB_CHECKPOINT_TRUNCATED when bytes are
 * missing and WB_CHECKPOINT_CORRUPT for anything else malformed.
 */
export function decodeVfsDelta(bytes: Uint8Array): VfsDelta {
  if (bytes.length < HEADER_BYTES) throw new WaterbearError('WB_CHECKPOINT_TRUNCATED', `VFS image is ${bytes.length} bytes, shorter than its header: the checkpoint is incomplete`);
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw corrupt('it does not start with the VFS magic "WBVD"');
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(4, true);
  if (version !== VFS_DELTA_VERSION) {
    throw new WaterbearError('WB_CHECKPOINT_VERSION', `VFS image has format version ${version}; this waterbear reads version ${VFS_DELTA_VERSION}: restore it with a matching release`);
  }
  const jsonLength = dv.getUint32(8, true);
  if (HEADER_BYTES + jsonLength > bytes.length) throw new WaterbearError('WB_CHECKPOINT_TRUNCATED', 'VFS image metadata is cut short: the checkpoint is incomplete');
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(HEADER_BYTES, HEADER_BYTES + jsonLength)));
  } catch (err) {
    throw new WaterbearError('WB_CHECKPOINT_CORRUPT', 'VFS image metadata is not valid JSON: the checkpoint is corrupt', { cause: err });
  }
  const meta = validateMeta(parsed);
  let p = HEADER_BYTES + jsonLength;
  const chunks: VfsChunk[] = [];
  for (const h of meta.chunks) {
    if (p + h.length > bytes.length) throw new WaterbearError('WB_CHECKPOINT_TRUNCATED', 'VFS image file data is cut short: the checkpoint is incomplete');
    chunks.push({ ino: h.ino, offset: h.offset, data: bytes.subarray(p, p + h.length) });
    p += h.length;
  }
  if (p !== bytes.length) throw corrupt(`${bytes.length - p} bytes follow the last chunk`);
  return { ...meta, chunks };
}

function corrupt(why: string): WaterbearError {
  return new WaterbearError('WB_CHECKPOINT_CORRUPT', `VFS image is corrupt: ${why}`);
}

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isNsString = (v: unknown): v is string => typeof v === 'string' && /^\d{1,20}$/.test(v);

/** Check the shape of decoded metadata, so applyDelta can trust field types. */
function validateMeta(m: unknown): Omit<VfsDelta, 'chunks'> & { chunks: ChunkHeader[] } {
  const o = m as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) throw corrupt('metadata is not an object');
  if (o.version !== VFS_DELTA_VERSION || typeof o.full !== 'boolean' || !isUint(o.nextIno) || !isNsString(o.dev)) throw corrupt('bad header fields');
  for (const k of ['roots', 'removed', 'inodes', 'entries', 'chunks']) {
    if (!Array.isArray(o[k])) throw corrupt(`${k} is not a list`);
  }
  if (!(o.roots as unknown[]).every(isUint) || !(o.removed as unknown[]).every(isUint)) throw corrupt('bad inode number');
  for (const r of o.inodes as Record<string, unknown>[]) {
    const ok = typeof r === 'object' && r !== null && isUint(r.ino) && isUint(r.nlink) && isUint(r.openRefs) &&
      isNsString(r.atimeNs) && isNsString(r.mtimeNs) && isNsString(r.ctimeNs) &&
      ((r.kind === 'file' && isUint(r.size)) ||
       (r.kind === 'dir' && isUint(r.parent) && isUint(r.nextCookie)) ||
       (r.kind === 'symlink' && typeof r.target === 'string'));
    if (!ok) throw corrupt(`bad inode record ${JSON.stringify(r)}`);
  }
  for (const e of o.entries as Record<string, unknown>[]) {
    const ok = typeof e === 'object' && e !== null && isUint(e.dir) && typeof e.name === 'string' &&
      (e.ino === null || isUint(e.ino)) && isUint(e.cookie);
    if (!ok) throw corrupt(`bad directory entry ${JSON.stringify(e)}`);
  }
  for (const c of o.chunks as Record<string, unknown>[]) {
    if (typeof c !== 'object' || c === null || !isUint(c.ino) || !isUint(c.offset) || !isUint(c.length)) throw corrupt('bad chunk header');
  }
  return o as unknown as Omit<VfsDelta, 'chunks'> & { chunks: ChunkHeader[] };
}
