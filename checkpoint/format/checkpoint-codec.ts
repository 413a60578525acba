/**
 * Encode and decode checkpoints (proto/checkpoint.proto): a CheckpointEnvelope holding the
 * format version, the body's length and CRC-32C, and the body (a Checkpoint, optionally
 * deflated). `decodeCheckpoint` refuses a checkpoint it cannot trust before anything is applied:
 *   - another format version              → WB_CHECKPOINT_VERSION
 *   - cut short anywhere (torn write/send) → WB_CHECKPOINT_TRUNCATED
 *   - a checksum or structure mismatch     → WB_CHECKPOINT_CORRUPT
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { WaterbearError } from '../../libos-host/errors.js';
import type { SavedStack } from '../../libos-host/extensions/stack-state.js';
import type { SavedGlobal } from '../../libos-host/runtime/lvm.js';
import type { LibOsState, SavedFd } from '../../libos-host/wasi/lib-os.js';
import { CHECKPOINT_PAGE_BYTES, sealPages, type CheckpointData, type CheckpointPage } from '../checkpoint-data.js';
import { crc32c } from './crc32c.js';
import { checkpointTypes } from './checkpoint-schema.js';
import { applyPageDelta } from './page-delta.js';
import { encodeExact, encodeReusing } from './reused-writer.js';

/** Version of the checkpoint format. A reader refuses any other (WB_CHECKPOINT_VERSION). */
export const CHECKPOINT_FORMAT_VERSION = 1;

/** Largest linear memory a checkpoint may describe (wasm32: 4 GiB). */
const MAX_MEMORY_BYTES = 65536 * 65536;
/** deflate level for COMPRESSION_DEFLATE: 1 is the fastest; higher levels cost time for little gain on memory pages. */
export const DEFLATE_LEVEL = 1;

export type CheckpointCompression = 'none' | 'deflate';
const COMPRESSION_CODES: Record<CheckpointCompression, number> = { none: 0, deflate: 1 };

const FD_KINDS = ['stdio', 'file', 'dir', 'listener', 'socket'] as const;

export interface EncodeOptions {
  /** Compress the body (default 'none'; see docs/checkpoint.md for when it pays). */
  compression?: CheckpointCompression;
  /**
   * Ship a page that carries a delta (DeltaBases.annotate) as that delta when its base epoch is
   * after this one, the receiver's latest full checkpoint. Absent: every page goes whole (what
   * stores and checkpoint directories get).
   */
  deltasAfter?: number;
}

export interface DecodeOptions {
  /**
   * The receiver's version of page `index` as of `epoch` (DeltaBases.base), for delta pages.
   * Absent: a delta page is refused (only a replication stream carries them).
   */
  deltaBase?: (index: number, epoch: number) => Uint8Array | undefined;
}

function corrupt(what: string, cause?: unknown): WaterbearError {
  return new WaterbearError('WB_CHECKPOINT_CORRUPT', `the checkpoint is corrupt (${what}); it was not applied: use an earlier checkpoint or take a new one`,
    cause === undefined ? undefined : { cause });
}

function truncated(what: string, cause?: unknown): WaterbearError {
  return new WaterbearError('WB_CHECKPOINT_TRUNCATED', `the checkpoint is incomplete (${what}); it was not applied: it was cut short while being written or sent`,
    cause === undefined ? undefined : { cause });
}

// ---- encoding ---------------------------------------------------------------------------------

/**
 * A 64-bit value as protobufjs's {low, high} bits. Given a decimal string instead, protobufjs
 * parses it with Long.fromString, which was most of the cost of encoding an fd table.
 */
function longBits(v: bigint): { low: number; high: number; unsigned: boolean } {
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: v >= 0n };
}

function globalToProto(g: SavedGlobal): Record<string, unknown> {
  switch (g.type) {
    case 'i32': return { name: g.name, i32: g.value as number };
    case 'i64': return { name: g.name, i64: longBits(g.value as bigint) };
    case 'f32': return { name: g.name, f32: g.value as number };
    case 'f64': return { name: g.name, f64: g.value as number };
  }
}

function pageToProto(p: CheckpointPage, deltasAfter: number | undefined): Record<string, unknown> {
  if (deltasAfter !== undefined && p.delta !== undefined && p.delta.baseEpoch > deltasAfter) {
    return { index: p.index, crc32c: p.crc32c, deltaBaseEpoch: p.delta.baseEpoch, delta: p.delta.bytes };
  }
  return { index: p.index, crc32c: p.crc32c, data: p.data };
}

