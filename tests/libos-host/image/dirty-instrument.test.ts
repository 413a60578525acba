import test from 'ava';
import { loadBinaryen } from '../../../libos-host/image/binaryen-loader.js';
import { DIRTY_MARK_RANGE_EXPORT, hostWriteMarker, instrumentDirtyStores, type DirtyInstrumentStats } from '../../../libos-host/image/dirty-instrument.js';
import { isWaterbearError } from '../../../libos-host/errors.js';

/** 4 initial pages (256 KiB, 64 tracked pages), max 16; the dirty map sits in the last initial 64 KiB page. */
const PAGE = 4096;
const MAP_ADDR = 3 * 65536 + 128;
const MAP_BYTES = 16 * 16;
const TRACKED_PAGES = (4 * 65536) / PAGE;

const WAT = String.raw`
(module
  (memory $mem (export "memory") 4 16)
  (data $seg "0123456789abcdefghijklmnopqrstuvwxyz")
  (func (export "i32_store") (param $a i32) (param $v i32) (i32.store (local.get $a) (local.get $v)))
  (func (export "i32_store_off") (param $a i32) (param $v i32) (i32.store offset=4093 align=1 (local.get $a) (local.get $v)))
  (func (export "i32_store8") (param $a i32) (param $v i32) (i32.store8 (local.get $a) (local.get $v)))
  (func (export "i32_store16") (param $a i32) (param $v i32) (i32.store16 (local.get $a) (local.get $v)))
  (func (export "i64_store") (param $a i32) (param $v i32) (i64.store (local.get $a) (i64.extend_i32_u (local.get $v))))
  (func (export "i64_store8") (param $a i32) (param $v i32) (i64.store8 (local.get $a) (i64.extend_i32_u (local.get $v))))
  (func (export "i64_store16") (param $a i32) (param $v i32) (i64.store16 (local.get $a) (i64.extend_i32_u (local.get $v))))
  (func (export "i64_store32") (param $a i32) (param $v i32) (i64.store32 (local.get $a) (i64.extend_i32_u (local.get $v))))
  (func (export "f32_store") (param $a i32) (param $v i32) (f32.store (local.get $a) (f32.convert_i32_u (local.get $v))))
  (func (export "f64_store") (param $a i32) (param $v i32) (f64.store (local.get $a) (f64.convert_i32_u (local.get $v))))
  (func (export "v128_store") (param $a i32) (param $v i32) (v128.store (local.get $a) (i32x4.splat (local.get $v))))
  (func (export "v128_store64_lane") (param $a i32) (param $v i32) (v128.store64_lane 1 (local.get $a) (i32x4.splat (local.get $v))))
  (func (export "v128_store8_lane") (param $a i32) (param $v i32) (v128.store8_lane 3 (local.get $a) (i32x4.splat (local.get $v))))
  (func (export "atomic_store") (param $a i32) (param $v i32) (i32.atomic.store (local.get $a) (local.get $v)))
  (func (export "atomic_store8") (param $a i32) (param $v i32) (i64.atomic.store8 (local.get $a) (i64.extend_i32_u (local.get $v))))
  (func (export "atomic_rmw_add") (param $a i32) (param $v i32) (drop (i64.atomic.rmw.add (local.get $a) (i64.extend_i32_u (local.get $v)))))
  (func (export "atomic_rmw_xchg8") (param $a i32) (param $v i32) (drop (i32.atomic.rmw8.xchg_u (local.get $a) (local.get $v))))
  (func (export "atomic_cmpxchg") (param $a i32) (param $v i32) (drop (i32.atomic.rmw.cmpxchg (local.get $a) (i32.const 0) (local.get $v))))
  ;; address computed by an expression (needs the scratch local)
  (func (export "computed") (param $a i32) (param $v i32) (i32.store (i32.add (local.get $a) (i32.const 0)) (local.get $v)))
  ;; a store whose address expression and value both contain stores
  (func (export "nested") (param $a i32) (param $v i32)
    (i32.store
      (block (result i32) (i32.store8 (i32.add (local.get $a) (i32.const 8192)) (i32.const 7)) (local.get $a))
      (block (result i32) (i32.store (i32.add (local.get $a) (i32.const 16384)) (local.get $v)) (local.get $v))))
  ;; the value rewrites the local the address came from: the store must still go to the old address
  (func (export "tee_in_value") (param $a i32) (param $v i32)
    (i32.store (local.get $a) (local.tee $a (i32.add (local.get $a) (i32.const 40960)))))
  (func (export "const_store") (param $a i32) (param $v i32) (i32.store (i32.const 12286) (local.get $v)))
  (func (export "fill") (param $a i32) (param $n i32) (memory.fill (local.get $a) (i32.const 171) (local.get $n)))
  (func (export "copy") (param $a i32) (param $n i32) (memory.copy (local.get $a) (i32.const 0) (local.get $n)))
  (func (export "init") (param $a i32) (param $n i32) (memory.init $seg (local.get $a) (i32.const 0) (local.get $n)))
  (func (export "grow") (param $n i32) (result i32) (memory.grow (local.get $n)))
  (func (export "load") (param $a i32) (result i32) (i32.load (local.get $a)))
)`;

