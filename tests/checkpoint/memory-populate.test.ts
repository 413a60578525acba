import test from 'ava';
import { POPULATE_MIN_BYTES, populateImplementation, populateMemory, populateWhile } from '../../checkpoint/memory-populate.js';

/** The native addon is built by `npm install`; in CI (WB_REQUIRE_TOOLS=1) it must be. */
const native = populateImplementation.native || process.env.WB_REQUIRE_TOOLS === '1';
if (!native) console.log(`skipping the native population checks: ${populateImplementation.reason}`);

const WASM_PAGE = 65536;
const SIZE = 64 * 1024 * 1024;

/** Resident bytes of this process (Linux), read just before and after one step. */
function rssBytes(): number { return process.memoryUsage().rss; }

/**
 * A fresh 64 MiB memory, kept until the file ends: a collected one would return its pages
 * during a later test's measurement and hide that test's growth.
 */
const kept: WebAssembly.Memory[] = [];
function freshMemory(): Uint8Array {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: SIZE / WASM_PAGE + 1 });
  memory.grow(SIZE / WASM_PAGE - 1);
  kept.push(memory);
  return new Uint8Array(memory.buffer);
}

for (const touchOnly of [false, true]) {
  const method = touchOnly ? 'touch' : 'madvise';
  (native ? test.serial : test.serial.skip)(`populating a fresh memory (${method}) makes its pages resident and changes no byte`, (t) => {
    t.true(populateImplementation.native, populateImplementation.reason);
    const bytes = freshMemory();
    // A few written pages (one straddling the unaligned start used below) must keep their bytes.
    for (const at of [0, 4095, 4096 * 7 + 13, SIZE - 1]) bytes[at] = (at & 0x7f) + 1;
    const before = rssBytes();
    const used = populateMemory(bytes.subarray(4095), { touchOnly });
    const grew = rssBytes() - before;
    t.is(used, method);
    t.true(grew > SIZE * 0.75, `resident memory grew by ${grew} bytes for a ${SIZE}-byte memory`);
    for (const at of [0, 4095, 4096 * 7 + 13, SIZE - 1]) t.is(bytes[at], (at & 0x7f) + 1, `byte ${at}`);
    let nonzero = 0;
    for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) nonzero++;
    t.is(nonzero, 4, 'every other byte still reads as zero');
  });
}

(native ? test.serial : test.serial.skip)('populating in the background while the memory is written keeps every write, makes the rest resident, and is joined when the writer throws', (t) => {
  const bytes = freshMemory();
  const page = Uint8Array.from({ length: 4096 }, (_, i) => (i % 253) + 1);
  const before = rssBytes();
  // Every other page written, bottom up, as a restore does, racing the helpers coming down.
  const { result, method } = populateWhile(bytes, () => {
    for (let at = 0; at < SIZE; at += 8192) bytes.set(page, at);
    return 'written';
  });
  const grew = rssBytes() - before;
  t.is(result, 'written');
  t.is(method, 'background');
  t.true(grew > SIZE * 0.75, `resident memory grew by ${grew} bytes for a ${SIZE}-byte memory`);
  for (let at = 0; at < SIZE; at += 4096) {
    const want = (at / 4096) % 2 === 0 ? page : new Uint8Array(4096);
    if (Buffer.compare(bytes.subarray(at, at + 4096), want) !== 0) { t.fail(`page ${at / 4096} differs`); return; }
  }
  for (let i = 0; i < 6; i++) { // more than the addon's job slots: each throw must release its slot
    t.throws(() => populateWhile(bytes, () => { throw new Error('page 3 is corrupt'); }), { message: 'page 3 is corrupt' });
  }
  t.is(populateWhile(bytes, () => 'again').method, 'background', 'job slots were released after the throws');
});

test('small memories are left to the copy: no threads are started for them', (t) => {
  t.is(populateMemory(new Uint8Array(POPULATE_MIN_BYTES - 4096)), null);
});
