import test from 'ava';
import { TRACK_PAGE_BYTES, type DirtyTracker } from '../../../checkpoint/trackers/dirty-tracker.js';
import { InstrumentTracker } from '../../../checkpoint/trackers/instrument-tracker.js';
import { dirtyTrackingFor, parseTrackerChoice, selectTracker } from '../../../checkpoint/trackers/select-tracker.js';
import { ShadowTracker } from '../../../checkpoint/trackers/shadow-tracker.js';
import { UffdTracker, uffdAvailability } from '../../../checkpoint/trackers/uffd-tracker.js';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { prepareImage } from '../../../libos-host/image/prepare.js';
import { guestBytes, TEST_CACHE_DIR } from '../../helpers/lvm.js';

const uffd = uffdAvailability();
const PAGES_PER_WASM_PAGE = 65536 / TRACK_PAGE_BYTES;

/** A raw memory of `wasmPages` 64 KiB pages with a dirty map at its end (as an image's reserved region would hold). */
function rawMemory(wasmPages: number): { memory: WebAssembly.Memory; map: { dirtyMapAddr: number; dirtyMapBytes: number } } {
  const memory = new WebAssembly.Memory({ initial: wasmPages, maximum: 64 });
  const dirtyMapBytes = 64 * PAGES_PER_WASM_PAGE;
  return { memory, map: { dirtyMapAddr: wasmPages * 65536 - dirtyMapBytes - 8, dirtyMapBytes } };
}

/** Write one byte into each page of `pages` (from JS), and mark the map like instrumented stores would. */
function touch(memory: WebAssembly.Memory, pages: number[], map?: { dirtyMapAddr: number }): void {
  const u8 = new Uint8Array(memory.buffer);
  for (const p of pages) {
    u8[p * TRACK_PAGE_BYTES + (p % 4000)] ^= 0x5a;
    if (map !== undefined) u8[map.dirtyMapAddr + p] = 1;
  }
}

const cases: Array<[string, () => boolean, (map: { dirtyMapAddr: number; dirtyMapBytes: number }) => DirtyTracker]> = [
  ['instrument', () => true, (map) => new InstrumentTracker(map)],
  ['shadow', () => true, () => new ShadowTracker()],
  ['uffd', () => uffd.available, () => new UffdTracker()],
];

for (const [name, available, make] of cases) {
  (available() ? test : test.skip)(`${name}: reports exactly the written pages, in order, then nothing; grown pages are reported dirty`, (t) => {
    const { memory, map } = rawMemory(4);
    const tracker = make(map);
    const mark = name === 'instrument' ? map : undefined;
    try {
      touch(memory, [1, 2, 3], mark);
      tracker.arm(memory);
      t.deepEqual([...tracker.collect(memory)], []);
      touch(memory, [40, 0, 17, 18, 63], mark);
      t.deepEqual([...tracker.collect(memory)], [0, 17, 18, 40, 63]);
      t.deepEqual([...tracker.collect(memory)], []);
      memory.grow(2);
      touch(memory, [5, 70], mark);
      const grown = [...tracker.collect(memory)];
      const fresh = Array.from({ length: 2 * PAGES_PER_WASM_PAGE }, (_, i) => 4 * PAGES_PER_WASM_PAGE + i);
      t.deepEqual(grown, [5, ...fresh]);
      // The new pages are tracked from now on.
      touch(memory, [4 * PAGES_PER_WASM_PAGE + 3, 9], mark);
      t.deepEqual([...tracker.collect(memory)], [9, 4 * PAGES_PER_WASM_PAGE + 3]);
      // Re-arming starts from a clean state.
      touch(memory, [11], mark);
      tracker.arm(memory);
      t.deepEqual([...tracker.collect(memory)], []);
    } finally {
      tracker.close();
    }
  });
}

(uffd.available ? test : test.skip)('uffd: pages never touched before arm are caught on their first write', (t) => {
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 512 });
  const tracker = new UffdTracker();
  try {
    tracker.arm(memory);
    const u8 = new Uint8Array(memory.buffer);
    const pages = [0, 1000, 4095, 2048];
    for (const p of pages) u8[p * TRACK_PAGE_BYTES] = 1;
    t.deepEqual([...tracker.collect(memory)], [0, 1000, 2048, 4095]);
    // Reads do not count.
    let sum = 0;
    for (let p = 0; p < 4096; p += 7) sum += u8[p * TRACK_PAGE_BYTES + 1];
    t.is(sum, 0);
    t.deepEqual([...tracker.collect(memory)], []);
  } finally {
    tracker.close();
  }
});

test('selectTracker: auto prefers uffd when available and falls back to instrument with a reason', (t) => {
  const yes = selectTracker('auto', { uffdAvailability: () => ({ available: true, reason: 'probe ok', addonPath: '/x' }) });
  t.is(yes.kind, 'uffd');
  t.is(yes.dirtyTracking, 'none');
  const no = selectTracker('auto', { uffdAvailability: () => ({ available: false, reason: 'addon not built', addonPath: null }) });
  t.is(no.kind, 'instrument');
  t.is(no.dirtyTracking, 'instrument');
  t.regex(no.reason, /addon not built/);
  t.is(selectTracker('shadow').dirtyTracking, 'none');
  t.is(selectTracker('instrument').kind, 'instrument');
  t.is(dirtyTrackingFor('uffd'), 'none');
  t.log(`this machine: ${selectTracker('auto').reason}`);
});

test('selectTracker: an explicit uffd request where it cannot run is refused (WB_TRACKER_UNAVAILABLE)', (t) => {
  const err = t.throws(() => selectTracker('uffd', { uffdAvailability: () => ({ available: false, reason: 'kernel too old', addonPath: null }) }));
  t.true(isWaterbearError(err, 'WB_TRACKER_UNAVAILABLE'));
});

test('parseTrackerChoice accepts the four choices and refuses anything else (WB_CONFIG_INVALID)', (t) => {
  for (const c of ['auto', 'instrument', 'uffd', 'shadow']) t.is(parseTrackerChoice(c) as string, c);
  const err = t.throws(() => parseTrackerChoice('fast'));
  t.true(isWaterbearError(err, 'WB_CONFIG_INVALID'));
});

test('the instrument tracker refuses an image prepared without instrumentation', async (t) => {
  const plain = await prepareImage(guestBytes('test/hello'), { cacheDir: TEST_CACHE_DIR });
  const err = t.throws(() => selectTracker('instrument').create(plain));
  t.true(isWaterbearError(err, 'WB_CONFIG_INVALID'));
  const instrumented = await prepareImage(guestBytes('test/hello'), { cacheDir: TEST_CACHE_DIR, dirtyTracking: 'instrument' });
  t.is(selectTracker('instrument').create(instrumented).kind, 'instrument');
  t.not(plain.imageSha256, instrumented.imageSha256);
});
