import test from 'ava';
import { CHECKPOINT_PAGE_BYTES } from '../../../checkpoint/checkpoint-data.js';
import { crc32cImplementation, nativeChangedRuns } from '../../../checkpoint/format/crc32c.js';
import {
  DELTA_MAX_BYTES, DELTA_MERGE_GAP_BYTES, DELTA_RUN_HEADER_BYTES, applyPageDelta, changedRunsJs, diffPage, pageDeltaImplementation,
} from '../../../checkpoint/format/page-delta.js';
import { seededRandom, testSeed } from '../helpers/checkpointing.js';

function randomPage(random: () => number): Uint8Array {
  const p = new Uint8Array(CHECKPOINT_PAGE_BYTES);
  for (let i = 0; i < p.length; i++) p[i] = Math.floor(random() * 256);
  return p;
}

test('a delta turns its base into the new page exactly, for random edits, aligned or not (seeded)', (t) => {
  const seed = testSeed('page-delta round trip');
  const random = seededRandom(seed);
  let deltas = 0;
  for (let round = 0; round < 300; round++) {
    const base = randomPage(random);
    const next = base.slice();
    const edits = Math.floor(random() * 12);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(random() * CHECKPOINT_PAGE_BYTES);
      const len = 1 + Math.floor(random() * (random() < 0.2 ? 900 : 24));
      for (let i = at; i < Math.min(CHECKPOINT_PAGE_BYTES, at + len); i++) next[i] = (next[i] + 1 + Math.floor(random() * 255)) & 0xff;
    }
    // Unaligned views take the byte-wise path; both must agree with the page.
    const shifted = new Uint8Array(CHECKPOINT_PAGE_BYTES + 1);
    shifted.set(next, 1);
    for (const view of [next, shifted.subarray(1)]) {
      const delta = diffPage(base, view);
      if (delta === null) {
        let changed = 0;
        for (let i = 0; i < base.length; i++) if (base[i] !== next[i]) changed++;
        t.true(changed > DELTA_MAX_BYTES / 2, `seed ${seed} round ${round}: only ${changed} bytes changed, yet no delta`);
        continue;
      }
      deltas++;
      t.true(delta.length <= DELTA_MAX_BYTES);
      t.is(Buffer.compare(applyPageDelta(base, delta), next), 0, `seed ${seed} round ${round}`);
    }
  }
  t.true(deltas > 100, `seed ${seed}: ${deltas} deltas`);
});

test('an unchanged page is an empty delta; a one-byte change costs a run header and a word', (t) => {
  const base = new Uint8Array(CHECKPOINT_PAGE_BYTES).fill(7);
  t.is(diffPage(base, base.slice())!.length, 0);
  const next = base.slice();
  next[1001] = 9;
  const delta = diffPage(base, next)!;
  t.is(delta.length, DELTA_RUN_HEADER_BYTES + 4);
  t.is(Buffer.compare(applyPageDelta(base, delta), next), 0);
  const rewritten = new Uint8Array(CHECKPOINT_PAGE_BYTES).fill(8);
  t.is(diffPage(base, rewritten), null, 'a rewritten page goes whole');
});

test('a malformed delta is refused, naming what is wrong', (t) => {
  const base = new Uint8Array(CHECKPOINT_PAGE_BYTES);
  const run = (start: number, length: number, data = length): Buffer => {
    const b = Buffer.alloc(DELTA_RUN_HEADER_BYTES + data);
    b.writeUInt16LE(start, 0);
    b.writeUInt16LE(length, 2);
    return b;
  };
  t.throws(() => applyPageDelta(base, run(0, 4).subarray(0, 3)), { instanceOf: RangeError, message: /inside a run header/ });
  t.throws(() => applyPageDelta(base, run(100, 8, 4)), { instanceOf: RangeError, message: /ends inside the run/ });
  t.throws(() => applyPageDelta(base, run(4090, 8)), { instanceOf: RangeError, message: /past the page/ });
  t.throws(() => applyPageDelta(base, run(10, 0)), { instanceOf: RangeError, message: /empty/ });
  t.throws(() => applyPageDelta(base, Buffer.concat([run(100, 8), run(104, 8)])), { instanceOf: RangeError, message: /out of order/ });
  t.throws(() => applyPageDelta(base.subarray(1), run(0, 4)), { instanceOf: RangeError, message: /base page/ });
  t.is(applyPageDelta(base, Buffer.concat([run(100, 8), run(108, 8)])).length, CHECKPOINT_PAGE_BYTES, 'touching runs are fine');
});

/** The native addon is built by `npm install`; in CI (WB_REQUIRE_TOOLS=1) it must be. */
const native = crc32cImplementation.native || process.env.WB_REQUIRE_TOOLS === '1';

(native ? test : test.skip)('the native page comparison finds exactly the runs the TypeScript one does, and diffPage uses it (seeded)', (t) => {
  t.not(nativeChangedRuns, null, `the addon (${crc32cImplementation.reason}) has no changedRuns: rebuild it (npm run build:native)`);
  t.is(pageDeltaImplementation, process.env.WATERBEAR_PAGE_DELTA === 'js' ? 'js' : 'native');
  const seed = testSeed('native changedRuns');
  const random = seededRandom(seed);
  const [js, c] = [new Uint16Array(2048), new Uint16Array(2048)];
  for (let round = 0; round < 400; round++) {
    const base = randomPage(random);
    const next = base.slice();
    for (let e = Math.floor(random() * 30); e > 0; e--) {
      const at = Math.floor(random() * CHECKPOINT_PAGE_BYTES);
      next[at] ^= 1 + Math.floor(random() * 255);
    }
    const max = random() < 0.3 ? 64 : DELTA_MAX_BYTES;
    const nJs = changedRunsJs(base, next, js, DELTA_MERGE_GAP_BYTES, max);
    const nC = nativeChangedRuns!(base, next, c, DELTA_MERGE_GAP_BYTES, max);
    t.is(nC, nJs, `seed ${seed} round ${round}: run counts`);
    if (nJs > 0) t.deepEqual([...c.subarray(0, 2 * nC)], [...js.subarray(0, 2 * nJs)], `seed ${seed} round ${round}: runs`);
    // Unaligned pages: the C side still compares words (via memcpy); its delta must still rebuild the page.
    const shifted = new Uint8Array(CHECKPOINT_PAGE_BYTES + 1);
    shifted.set(next, 1);
    const delta = diffPage(base, shifted.subarray(1));
    if (delta !== null) t.is(Buffer.compare(applyPageDelta(base, delta), next), 0, `seed ${seed} round ${round}: unaligned`);
  }
});