function fdToProto(f: SavedFd): Record<string, unknown> {
  const o: Record<string, unknown> = {
    fd: f.fd, kind: FD_KINDS.indexOf(f.kind) + 1, fdflags: f.fdflags,
    rightsBase: longBits(f.rightsBase), rightsInheriting: longBits(f.rightsInheriting),
  };
  switch (f.kind) {
    case 'stdio': o.which = f.which; break;
    case 'file': o.ino = f.ino; o.offset = longBits(f.offset); break;
    case 'dir': o.ino = f.ino; if (f.preopen !== null) o.preopen = f.preopen; break;
    case 'listener': o.uri = f.uri; if (f.name !== null) o.name = f.name; if (f.address !== null) o.address = f.address; break;
    case 'socket': o.peer = f.peer; o.readShut = f.readShut; o.writeShut = f.writeShut; if (f.held !== null) o.held = f.held; break;
  }
  return o;
}

/** The Checkpoint message body (uncompressed). Fills missing page checksums. */
export function encodeCheckpointBody(cp: CheckpointData): Uint8Array {
  return encodeExact(checkpointTypes().Checkpoint, checkpointMessage(cp, undefined));
}

/** The protobufjs object for `cp`'s Checkpoint message. Fills missing page checksums. */
function checkpointMessage(cp: CheckpointData, deltasAfter: number | undefined): object {
  sealPages(cp);
  const l = cp.libos;
  return {
    epoch: cp.epoch, full: cp.full, imageSha256: cp.imageSha256, memoryBytes: cp.memoryBytes, pageBytes: CHECKPOINT_PAGE_BYTES,
    pages: cp.pages.map((p) => pageToProto(p, deltasAfter)),
    globals: cp.globals.map(globalToProto),
    pending: {
      deadlineNs: cp.pending.deadlineNs !== null ? longBits(cp.pending.deadlineNs) : null,
      blockedAtNs: longBits(cp.pending.blockedAtNs), forced: cp.pending.forced,
    },
    libos: {
      args: l.args, env: l.env, fds: l.fds.map(fdToProto), vfs: l.vfs.bytes, vfsFull: l.vfs.full,
      vfsMaxBytes: l.vfsMaxBytes, monotonicNs: longBits(BigInt(l.clock.monotonicNs)),
    },
    extensionsJson: cp.extensions === null ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(cp.extensions)),
    stats: { pauseUs: Math.round(cp.stats.pauseUs), capturedAtMs: cp.stats.capturedAtMs, trackerPages: cp.stats.trackerPages, tracker: cp.stats.tracker },
    ...(cp.stagedFrom !== undefined ? { stagedFrom: cp.stagedFrom } : {}),
  };
}

/** Encode a checkpoint for shipping or storing: the envelope with version, length and checksum. */
export function encodeCheckpoint(cp: CheckpointData, options: EncodeOptions = {}): Uint8Array {
  const compression = options.compression ?? 'none';
  if (!(compression in COMPRESSION_CODES)) {
    throw new WaterbearError('WB_CONFIG_INVALID', `checkpoint compression must be one of ${Object.keys(COMPRESSION_CODES).join(', ')}: got "${String(compression)}"`);
  }
  // The body is encoded into a reused writer and copied once, into the envelope.
  return encodeReusing(checkpointTypes().Checkpoint, checkpointMessage(cp, options.deltasAfter), (raw) => {
    const body = compression === 'deflate' ? deflateRawSync(raw, { level: DEFLATE_LEVEL }) : raw;
    return wrapEnvelope(body, COMPRESSION_CODES[compression], CHECKPOINT_FORMAT_VERSION);
  });
}

/** Pages per slice of `encodeCheckpointSliced` (2 MiB): one slice is a few ms of work. */
export const ENCODE_SLICE_PAGES = 512;

/**
 * `encodeCheckpoint` (no compression) for a large checkpoint, in slices of ENCODE_SLICE_PAGES
 * pages with `pause()` awaited between them, so the caller's event loop keeps turning: sealing
 * and encoding 32 MiB took the primary ~340 ms in one piece, long enough to miss heartbeats and
 * lease renewals (false failovers under load). The pages are encoded after the other fields
 * (protobuf allows any field order; repeated fields concatenate), and the body checksum is
 * computed as the slices are made. Decodes exactly as `encodeCheckpoint`'s output does.
 */
