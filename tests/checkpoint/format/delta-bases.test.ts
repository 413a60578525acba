import test from 'ava';
import { CHECKPOINT_PAGE_BYTES, type CheckpointData } from '../../../checkpoint/checkpoint-data.js';
import { copyPages } from '../../../checkpoint/checkpointer.js';
import { decodeCheckpoint, encodeCheckpoint } from '../../../checkpoint/format/checkpoint-codec.js';
import { DELTA_MAX_CHECKPOINT_PAGES, DELTA_WINDOW_EPOCHS, DeltaBases } from '../../../checkpoint/format/delta-bases.js';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { seededRandom, testSeed } from '../helpers/checkpointing.js';
import { SYNTH_MEMORY_BYTES, SyntheticVfs, syntheticCheckpoint } from '../helpers/synthetic.js';

const PAGES = SYNTH_MEMORY_BYTES / CHECKPOINT_PAGE_BYTES;

/** A primary's memory and its captures: checkpoint `epoch` holds `dirty` pages copied as the checkpointer does. */
class Guest {
  readonly memory = new Uint8Array(SYNTH_MEMORY_BYTES);
  private readonly vfs = new SyntheticVfs();
  capture(epoch: number, dirty: number[], full = false): CheckpointData {
    const cp = syntheticCheckpoint(epoch, full ? this.vfs.stepFull(epoch) : this.vfs.step(epoch));
    const indices = full ? Array.from({ length: PAGES }, (_, i) => i) : [...new Set(dirty)].sort((a, b) => a - b);
    return { ...cp, full, pages: copyPages(this.memory, indices).pages };
  }
}

function codeOf(fn: () => unknown): string | undefined {
  try { fn(); } catch (err) { return isWaterbearError(err) ? err.code : String(err); }
  return undefined;
}

test('a backup rebuilds every page from the deltas a primary sends, and the stream shrinks (seeded)', (t) => {
  const seed = testSeed('delta-bases chain');
  const random = seededRandom(seed);
  const guest = new Guest();
  for (let i = 0; i < guest.memory.length; i++) guest.memory[i] = Math.floor(random() * 256);
  const primary = new DeltaBases();
  const backup = new DeltaBases();
  const backupMemory = new Uint8Array(SYNTH_MEMORY_BYTES);
  let sent = 0;
  let whole = 0;
  for (let epoch = 1; epoch <= 120; epoch++) {
    const dirty: number[] = [];
    if (epoch > 1) {
      // A few hot pages with small edits, sometimes a cold page or a page rewritten whole.
      for (let k = 0; k < 6; k++) {
        const page = random() < 0.8 ? Math.floor(random() * 6) : Math.floor(random() * PAGES);
        const whole = random() < 0.05;
        const at = page * CHECKPOINT_PAGE_BYTES + (whole ? 0 : Math.floor(random() * (CHECKPOINT_PAGE_BYTES - 40)));
        const len = whole ? CHECKPOINT_PAGE_BYTES : 1 + Math.floor(random() * 40);
        for (let i = at; i < at + len; i++) guest.memory[i] = Math.floor(random() * 256);
        dirty.push(page);
      }
    }
    const cp = guest.capture(epoch, dirty, epoch === 1);
    primary.annotate(cp);
    const bytes = encodeCheckpoint(cp, { deltasAfter: 1 });
    sent += bytes.length;
    whole += encodeCheckpoint(cp).length;
    const got = decodeCheckpoint(bytes, { deltaBase: (i, e) => backup.base(i, e) });
    backup.record(got);
    for (const p of got.pages) backupMemory.set(p.data, p.index * CHECKPOINT_PAGE_BYTES);
    t.is(Buffer.compare(backupMemory, guest.memory), 0, `seed ${seed}: the backup's memory differs after epoch ${epoch}`);
  }
  // Epoch 1 (the full image) is the same either way; the rest should be a small fraction.
  t.true(sent < whole * 0.6, `seed ${seed}: ${sent} bytes sent with deltas, ${whole} without`);
  t.true(primary.size <= DELTA_WINDOW_EPOCHS * 6);
});

