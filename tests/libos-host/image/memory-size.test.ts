import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { prepareImage } from '../../../libos-host/image/prepare.js';
import { WASM_PAGE_BYTES } from '../../../libos-host/image/wasm-binary.js';
import { stubImports, wat } from './helpers.js';

/** A guest that reports memory.size from many positions in the expression tree, and grows. */
const SIZE_GUEST = `(module
  (memory (export "memory") 3)
  (func (export "_start"))
  ;; memory.size as a whole function body
  (func (export "size") (result i32) (memory.size))
  ;; memory.size nested in blocks, ifs, selects, calls, br_if values, locals and loops
  (func $id (param i32) (result i32) (local.get 0))
  (func (export "size_nested") (result i32) (local $x i32)
    (local.set $x (block (result i32) (memory.size)))
    (local.set $x (i32.add (local.get $x) (if (result i32) (i32.const 1) (then (memory.size)) (else (i32.const 0)))))
    (local.set $x (i32.add (local.get $x) (select (memory.size) (i32.const 0) (i32.const 1))))
    (local.set $x (i32.add (local.get $x) (call $id (memory.size))))
    (local.set $x (i32.add (local.get $x) (block $b (result i32) (br_if $b (memory.size) (i32.const 1)))))
    (local.set $x (i32.add (local.get $x) (loop (result i32) (memory.size))))
    (local.get $x))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  ;; memory.size inside memory.grow's operand: evaluated before the grow, so it sees the old size
  (func (export "grow_by_size_minus_size") (result i32) (memory.grow (i32.sub (memory.size) (memory.size))))
)`;

interface SizeExports {
  size(): number; size_nested(): number; grow(pages: number): number; grow_by_size_minus_size(): number;
  memory: WebAssembly.Memory;
}

test('memory.size reports the old initial size until the first memory.grow, then the real size', async (t) => {
  const image = await prepareImage(await wat(SIZE_GUEST), { cacheDir: null });
  const { originalInitialPages: initial, reservedPages: reserved } = image.layout;
  t.is(initial, 3);
  t.is(image.stats.memorySizeRewritten, 9);
  t.is(image.stats.memoryGrowRewritten, 2);
  const e = new WebAssembly.Instance(image.module, stubImports(image.module)).exports as unknown as SizeExports;
  t.is(e.memory.buffer.byteLength, (initial + reserved) * WASM_PAGE_BYTES, 'the engine sees the region');
  t.is(e.size(), initial, 'the guest does not');
  t.is(e.size_nested(), 6 * initial);
  t.is(e.grow(2), initial + reserved, 'the first grow returns the page after the region');
  t.is(e.size(), initial + reserved + 2);
  t.is(e.size_nested(), 6 * (initial + reserved + 2));
  t.is(e.grow(1), initial + reserved + 2);
  t.is(e.size(), initial + reserved + 3);
});

test('a grow of 0 pages also ends the pretence; its operand still sees the old size', async (t) => {
  const image = await prepareImage(await wat(SIZE_GUEST), { cacheDir: null });
  const { originalInitialPages: initial, reservedPages: reserved } = image.layout;
  const e = new WebAssembly.Instance(image.module, stubImports(image.module)).exports as unknown as SizeExports;
  t.is(e.grow_by_size_minus_size(), initial + reserved);
  t.is(e.size(), initial + reserved);
});

test('a failed memory.grow leaves memory.size reporting the old size', async (t) => {
  const image = await prepareImage(await wat(SIZE_GUEST), { cacheDir: null, memoryLimitBytes: 4 * WASM_PAGE_BYTES });
  const e = new WebAssembly.Instance(image.module, stubImports(image.module)).exports as unknown as SizeExports;
  t.is(e.grow(2), -1, 'beyond the limit');
  t.is(e.size(), 3);
  t.is(e.grow(1), 3 + image.layout.reservedPages);
  t.is(e.size(), 4 + image.layout.reservedPages);
});

test('without the rewrite (test-only option) memory.size reveals the region', async (t) => {
  const image = await prepareImage(await wat(SIZE_GUEST), { cacheDir: null, unsafeSkipMemorySizeRewrite: true });
  t.is(image.stats.memorySizeRewritten, 0);
  const e = new WebAssembly.Instance(image.module, stubImports(image.module)).exports as unknown as SizeExports;
  t.is(e.size(), 3 + image.layout.reservedPages);
});

test('memory limit: memory.grow beyond the cap returns -1 to the guest', async (t) => {
  const guest = await wat(`(module
    (memory (export "memory") 1)
    (func (export "_start"))
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`);
  const limitPages = 10;
  const image = await prepareImage(guest, { cacheDir: null, memoryLimitBytes: limitPages * WASM_PAGE_BYTES + 1234 });
  t.is(image.layout.guestMaxPages, limitPages, 'rounded down to pages');
  const e = new WebAssembly.Instance(image.module, stubImports(image.module)).exports as unknown as SizeExports;
  t.is(e.grow(limitPages), -1, 'one page too many');
  t.is(e.grow(limitPages - 1), 1 + image.layout.reservedPages, 'up to the limit is fine');
  t.is(e.grow(1), -1);
  t.is(e.memory.buffer.byteLength, (limitPages + image.layout.reservedPages) * WASM_PAGE_BYTES);
});

test('memory limit: a declared maximum below the limit is kept', async (t) => {
  const guest = await wat(`(module (memory (export "memory") 1 5) (func (export "_start"))
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`);
  const image = await prepareImage(guest, { cacheDir: null });
  t.is(image.layout.guestMaxPages, 5);
  const e = new WebAssembly.Instance(image.module, stubImports(image.module)).exports as unknown as SizeExports;
  t.is(e.grow(5), -1);
  t.is(e.grow(4), 1 + image.layout.reservedPages);
});

test('memory limit: a guest whose initial memory exceeds the limit is refused with WB_GUEST_MEMORY_LIMIT', async (t) => {
  const guest = await wat('(module (memory (export "memory") 20) (func (export "_start")))');
  const err = await prepareImage(guest, { cacheDir: null, memoryLimitBytes: 16 * WASM_PAGE_BYTES }).catch((e: unknown) => e);
  t.true(isWaterbearError(err, 'WB_GUEST_MEMORY_LIMIT'), String(err));
  await t.notThrowsAsync(prepareImage(guest, { cacheDir: null, memoryLimitBytes: 20 * WASM_PAGE_BYTES }));
});

test('the largest limit (4 GiB) leaves room for the region below 4 GiB', async (t) => {
  const guest = await wat('(module (memory (export "memory") 2) (func (export "_start")))');
  const image = await prepareImage(guest, { cacheDir: null, memoryLimitBytes: 4 * 1024 ** 3 });
  t.is(image.layout.guestMaxPages + image.layout.reservedPages, 65_536);
});