export async function encodeCheckpointSliced(cp: CheckpointData, pause: () => Promise<void>): Promise<Uint8Array> {
  const { Checkpoint } = checkpointTypes();
  const parts: Uint8Array[] = [encodeCheckpointBody({ ...cp, pages: [] })];
  let crc = crc32c(parts[0]);
  let length = parts[0].length;
  for (let i = 0; i < cp.pages.length; i += ENCODE_SLICE_PAGES) {
    await pause();
    const pages = cp.pages.slice(i, i + ENCODE_SLICE_PAGES);
    sealPages({ pages });
    const part = Checkpoint.encode({ pages: pages.map((p) => pageToProto(p, undefined)) }).finish();
    crc = crc32c(part, crc);
    length += part.length;
    parts.push(part);
  }
  await pause();
  return envelopeAround(parts, length, crc, COMPRESSION_CODES.none, CHECKPOINT_FORMAT_VERSION);
}

/** Build an envelope around an already encoded body. Exposed for tests that forge versions. */
export function wrapEnvelope(body: Uint8Array, compressionCode: number, formatVersion: number): Uint8Array {
  return envelopeAround([body], body.length, crc32c(body), compressionCode, formatVersion);
}

/** Envelope field 5 (`body`, length-delimited): its tag byte. */
const ENVELOPE_BODY_TAG = (5 << 3) | 2;

/**
 * The envelope as protobufjs encodes it (fields in order, `body` last), assembled in one buffer:
 * the body parts are copied once instead of into a growing writer and out of it again.
 */
function envelopeAround(parts: readonly Uint8Array[], length: number, crc: number, compressionCode: number, formatVersion: number): Uint8Array {
  const { Envelope } = checkpointTypes();
  const head = Envelope.encode({ formatVersion, compression: compressionCode, bodyLength: length, bodyCrc32c: crc }).uint32(ENVELOPE_BODY_TAG).uint32(length).finish();
  const out = Buffer.allocUnsafe(head.length + length);
  out.set(head, 0);
  let at = head.length;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// ---- decoding ---------------------------------------------------------------------------------

/** What protobufjs decodes a 64-bit field to: a Long (with the long package), a number or a string. */
type Longish = number | string | { low: number; high: number; unsigned: boolean } | null | undefined;

/** A decoded 64-bit field as a bigint, from the Long's bits (Long.toString was most of decoding an fd table). */
function big(v: Longish): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number' || typeof v === 'string') return BigInt(v);
  if (v.high === 0) return BigInt(v.low >>> 0);
  const u = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return v.unsigned ? u : BigInt.asIntN(64, u);
}

function num(v: Longish, what: string): number {
  const b = big(v);
  if (b > BigInt(Number.MAX_SAFE_INTEGER) || b < 0n) throw corrupt(`${what} out of range`);
  return Number(b);
}

function isSet(msg: object, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(msg, field) && (msg as Record<string, unknown>)[field] !== null;
}

/** Tags of envelope fields 2–5 (compression, body_length, body_crc32c, body). */
const ENVELOPE_LATER_TAGS = new Set([0x10, 0x18, 0x25, 0x2a]);

/** Read the format version (field 1 of the envelope) without decoding the rest. */
function peekVersion(bytes: Uint8Array): number {
  if (bytes.length === 0) throw truncated('it is empty');
  const reader = protobuf.Reader.create(bytes);
  let tag: number;
  let version: number;
  try {
    tag = reader.uint32();
    // proto3 leaves a zero version out: the envelope then starts with a later field.
    if (ENVELOPE_LATER_TAGS.has(tag)) return 0;
    if (tag !== 0x08) throw corrupt('it does not start with a format version');
    version = reader.uint32();
  } catch (err) {
    if (err instanceof WaterbearError) throw err;
    throw truncated('it ends inside its header', err);
  }
  return version;
}

interface Envelope { compression: number; bodyLength: Longish; bodyCrc32c: number; body: Uint8Array }

/**
 * Check a checkpoint's envelope (version, length, checksum) and return its uncompressed body.
 * Throws WB_CHECKPOINT_VERSION / _TRUNCATED / _CORRUPT.
 */