interface Instrumented { instance: WebAssembly.Instance; memory: WebAssembly.Memory; stats: DirtyInstrumentStats }

async function build(): Promise<Instrumented> {
  const binaryen = await loadBinaryen();
  const m = binaryen.parseText(WAT);
  try {
    const F = binaryen.Features;
    m.setFeatures(F.MutableGlobals | F.SignExt | F.SIMD128 | F.BulkMemory | F.BulkMemoryOpt | F.Atomics | F.Multivalue);
    const stats = instrumentDirtyStores(binaryen, m, { memoryName: 'mem', mapAddr: MAP_ADDR, mapBytes: MAP_BYTES });
    if (!m.validate()) throw new Error('instrumented module does not validate');
    const module = await WebAssembly.compile(m.emitBinary() as Uint8Array<ArrayBuffer>);
    const instance = new WebAssembly.Instance(module, {});
    return { instance, memory: instance.exports.memory as WebAssembly.Memory, stats };
  } finally {
    m.dispose();
  }
}

let built: Promise<Instrumented> | null = null;
const instrumented = (): Promise<Instrumented> => (built ??= build());

/** Pages marked in the map (and clear it). */
function takeMarks(memory: WebAssembly.Memory): number[] {
  const map = new Uint8Array(memory.buffer, MAP_ADDR, MAP_BYTES);
  const out: number[] = [];
  map.forEach((b, i) => { if (b !== 0) out.push(i); });
  map.fill(0);
  return out;
}

function call(inst: Instrumented, name: string, ...args: number[]): void {
  (inst.instance.exports[name] as (...a: number[]) => unknown)(...args);
}

const span = (addr: number, bytes: number): number[] => {
  const out: number[] = [];
  for (let p = Math.floor(addr / PAGE); p <= Math.floor((addr + bytes - 1) / PAGE); p++) out.push(p);
  return out;
};

test('every store width marks the page it writes, and both pages when it crosses a boundary', async (t) => {
  const inst = await instrumented();
  const widths: Array<[string, number]> = [
    ['i32_store', 4], ['i32_store8', 1], ['i32_store16', 2], ['i64_store', 8], ['i64_store8', 1], ['i64_store16', 2],
    ['i64_store32', 4], ['f32_store', 4], ['f64_store', 8], ['v128_store', 16], ['v128_store64_lane', 8], ['v128_store8_lane', 1],
    ['atomic_rmw_add', 8], ['atomic_rmw_xchg8', 1], ['atomic_cmpxchg', 4], ['atomic_store', 4], ['atomic_store8', 1], ['computed', 4],
  ];
  takeMarks(inst.memory);
  for (const [name, bytes] of widths) {
    const aligned = name.startsWith('atomic');
    // Inside page 5; then ending exactly at a boundary; then straddling one (unaligned kinds only).
    const addrs = [5 * PAGE + 64, 7 * PAGE - bytes, ...(aligned || bytes === 1 ? [] : [9 * PAGE - 1])];
    for (const addr of addrs) {
      call(inst, name, addr, 0x5a);
      t.deepEqual(takeMarks(inst.memory), span(addr, bytes), `${name} at ${addr}`);
    }
  }
  // Offset immediate: effective address = addr + 4093.
  call(inst, 'i32_store_off', 2 * PAGE, 1);
  t.deepEqual(takeMarks(inst.memory), span(2 * PAGE + 4093, 4));
  call(inst, 'const_store', 0, 1);
  t.deepEqual(takeMarks(inst.memory), span(12286, 4));
});

test('stores nested in a store\'s operands are all marked, and the store keeps its address', async (t) => {
  const inst = await instrumented();
  takeMarks(inst.memory);
  call(inst, 'nested', 10 * PAGE + 8, 99);
  t.deepEqual(takeMarks(inst.memory), [10, 12, 14]);
  const dv = new DataView(inst.memory.buffer);
  t.is(dv.getUint32(10 * PAGE + 8, true), 99);
  t.is(dv.getUint32(14 * PAGE + 8, true), 99);
  t.is(dv.getUint8(12 * PAGE + 8), 7);
  call(inst, 'tee_in_value', 20 * PAGE, 0);
  t.deepEqual(takeMarks(inst.memory), [20]);
  t.is(dv.getUint32(20 * PAGE, true), 20 * PAGE + 40960);
});