test('deltas reach only decoders that hold their bases: none without, none past the floor, none from the wrong version', (t) => {
  const guest = new Guest();
  const primary = new DeltaBases();
  const backup = new DeltaBases();
  const step = (epoch: number, edit: number): CheckpointData => {
    guest.memory[edit * CHECKPOINT_PAGE_BYTES + epoch] = epoch;
    const cp = guest.capture(epoch, [edit], epoch === 1);
    primary.annotate(cp);
    return cp;
  };
  backup.record(decodeCheckpoint(encodeCheckpoint(step(1, 0))));
  const cp2 = step(2, 3);
  backup.record(decodeCheckpoint(encodeCheckpoint(cp2, { deltasAfter: 1 }), { deltaBase: (i, e) => backup.base(i, e) }));
  const cp3 = step(3, 3);
  t.deepEqual(cp3.pages[0].delta?.baseEpoch, 2);
  const withDelta = encodeCheckpoint(cp3, { deltasAfter: 1 });
  t.true(withDelta.length < encodeCheckpoint(cp3).length - CHECKPOINT_PAGE_BYTES / 2);
  // A store (no bases) refuses it; a floor at or after the base sends the page whole.
  t.is(codeOf(() => decodeCheckpoint(withDelta)), 'WB_CHECKPOINT_CORRUPT');
  t.is(decodeCheckpoint(encodeCheckpoint(cp3, { deltasAfter: 2 })).pages[0].data.length, CHECKPOINT_PAGE_BYTES);
  // A backup that does not hold epoch 2's version, or holds a different one, refuses it.
  t.is(codeOf(() => decodeCheckpoint(withDelta, { deltaBase: () => undefined })), 'WB_CHECKPOINT_CORRUPT');
  const held = backup.base(3, 2);
  t.truthy(held);
  const wrong = Buffer.from(held!);
  wrong[4000] ^= 1;
  t.is(codeOf(() => decodeCheckpoint(withDelta, { deltaBase: () => wrong })), 'WB_CHECKPOINT_CORRUPT', 'the whole-page checksum catches a wrong base');
  const right = decodeCheckpoint(withDelta, { deltaBase: (i, e) => backup.base(i, e) });
  t.is(Buffer.compare(right.pages[0].data, guest.memory.subarray(3 * CHECKPOINT_PAGE_BYTES, 4 * CHECKPOINT_PAGE_BYTES)), 0);
  backup.record(right);
  // A page reported dirty but unchanged is an empty delta, which proto3 leaves out of the message.
  const unchanged = guest.capture(4, [3]);
  primary.annotate(unchanged);
  t.is(unchanged.pages[0].delta?.bytes.length, 0);
  const back = decodeCheckpoint(encodeCheckpoint(unchanged, { deltasAfter: 1 }), { deltaBase: (i, e) => backup.base(i, e) });
  t.is(Buffer.compare(back.pages[0].data, unchanged.pages[0].data), 0);
});

test('versions serve for the window only; large checkpoints leave no bases; a full one starts over', (t) => {
  const guest = new Guest();
  const bases = new DeltaBases();
  bases.annotate(guest.capture(1, [], true));
  bases.annotate(guest.capture(2, [5]));
  t.truthy(bases.base(5, 2));
  for (let e = 3; e < 2 + DELTA_WINDOW_EPOCHS; e++) bases.annotate(guest.capture(e, [7]));
  t.truthy(bases.base(5, 2), 'still inside the window');
  const inWindow = guest.capture(2 + DELTA_WINDOW_EPOCHS, [5]);
  t.is(bases.annotate(inWindow), 1);
  t.is(inWindow.pages[0].delta?.baseEpoch, 2);
  bases.annotate(guest.capture(3 + DELTA_WINDOW_EPOCHS, [6]));
  for (let e = 4 + DELTA_WINDOW_EPOCHS; e < 4 + 2 * DELTA_WINDOW_EPOCHS + 1; e++) bases.annotate(guest.capture(e, [7]));
  const late = guest.capture(4 + 2 * DELTA_WINDOW_EPOCHS + 1, [6]);
  t.is(bases.annotate(late), 0, 'page 6 was last captured more than the window ago');
  t.is(bases.base(6, 3 + DELTA_WINDOW_EPOCHS), undefined);
  let epoch = late.epoch + 1;
  bases.annotate(guest.capture(epoch++, [1, 2]));
  // The synthetic memory has fewer pages than the limit: a large checkpoint is built by hand.
  const many = { ...guest.capture(epoch++, []), pages: Array.from({ length: DELTA_MAX_CHECKPOINT_PAGES + 1 }, (_, i) => ({ index: i, data: new Uint8Array(CHECKPOINT_PAGE_BYTES) })) };
  t.is(bases.annotate(many), 0, 'a large checkpoint carries no deltas');
  t.is(bases.base(1, epoch - 2), undefined, 'and its pages have no base afterwards');
  bases.annotate(guest.capture(epoch++, [9]));
  t.true(bases.size > 0);
  bases.annotate(guest.capture(epoch++, [], true));
  t.is(bases.size, 0, 'a full checkpoint starts over');
});