export function openEnvelope(bytes: Uint8Array): Uint8Array {
  const version = peekVersion(bytes);
  if (version !== CHECKPOINT_FORMAT_VERSION) {
    throw new WaterbearError('WB_CHECKPOINT_VERSION',
      `the checkpoint has format version ${version}, this waterbear reads version ${CHECKPOINT_FORMAT_VERSION}; it was not applied: use the waterbear version that wrote it`,
      { details: { version } });
  }
  const { Envelope } = checkpointTypes();
  let env: Envelope;
  try {
    env = Envelope.decode(bytes) as unknown as Envelope;
  } catch (err) {
    if (err instanceof RangeError || /index out of range/.test(String(err))) throw truncated(`${bytes.length} bytes end inside a field`, err);
    throw corrupt('its envelope does not decode', err);
  }
  if (!isSet(env, 'bodyLength')) throw truncated(`${bytes.length} bytes end before the body`);
  const want = num(env.bodyLength, 'body length');
  const body = env.body ?? new Uint8Array(0);
  if (body.length < want) throw truncated(`the body has ${body.length} of ${want} bytes`);
  if (body.length > want) throw corrupt(`the body has ${body.length} bytes, the envelope says ${want}`);
  if (crc32c(body) !== env.bodyCrc32c >>> 0) throw corrupt('the body checksum does not match');
  switch (env.compression) {
    case 0: return body;
    case 1:
      try {
        return inflateRawSync(body);
      } catch (err) {
        throw corrupt('the compressed body does not inflate', err);
      }
    default: throw corrupt(`unknown compression ${env.compression}`);
  }
}

/* eslint-disable @typescript-eslint/no-explicit-any */
/** The whole page a delta page of checkpoint `epoch` stands for (its checksum is checked after). */
function pageFromDelta(p: any, baseEpoch: number, epoch: number, options: DecodeOptions): Uint8Array {
  if (options.deltaBase === undefined) throw corrupt(`page ${p.index} is a sub-page delta, which only a replication stream carries`);
  if (baseEpoch >= epoch) throw corrupt(`page ${p.index} of epoch ${epoch} is a delta against a later epoch ${baseEpoch}`);
  if ((p.data as Uint8Array).length !== 0) throw corrupt(`page ${p.index} has both data and a delta`);
  const base = options.deltaBase(p.index, baseEpoch);
  if (base === undefined) throw corrupt(`page ${p.index} is a delta against its version of epoch ${baseEpoch}, which this replica does not hold`);
  // proto3 leaves an empty delta (an unchanged page) out; protobufjs then decodes a plain [].
  const delta: Uint8Array = p.delta instanceof Uint8Array ? p.delta : new Uint8Array(0);
  try {
    return applyPageDelta(base, delta);
  } catch (err) {
    throw corrupt(`page ${p.index}: ${(err as Error).message}`, err);
  }
}

function fdFromProto(f: any): SavedFd {
  const kind = FD_KINDS[(f.kind as number) - 1];
  if (kind === undefined) throw corrupt(`fd ${f.fd} has unknown kind ${f.kind}`);
  // Flat literals, not `{ ...common, … }`: V8 copied the spread at ~1.3 µs per fd (measured,
  // docs/replication.md), and a checkpoint carries every open fd.
  const fd = f.fd as number;
  const fdflags = f.fdflags as number;
  const rightsBase = big(f.rightsBase);
  const rightsInheriting = big(f.rightsInheriting);
  switch (kind) {
    case 'stdio':
      if (f.which !== 'stdin' && f.which !== 'stdout' && f.which !== 'stderr') throw corrupt(`fd ${f.fd} is stdio "${f.which}"`);
      return { fd, fdflags, rightsBase, rightsInheriting, kind, which: f.which };
    case 'file': return { fd, fdflags, rightsBase, rightsInheriting, kind, ino: f.ino, offset: big(f.offset) };
    case 'dir': return { fd, fdflags, rightsBase, rightsInheriting, kind, ino: f.ino, preopen: isSet(f, 'preopen') ? f.preopen : null };
    case 'listener':
      if (!String(f.uri).startsWith('tcp.srv:')) throw corrupt(`listener fd ${f.fd} has URI "${f.uri}"`);
      return { fd, fdflags, rightsBase, rightsInheriting, kind, uri: f.uri, name: isSet(f, 'name') ? f.name : null, address: isSet(f, 'address') ? f.address : null };
    case 'socket':
      return { fd, fdflags, rightsBase, rightsInheriting, kind, peer: f.peer, readShut: f.readShut, writeShut: f.writeShut, held: isSet(f, 'held') ? new Uint8Array(f.held) : null };
  }
}