test('memory.fill, memory.copy and memory.init mark their whole destination, and nothing when empty', async (t) => {
  const inst = await instrumented();
  takeMarks(inst.memory);
  call(inst, 'fill', 3 * PAGE - 1, 2 * PAGE + 2);
  t.deepEqual(takeMarks(inst.memory), span(3 * PAGE - 1, 2 * PAGE + 2));
  t.is(new Uint8Array(inst.memory.buffer)[5 * PAGE], 171);
  call(inst, 'copy', 30 * PAGE + 100, PAGE);
  t.deepEqual(takeMarks(inst.memory), [30, 31]);
  call(inst, 'init', 33 * PAGE - 5, 20);
  t.deepEqual(takeMarks(inst.memory), [32, 33]);
  t.is(new TextDecoder().decode(new Uint8Array(inst.memory.buffer, 33 * PAGE - 5, 20)), '0123456789abcdefghij');
  for (const op of ['fill', 'copy', 'init']) {
    call(inst, op, 40 * PAGE, 0);
    t.deepEqual(takeMarks(inst.memory), [], op);
  }
});

test('an out-of-bounds store or bulk operation still traps', async (t) => {
  const inst = await instrumented();
  const end = inst.memory.buffer.byteLength;
  t.throws(() => call(inst, 'i32_store', end - 2, 1), { instanceOf: WebAssembly.RuntimeError });
  t.throws(() => call(inst, 'fill', end - 10, 11), { instanceOf: WebAssembly.RuntimeError });
  t.throws(() => call(inst, 'copy', end - 10, 11), { instanceOf: WebAssembly.RuntimeError });
  takeMarks(inst.memory);
});

test('seeded random stores mark exactly the pages they write, never the map itself', async (t) => {
  const inst = await instrumented();
  const seed = Math.floor(Math.random() * 2 ** 32);
  let s = seed;
  const rnd = (n: number): number => { s = (Math.imul(s ^ (s >>> 15), 2246822519) + 0x9e3779b9) >>> 0; return s % n; };
  const kinds: Array<[string, number]> = [['i32_store', 4], ['i64_store', 8], ['i32_store16', 2], ['v128_store', 16], ['i32_store8', 1], ['fill', -1], ['copy', -1]];
  const mapFirst = Math.floor(MAP_ADDR / PAGE);
  takeMarks(inst.memory);
  for (let round = 0; round < 200; round++) {
    const expected = new Set<number>();
    const ops = 1 + rnd(20);
    for (let i = 0; i < ops; i++) {
      const [name, bytes] = kinds[rnd(kinds.length)];
      if (bytes < 0) {
        const len = rnd(3 * PAGE);
        const addr = rnd(mapFirst * PAGE - len);
        call(inst, name, addr, len);
        if (len > 0) span(addr, len).forEach((p) => expected.add(p));
      } else {
        const addr = rnd(mapFirst * PAGE - bytes);
        call(inst, name, addr, rnd(256));
        span(addr, bytes).forEach((p) => expected.add(p));
      }
    }
    const got = takeMarks(inst.memory);
    const want = [...expected].sort((a, b) => a - b);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      t.fail(`seed ${seed}, round ${round}: marked ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
      return;
    }
  }
  t.pass();
});

test('the pass counts what it instrumented and exports the range marker', async (t) => {
  const inst = await instrumented();
  t.is(inst.stats.stores, 21);
  t.is(inst.stats.atomicRmw, 3);
  t.is(inst.stats.bulk, 3);
  const markRange = inst.instance.exports[DIRTY_MARK_RANGE_EXPORT] as (a: number, n: number) => void;
  takeMarks(inst.memory);
  markRange(PAGE * 6 - 1, 2);
  t.deepEqual(takeMarks(inst.memory), [5, 6]);
  markRange(PAGE * 6, 0);
  t.deepEqual(takeMarks(inst.memory), []);
});

test('host writes are marked by hostWriteMarker, also after memory.grow', async (t) => {
  const inst = await instrumented();
  const mark = hostWriteMarker(inst.memory, { dirtyMapAddr: MAP_ADDR, dirtyMapBytes: MAP_BYTES });
  takeMarks(inst.memory);
  mark(PAGE * 2 + 10, PAGE);
  t.deepEqual(takeMarks(inst.memory), [2, 3]);
  call(inst, 'grow', 1);
  mark(TRACKED_PAGES * PAGE + 5, 1);
  t.deepEqual(takeMarks(inst.memory), [TRACKED_PAGES]);
  call(inst, 'i32_store', TRACKED_PAGES * PAGE + PAGE, 1);
  t.deepEqual(takeMarks(inst.memory), [TRACKED_PAGES + 1]);
});

test('a module exporting the reserved marker name is refused', async (t) => {
  const binaryen = await loadBinaryen();
  const m = binaryen.parseText(`(module (memory $mem 1) (func (export "${DIRTY_MARK_RANGE_EXPORT}")))`);
  try {
    const err = t.throws(() => instrumentDirtyStores(binaryen, m, { memoryName: 'mem', mapAddr: 0, mapBytes: 16 }));
    t.true(isWaterbearError(err, 'WB_IMAGE_PREPARATION'));
  } finally {
    m.dispose();
  }
});
