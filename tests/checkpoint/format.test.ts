import test from 'ava';
import { sealPages } from '../../checkpoint/checkpoint-data.js';
import { crc32c } from '../../checkpoint/format/crc32c.js';
import {
  CHECKPOINT_FORMAT_VERSION, ENCODE_SLICE_PAGES, decodeCheckpoint, encodeCheckpoint, encodeCheckpointBody, encodeCheckpointSliced, wrapEnvelope,
} from '../../checkpoint/format/checkpoint-codec.js';
import { isWaterbearError } from '../../libos-host/errors.js';
import { seededRandom, testSeed } from './helpers/checkpointing.js';
import { syntheticChain } from './helpers/synthetic.js';

test('crc32c matches the published check values, aligned or not, and continues across calls', (t) => {
  const enc = new TextEncoder();
  t.is(crc32c(enc.encode('123456789')), 0xe3069283);
  t.is(crc32c(new Uint8Array(32)), 0x8a9136aa);
  t.is(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  const data = new Uint8Array(4099);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
  const whole = crc32c(data.subarray(0, 4096));
  t.is(crc32c(data.subarray(3, 4099).slice(0, 0)), 0);
  const shifted = new Uint8Array(4097);
  shifted.set(data.subarray(0, 4096), 1);
  t.is(crc32c(shifted.subarray(1)), whole, 'unaligned view gives the same CRC');
  t.is(crc32c(data.subarray(1000, 4096), crc32c(data.subarray(0, 1000))), whole);
});

test('a checkpoint survives encoding and decoding unchanged, compressed or not', (t) => {
  for (const cp of syntheticChain(3)) {
    sealPages(cp);
    for (const compression of ['none', 'deflate'] as const) {
      const back = decodeCheckpoint(encodeCheckpoint(cp, { compression }));
      t.deepEqual(back.pages.map((p) => [p.index, p.crc32c, Buffer.from(p.data).toString('hex')]),
        cp.pages.map((p) => [p.index, p.crc32c, Buffer.from(p.data).toString('hex')]));
      t.deepEqual({ ...back, pages: [], libos: { ...back.libos, vfs: null, fds: null } }, { ...cp, pages: [], libos: { ...cp.libos, vfs: null, fds: null } });
      t.deepEqual(back.libos.fds.map((f) => ({ ...f, held: 'held' in f && f.held !== null ? [...f.held] : null })),
        cp.libos.fds.map((f) => ({ ...f, held: 'held' in f && f.held !== null ? [...f.held] : null })));
      t.is(Buffer.compare(back.libos.vfs.bytes, cp.libos.vfs.bytes), 0);
      t.is(back.libos.vfs.full, cp.libos.vfs.full);
    }
  }
});

test('64-bit fields survive encoding at their extremes: rights masks, offsets, signed globals, clocks, a zero deadline', (t) => {
  const [cp] = syntheticChain(1);
  const max = (1n << 64n) - 1n;
  cp.globals = [
    { name: 'min', type: 'i64', value: -(1n << 63n) }, { name: 'max', type: 'i64', value: (1n << 63n) - 1n },
    { name: 'minus1', type: 'i64', value: -1n }, { name: 'small', type: 'i64', value: 7n }, { name: 'high', type: 'i64', value: 1n << 32n },
  ];
  cp.pending = { deadlineNs: 0n, blockedAtNs: -(1n << 40n), forced: false };
  cp.libos.fds = [
    { fd: 5, kind: 'file', ino: 2, offset: (1n << 53n) + 1n, fdflags: 1, rightsBase: max, rightsInheriting: 1n << 63n },
    { fd: 6, kind: 'socket', peer: 'p', readShut: false, writeShut: false, held: null, fdflags: 0, rightsBase: 0n, rightsInheriting: 0xffffffffn },
  ];
  cp.libos.clock = { monotonicNs: String((1n << 62n) + 3n) };
  const back = decodeCheckpoint(encodeCheckpoint(cp));
  t.deepEqual(back.globals, cp.globals);
  t.deepEqual(back.pending, cp.pending, 'a zero deadline stays set (not null)');
  t.deepEqual(back.libos.fds, cp.libos.fds);
  t.deepEqual(back.libos.clock, cp.libos.clock);
  cp.pending = { deadlineNs: null, blockedAtNs: 0n, forced: true };
  t.deepEqual(decodeCheckpoint(encodeCheckpoint(cp)).pending, cp.pending);
});

test('a torn checkpoint is refused with WB_CHECKPOINT_TRUNCATED wherever it is cut', (t) => {
  const seed = testSeed('torn checkpoint');
  const random = seededRandom(seed);
  const [cp] = syntheticChain(1);
  for (const compression of ['none', 'deflate'] as const) {
    const bytes = encodeCheckpoint(cp, { compression });
    const cuts = [0, 1, 2, 3, 5, 8, 12, bytes.length - 1, ...Array.from({ length: 200 }, () => Math.floor(random() * bytes.length))];
    for (const cut of cuts) {
      const err = t.throws(() => decodeCheckpoint(bytes.subarray(0, cut)), undefined, `seed ${seed}: cut at ${cut} of ${bytes.length} (${compression})`);
      t.true(isWaterbearError(err, 'WB_CHECKPOINT_TRUNCATED'), `seed ${seed}: cut at ${cut}/${bytes.length} (${compression}) gave ${(err as { code?: string })?.code}: ${err?.message}`);
    }
  }
});

test('a corrupt checkpoint is refused with WB_CHECKPOINT_CORRUPT wherever a byte flips', (t) => {
  const seed = testSeed('corrupt checkpoint');
  const random = seededRandom(seed);
  const [cp] = syntheticChain(1);
  const bytes = encodeCheckpoint(cp);
  // The envelope header (version and lengths) is covered by the version and truncation checks;
  // every byte of the checksummed body must be caught by the checksum.
  const header = bytes.length - encodeCheckpointBody(cp).length;
  for (let i = 0; i < 200; i++) {
    const at = header + Math.floor(random() * (bytes.length - header));
    const bad = Uint8Array.from(bytes);
    bad[at] ^= 1 + Math.floor(random() * 255);
    const err = t.throws(() => decodeCheckpoint(bad));
    t.true(isWaterbearError(err, 'WB_CHECKPOINT_CORRUPT'), `seed ${seed}: flip at ${at} gave ${(err as { code?: string })?.code}`);
  }
});

test('a page whose checksum does not match is refused even when the envelope checks out', (t) => {
  const [cp] = syntheticChain(1);
  sealPages(cp);
  cp.pages[3].crc32c = (cp.pages[3].crc32c as number) ^ 1;
  const bytes = wrapEnvelope(encodeCheckpointBody(cp), 0, CHECKPOINT_FORMAT_VERSION);
  const err = t.throws(() => decodeCheckpoint(bytes));
  t.is((err as { code?: string }).code, 'WB_CHECKPOINT_CORRUPT');
  t.regex(err!.message, /page 3 checksum/);
});

test('a checkpoint of another format version is refused with WB_CHECKPOINT_VERSION before anything else', (t) => {
  const [cp] = syntheticChain(1);
  const body = encodeCheckpointBody(cp);
  for (const version of [0, CHECKPOINT_FORMAT_VERSION + 1, 1000]) {
    const bytes = wrapEnvelope(body, 0, version);
    const err = t.throws(() => decodeCheckpoint(bytes));
    t.is((err as { code?: string }).code, 'WB_CHECKPOINT_VERSION', `version ${version}`);
    // Even cut short, a future version is reported as such (not as torn).
    t.is((t.throws(() => decodeCheckpoint(bytes.subarray(0, 10))) as { code?: string }).code, 'WB_CHECKPOINT_VERSION');
  }
});

test('a full checkpoint completing a staging area carries its token with only some pages; an incremental one naming a staging area is refused', (t) => {
  const [full, inc] = syntheticChain(2);
  const staged = { ...full, pages: full.pages.slice(3, 5), stagedFrom: 'view2-epoch9' };
  const back = decodeCheckpoint(encodeCheckpoint(staged));
  t.is(back.stagedFrom, 'view2-epoch9');
  t.true(back.full);
  t.deepEqual(back.pages.map((p) => p.index), [3, 4]);
  t.false('stagedFrom' in decodeCheckpoint(encodeCheckpoint(full)), 'absent unless set');
  const err = t.throws(() => decodeCheckpoint(encodeCheckpoint({ ...inc, stagedFrom: 'view2-epoch9' })));
  t.true(isWaterbearError(err, 'WB_CHECKPOINT_CORRUPT'), String(err));
});

test('a checkpoint encoded in slices (large checkpoints, event loop kept turning) decodes exactly like one encoded at once', async (t) => {
  for (const cp of syntheticChain(3)) {
    // More pages than one slice: repeat the synthetic pages at new indices.
    const pages = Array.from({ length: ENCODE_SLICE_PAGES * 2 + 7 }, (_, i) => ({ index: i, data: cp.pages[i % cp.pages.length]?.data ?? new Uint8Array(4096).fill(i & 0xff) }));
    const big = { ...cp, memoryBytes: Math.max(cp.memoryBytes, Math.ceil((pages.length * 4096) / 65536) * 65536), pages };
    let pauses = 0;
    const sliced = await encodeCheckpointSliced(big, async () => { pauses++; });
    t.true(pauses >= 3, `paused ${pauses} times`);
    const a = decodeCheckpoint(sliced);
    const b = decodeCheckpoint(encodeCheckpoint(big));
    t.deepEqual(a.pages.map((p) => [p.index, p.crc32c]), b.pages.map((p) => [p.index, p.crc32c]));
    t.true(a.pages.every((p, i) => Buffer.compare(p.data, b.pages[i].data) === 0));
    t.deepEqual({ ...a, pages: [] }, { ...b, pages: [] });
    // The envelope's checksum covers the sliced body: a flipped byte is refused.
    const bad = Uint8Array.from(sliced);
    bad[bad.length - 100] ^= 1;
    t.throws(() => decodeCheckpoint(bad), { code: 'WB_CHECKPOINT_CORRUPT' } as never);
  }
});