function globalFromProto(g: any): SavedGlobal {
  switch (g.value) {
    case 'i32': return { name: g.name, type: 'i32', value: g.i32 };
    case 'i64': return { name: g.name, type: 'i64', value: BigInt.asIntN(64, big(g.i64)) };
    case 'f32': return { name: g.name, type: 'f32', value: g.f32 };
    case 'f64': return { name: g.name, type: 'f64', value: g.f64 };
    default: throw corrupt(`global ${g.name} has no value`);
  }
}

/**
 * Decode a Checkpoint body (already checked by its envelope) and validate its structure and
 * every page checksum. Throws WB_CHECKPOINT_CORRUPT.
 */
export function decodeCheckpointBody(body: Uint8Array, options: DecodeOptions = {}): CheckpointData {
  const { Checkpoint } = checkpointTypes();
  let m: any;
  try {
    m = Checkpoint.decode(body);
  } catch (err) {
    throw corrupt('its body does not decode', err);
  }
  const epoch = num(m.epoch, 'epoch');
  if (epoch < 1) throw corrupt(`epoch ${epoch}`);
  const memoryBytes = num(m.memoryBytes, 'memory size');
  if (memoryBytes % 65536 !== 0 || memoryBytes > MAX_MEMORY_BYTES) throw corrupt(`memory size ${memoryBytes}`);
  if (m.pageBytes !== CHECKPOINT_PAGE_BYTES) throw corrupt(`page size ${m.pageBytes}`);
  const pages: CheckpointPage[] = [];
  let last = -1;
  for (const p of m.pages as any[]) {
    if (p.index <= last || (p.index + 1) * CHECKPOINT_PAGE_BYTES > memoryBytes) throw corrupt(`page ${p.index} out of order or outside memory`);
    const baseEpoch = num(p.deltaBaseEpoch, 'delta base epoch');
    const data: Uint8Array = baseEpoch === 0 ? p.data : pageFromDelta(p, baseEpoch, epoch, options);
    if (data.length !== CHECKPOINT_PAGE_BYTES) throw corrupt(`page ${p.index} has ${data.length} bytes`);
    const sum = p.crc32c >>> 0;
    if (crc32c(data) !== sum) throw corrupt(`page ${p.index} checksum does not match`);
    pages.push({ index: p.index, data, crc32c: sum });
    last = p.index;
  }
  if (m.pending === null || m.pending === undefined) throw corrupt('no pending block');
  if (m.libos === null || m.libos === undefined) throw corrupt('no library OS state');
  const l = m.libos;
  const libos: LibOsState = {
    args: [...l.args], env: [...l.env], fds: (l.fds as any[]).map(fdFromProto),
    vfs: { full: l.vfsFull, bytes: l.vfs }, vfsMaxBytes: num(l.vfsMaxBytes, 'VFS size limit'),
    clock: { monotonicNs: big(l.monotonicNs).toString() },
  };
  let extensions: SavedStack | null = null;
  if (m.extensionsJson.length > 0) {
    try {
      extensions = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(m.extensionsJson)) as SavedStack;
    } catch (err) {
      throw corrupt('the extension state is not JSON', err);
    }
  }
  const stagedFrom = isSet(m, 'stagedFrom') ? String(m.stagedFrom) : undefined;
  if (stagedFrom !== undefined && !m.full) throw corrupt(`incremental checkpoint ${epoch} names a staging area`);
  const s = m.stats ?? {};
  return {
    epoch, full: m.full, imageSha256: m.imageSha256, memoryBytes, pages,
    globals: (m.globals as any[]).map(globalFromProto),
    pending: {
      deadlineNs: isSet(m.pending, 'deadlineNs') ? big(m.pending.deadlineNs) : null,
      blockedAtNs: big(m.pending.blockedAtNs), forced: m.pending.forced,
    },
    libos, extensions,
    stats: { pauseUs: s.pauseUs ?? 0, capturedAtMs: num(s.capturedAtMs, 'capture time'), trackerPages: s.trackerPages ?? 0, tracker: s.tracker ?? '' },
    ...(stagedFrom !== undefined ? { stagedFrom } : {}),
  };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Decode bytes made by `encodeCheckpoint`, refusing anything it cannot trust (see the file comment). */
export function decodeCheckpoint(bytes: Uint8Array, options: DecodeOptions = {}): CheckpointData {
  return decodeCheckpointBody(openEnvelope(bytes), options);
}
