import test from 'ava';
import { CHECKPOINT_PAGE_BYTES } from '../../../checkpoint/checkpoint-data.js';
import { crc32c } from '../../../checkpoint/format/crc32c.js';
import { seededRandom as rng } from '../../checkpoint/helpers/checkpointing.js';
import { PRECOPY_FINAL_MAX_PAGES, PRECOPY_MAX_ROUNDS, PRECOPY_SLICE_PAGES, Precopy } from '../../../replica/primary/precopy.js';

/**
 * Pre-copy against a simulated guest: between slices the guest writes random pages (some back
 * to zero); every few slices a "checkpoint" reports the pages written since the last one, as
 * the dirty tracker would. The backup's view (staged pages, then the final delta) must equal
 * memory at the final checkpoint, byte for byte.
 */
function simulate(seed: number, pages: number, writesPerSlice: number): { rounds: number; sent: number; finalPages: number } {
  const rand = rng(seed);
  const memory = new Uint8Array(pages * CHECKPOINT_PAGE_BYTES);
  for (let i = 0; i < pages; i++) if (rand() < 0.7) memory[i * CHECKPOINT_PAGE_BYTES + Math.floor(rand() * CHECKPOINT_PAGE_BYTES)] = 1 + Math.floor(rand() * 255);
  const p = new Precopy('t', pages);
  const staged = new Map<number, Uint8Array>();
  let sinceCapture = new Set<number>();
  const write = (): void => {
    const page = Math.floor(rand() * pages);
    const at = page * CHECKPOINT_PAGE_BYTES;
    if (rand() < 0.1) memory.fill(0, at, at + CHECKPOINT_PAGE_BYTES);
    else memory[at + Math.floor(rand() * CHECKPOINT_PAGE_BYTES)] = Math.floor(rand() * 256);
    sinceCapture.add(page);
  };
  const capture = (): void => { p.noteDirty(sinceCapture); sinceCapture = new Set(); };
  for (let steps = 0; !p.ready; steps++) {
    if (steps > 100_000) throw new Error(`seed ${seed}: pre-copy did not finish`);
    const slice = p.nextSlice(memory);
    if (slice !== null) {
      if (slice.indices.length > PRECOPY_SLICE_PAGES) throw new Error(`seed ${seed}: slice of ${slice.indices.length} pages`);
      slice.indices.forEach((index, k) => {
        const data = slice.data.slice(k * CHECKPOINT_PAGE_BYTES, (k + 1) * CHECKPOINT_PAGE_BYTES);
        if (crc32c(data) !== slice.crc32c[k]) throw new Error(`seed ${seed}: checksum of page ${index}`);
        staged.set(index, data);
      });
    }
    for (let w = 0; w < writesPerSlice; w++) write();
    if (rand() < 0.3) capture();
  }
  // The final checkpoint: captures what was written since the last capture, and carries the rest.
  p.noteDirty(sinceCapture);
  const final = p.finalPages();
  for (const index of final) staged.set(index, memory.slice(index * CHECKPOINT_PAGE_BYTES, (index + 1) * CHECKPOINT_PAGE_BYTES));
  const image = new Uint8Array(memory.length);
  for (const [index, data] of staged) image.set(data, index * CHECKPOINT_PAGE_BYTES);
  for (let i = 0; i < pages; i++) {
    const a = memory.subarray(i * CHECKPOINT_PAGE_BYTES, (i + 1) * CHECKPOINT_PAGE_BYTES);
    const b = image.subarray(i * CHECKPOINT_PAGE_BYTES, (i + 1) * CHECKPOINT_PAGE_BYTES);
    if (Buffer.compare(a, b) !== 0) throw new Error(`seed ${seed}: page ${i} differs after pre-copy (${p.rounds} rounds)`);
  }
  return { rounds: p.rounds, sent: p.pagesSent, finalPages: final.length };
}

test('staged pages plus the final delta equal memory at the final checkpoint, whatever the guest writes meanwhile (seeded)', (t) => {
  const base = Number(process.env.WB_SEED ?? 1);
  for (let seed = base; seed < base + 60; seed++) {
    try {
      simulate(seed, 1024 + (seed % 7) * 300, seed % 3 === 0 ? 0 : 1 + (seed % 40));
    } catch (err) {
      t.fail(`${(err as Error).message} (reproduce: WB_SEED=${seed})`);
      return;
    }
  }
  t.pass();
});

test('an idle guest is copied in one round and a final with nothing left over', (t) => {
  const r = simulate(7, 2048, 0);
  t.is(r.rounds, 1);
  t.is(r.finalPages, 0);
  t.true(r.sent <= 2048);
});

test('a guest that dirties more than the final bound per round gets more rounds, but never more than the limit', (t) => {
  const r = simulate(11, 8192, 400);
  t.true(r.rounds > 1, `${r.rounds} rounds`);
  t.true(r.rounds <= PRECOPY_MAX_ROUNDS);
  t.true(r.finalPages > 0);
  t.true(PRECOPY_FINAL_MAX_PAGES > 0);
});

test('zero pages are skipped in the first round only', (t) => {
  const pages = 600;
  const memory = new Uint8Array(pages * CHECKPOINT_PAGE_BYTES);
  memory[5 * CHECKPOINT_PAGE_BYTES] = 1;
  memory[599 * CHECKPOINT_PAGE_BYTES + 17] = 2;
  const p = new Precopy('t', pages);
  const first = p.nextSlice(memory);
  t.deepEqual(first?.indices, [5, 599]);
  // Page 5 is zeroed and page 9 written after they were read; a capture reports both.
  memory[5 * CHECKPOINT_PAGE_BYTES] = 0;
  memory[9 * CHECKPOINT_PAGE_BYTES] = 3;
  p.noteDirty([5, 9]);
  t.is(p.nextSlice(memory), null, 'two dirty pages are below the final bound: no second round');
  t.true(p.ready);
  t.deepEqual(p.finalPages(), [5, 9], 'the zeroed page is sent again, as zeros');
});
