/**
 * Store instrumentation for dirty-page tracking: a binaryen pass that makes every write to the
 * guest's linear memory also mark a byte map, one byte per 4 KiB page, in waterbear's reserved
 * region (`layout.dirtyMapAddr`). The instrument tracker (checkpoint/trackers/instrument-tracker.ts)
 * reads and clears the map at each checkpoint. See docs/dirty-tracking.md.
 *
 * What is instrumented, in every function defined by the module:
 * - every store: i32/i64/f32/f64/v128 stores of every width (store8/16/32), atomic stores, and
 *   SIMD lane stores. A store of `size` bytes at effective address `e = ptr + offset` marks
 *   `map[e >> 12]` and `map[(e + size - 1) >> 12]` (the second only when size > 1: a store may
 *   cross a page boundary). The marks are written BEFORE the store, as plain `i32.store8`s whose
 *   offset immediate is the map address. A store with a constant address marks its page(s)
 *   with constant addresses.
 * - atomic read-modify-write and compare-exchange: the same marks (they may write).
 * - bulk memory: `memory.fill`, `memory.copy` and `memory.init` become calls to small helper
 *   functions that do the operation and then mark every page of the destination range with one
 *   `memory.fill` of the map (only after the operation succeeded: an out-of-bounds operation
 *   traps before marking anything).
 *
 * What is not instrumented: the marks themselves and the helpers (they are added after the walk).
 * The pass runs AFTER Asyncify, so Asyncify's own stores (the unwound call stack and the data
 * header in the reserved region) ARE instrumented: they are execution state that a checkpoint
 * must capture, and marking them is what puts the Asyncify stack into every checkpoint taken
 * while the guest is unwound.
 *
 * The map's own bytes are never marked. They are all zero whenever a checkpoint is taken (the
 * tracker clears the map when it collects), so a checkpoint never needs them.
 *
 * A store whose address is out of bounds still marks before it traps; its mark may land anywhere
 * in memory (it is `map + page`, with page up to 2^20). The guest is dead then (the trap ends the
 * LVM), so nothing reads that memory afterwards.
 *
 * Writes by the host (the library OS writing results into guest memory) do not go through wasm
 * stores: the runtime marks them (see `hostWriteMarker`), when the image exports
 * `DIRTY_MARK_RANGE_EXPORT`.
 *
 * binaryen.js has no generic expression walker: `rewriteFunctionBodies` walks every function
 * body with the per-expression accessors and refuses (WB_IMAGE_PREPARATION) an expression kind
 * it does not know, rather than risk missing a store.
 */
import { WaterbearError } from '../errors.js';
import {
  addLocal, childEnumerators, definedFunctions, freshName, rewriteFunctionBody,
  type Binaryen, type BModule, type ExprRef, type FuncRef, type Slot, type Visit,
} from './expression-walker.js';

export type { Slot, Visit };

/** log2 of the tracked page size (4 KiB). Must match DIRTY_PAGE_BYTES in layout.ts. */
export const DIRTY_PAGE_SHIFT = 12;

/**
 * Name under which an instrumented image exports its range-marking helper
 * `(func (param $addr i32) (param $len i32))`. Its presence tells the runtime the image keeps a
 * dirty map (and that host writes must be marked too).
 */
export const DIRTY_MARK_RANGE_EXPORT = 'wb_dirty_mark_range';

/** Internal (binaryen) names of the helpers the pass adds. */
const MARK_RANGE_HELPER = 'wb_dirty_mark_range';
const FILL_HELPER = 'wb_dirty_memory_fill';
const COPY_HELPER = 'wb_dirty_memory_copy';
const INIT_HELPER_PREFIX = 'wb_dirty_memory_init';

export interface DirtyInstrumentParams {
  /** binaryen's internal name of the (single) memory. */
  memoryName: string;
  /** Address of the dirty map in linear memory. */
  mapAddr: number;
  /** Bytes in the map: one per 4 KiB page of the maximum memory. */
  mapBytes: number;
}

/** What the pass did. */
export interface DirtyInstrumentStats {
  /** Plain and atomic stores (including SIMD lane stores) now marking the map. */
  stores: number;
  /** Atomic read-modify-write and compare-exchange operations now marking the map. */
  atomicRmw: number;
  /** memory.fill / memory.copy / memory.init now going through a marking helper. */
  bulk: number;
  /** Functions whose body was walked. */
  functions: number;
}

// ---------------------------------------------------------------- the pass

/** Bytes written by a SIMD lane store, by op. */
function laneStoreBytes(binaryen: Binaryen, op: number): number | null {
  const b = binaryen as unknown as Record<string, number>;
  if (op === b.Store8LaneVec128) return 1;
  if (op === b.Store16LaneVec128) return 2;
  if (op === b.Store32LaneVec128) return 4;
  if (op === b.Store64LaneVec128) return 8;
  return null;
}

interface StoreLike {
  /** Effective-address offset immediate. */
  offset: number;
  /** Bytes written. */
  bytes: number;
  getPtr(): ExprRef;
  setPtr(v: ExprRef): void;
  /** The other operands, still to walk. */
  rest: Slot[];
}

/**
 * Instrument every write to linear memory in `module` (see the module comment). Run it after
 * Asyncify, on a module with one 32-bit memory. Throws WB_IMAGE_PREPARATION on an expression kind
 * the walker does not know, or when the guest already exports `DIRTY_MARK_RANGE_EXPORT`.
 */
export function instrumentDirtyStores(binaryen: Binaryen, module: BModule, params: DirtyInstrumentParams): DirtyInstrumentStats {
  const { memoryName, mapAddr, mapBytes } = params;
  if (!Number.isInteger(mapAddr) || mapAddr < 0 || !Number.isInteger(mapBytes) || mapBytes <= 0 || mapAddr + mapBytes > 2 ** 32) {
    throw new RangeError(`instrumentDirtyStores: bad dirty map [${mapAddr}, +${mapBytes})`);
  }
  if (module.getExport(DIRTY_MARK_RANGE_EXPORT) !== 0) {
    throw new WaterbearError('WB_IMAGE_PREPARATION', `the guest already exports "${DIRTY_MARK_RANGE_EXPORT}", a name waterbear reserves for its dirty-page tracking`);
  }
  const m = module;
  const i32 = binaryen.i32;
  const functions = definedFunctions(binaryen, module);
  const exists = (n: string): boolean => m.getFunction(n) !== 0;
  const markRange = freshName(exists, MARK_RANGE_HELPER);
  const E = binaryen as unknown as {
    Store: { getOffset(e: ExprRef): number; getBytes(e: ExprRef): number; getPtr(e: ExprRef): ExprRef; setPtr(e: ExprRef, v: ExprRef): void; getValue(e: ExprRef): ExprRef; setValue(e: ExprRef, v: ExprRef): void };
    AtomicRMW: { getOffset(e: ExprRef): number; getBytes(e: ExprRef): number; getPtr(e: ExprRef): ExprRef; setPtr(e: ExprRef, v: ExprRef): void; getValue(e: ExprRef): ExprRef; setValue(e: ExprRef, v: ExprRef): void };
    AtomicCmpxchg: { getOffset(e: ExprRef): number; getBytes(e: ExprRef): number; getPtr(e: ExprRef): ExprRef; setPtr(e: ExprRef, v: ExprRef): void; getExpected(e: ExprRef): ExprRef; setExpected(e: ExprRef, v: ExprRef): void; getReplacement(e: ExprRef): ExprRef; setReplacement(e: ExprRef, v: ExprRef): void };
    SIMDLoadStoreLane: { isStore(e: ExprRef): boolean; getOp(e: ExprRef): number; getOffset(e: ExprRef): number; getPtr(e: ExprRef): ExprRef; setPtr(e: ExprRef, v: ExprRef): void; getVec(e: ExprRef): ExprRef; setVec(e: ExprRef, v: ExprRef): void };
    MemoryFill: { getDest(e: ExprRef): ExprRef; getValue(e: ExprRef): ExprRef; getSize(e: ExprRef): ExprRef };
    MemoryCopy: { getDest(e: ExprRef): ExprRef; getSource(e: ExprRef): ExprRef; getSize(e: ExprRef): ExprRef };
    MemoryInit: { getSegment(e: ExprRef): string; getDest(e: ExprRef): ExprRef; getOffset(e: ExprRef): ExprRef; getSize(e: ExprRef): ExprRef };
    LocalGet: { getIndex(e: ExprRef): number };
    Const: { getValueI32(e: ExprRef): number };
  };
  const ids = {
    store: binaryen.StoreId, rmw: binaryen.AtomicRMWId, cmpxchg: binaryen.AtomicCmpxchgId, lane: binaryen.SIMDLoadStoreLaneId,
    fill: binaryen.MemoryFillId, copy: binaryen.MemoryCopyId, init: binaryen.MemoryInitId,
    localGet: binaryen.LocalGetId, konst: binaryen.ConstId,
  };
  const stats: DirtyInstrumentStats = { stores: 0, atomicRmw: 0, bulk: 0, functions: functions.length };

  // Bulk helpers, created on first use (their names are reserved now, before the walk).
  let fillHelper: string | null = null;
  let copyHelper: string | null = null;
  const initHelpers = new Map<string, string>();
  const reserved = new Set<string>([markRange]);
  const reserve = (base: string): string => {
    const name = freshName((n) => exists(n) || reserved.has(n), base);
    reserved.add(name);
    return name;
  };

  /** `i32.store8 offset=mapAddr (pageExpr) (i32.const 1)`. */
  const mark = (page: ExprRef): ExprRef => m.i32.store8(mapAddr, 1, page, m.i32.const(1), memoryName);
  const markConst = (page: number): ExprRef => m.i32.store8(0, 1, m.i32.const((mapAddr + page) | 0), m.i32.const(1), memoryName);
  const pageOf = (addr: () => ExprRef, add: number): ExprRef =>
    m.i32.shr_u(add === 0 ? addr() : m.i32.add(addr(), m.i32.const(add | 0)), m.i32.const(DIRTY_PAGE_SHIFT));

  for (const fn of functions) {
    let scratch = -1; // an i32 local holding a store's address, added on first use
    const visit = (expr: ExprRef): Visit => {
      const id = binaryen.getExpressionId(expr);
      let s: StoreLike | null = null;
      let type = binaryen.none;
      if (id === ids.store) {
        s = {
          offset: E.Store.getOffset(expr), bytes: E.Store.getBytes(expr),
          getPtr: () => E.Store.getPtr(expr), setPtr: (v) => E.Store.setPtr(expr, v),
          rest: [{ get: () => E.Store.getValue(expr), set: (v) => E.Store.setValue(expr, v) }],
        };
      } else if (id === ids.rmw) {
        s = {
          offset: E.AtomicRMW.getOffset(expr), bytes: E.AtomicRMW.getBytes(expr),
          getPtr: () => E.AtomicRMW.getPtr(expr), setPtr: (v) => E.AtomicRMW.setPtr(expr, v),
          rest: [{ get: () => E.AtomicRMW.getValue(expr), set: (v) => E.AtomicRMW.setValue(expr, v) }],
        };
      } else if (id === ids.cmpxchg) {
        s = {
          offset: E.AtomicCmpxchg.getOffset(expr), bytes: E.AtomicCmpxchg.getBytes(expr),
          getPtr: () => E.AtomicCmpxchg.getPtr(expr), setPtr: (v) => E.AtomicCmpxchg.setPtr(expr, v),
          rest: [
            { get: () => E.AtomicCmpxchg.getExpected(expr), set: (v) => E.AtomicCmpxchg.setExpected(expr, v) },
            { get: () => E.AtomicCmpxchg.getReplacement(expr), set: (v) => E.AtomicCmpxchg.setReplacement(expr, v) },
          ],
        };
      } else if (id === ids.lane && E.SIMDLoadStoreLane.isStore(expr)) {
        const bytes = laneStoreBytes(binaryen, E.SIMDLoadStoreLane.getOp(expr));
        if (bytes === null) throw new WaterbearError('WB_IMAGE_PREPARATION', 'unknown SIMD lane store: cannot instrument it for dirty-page tracking');
        s = {
          offset: E.SIMDLoadStoreLane.getOffset(expr), bytes,
          getPtr: () => E.SIMDLoadStoreLane.getPtr(expr), setPtr: (v) => E.SIMDLoadStoreLane.setPtr(expr, v),
          rest: [{ get: () => E.SIMDLoadStoreLane.getVec(expr), set: (v) => E.SIMDLoadStoreLane.setVec(expr, v) }],
        };
      } else if (id === ids.fill || id === ids.copy || id === ids.init) {
        return bulk(expr, id);
      } else {
        return null;
      }
      type = binaryen.getExpressionType(expr);
      const ptr = s.getPtr();
      if (type === binaryen.unreachable) {
        // Never completes (an operand is unreachable): nothing to mark, but walk the operands.
        return { replacement: null, next: [{ get: s.getPtr, set: s.setPtr }, ...s.rest] };
      }
      if (id === ids.store) stats.stores++;
      else if (id === ids.lane) stats.stores++;
      else stats.atomicRmw++;
      const lastAdd = s.offset + s.bytes - 1;
      const ptrId = binaryen.getExpressionId(ptr);
      if (ptrId === ids.konst) {
        // Constant address: constant marks.
        const base = E.Const.getValueI32(ptr) >>> 0;
        const first = Math.floor((base + s.offset) / 2 ** DIRTY_PAGE_SHIFT);
        const last = Math.floor((base + lastAdd) / 2 ** DIRTY_PAGE_SHIFT);
        if (last >= mapBytes) {
          // Always out of bounds: the store traps; leave it as it is.
          return { replacement: null, next: s.rest };
        }
        const marks = [markConst(first)];
        if (last !== first) marks.push(markConst(last));
        return { replacement: m.block(null, [...marks, expr], type), next: s.rest };
      }
      let addr: () => ExprRef;
      const prefix: ExprRef[] = [];
      let next: Slot[];
      if (ptrId === ids.localGet) {
        // The marks run before the store's operands, so the local still holds the address.
        const index = E.LocalGet.getIndex(ptr);
        addr = () => m.local.get(index, i32);
        next = s.rest;
      } else {
        if (scratch < 0) scratch = addLocal(binaryen, fn, i32);
        const local = scratch;
        const set = m.local.set(local, ptr);
        prefix.push(set);
        s.setPtr(m.local.get(local, i32));
        addr = () => m.local.get(local, i32);
        // The original address expression now sits inside local.set: walk it there. Nested
        // instrumented stores in it finish before the local.set, so one scratch local suffices;
        // those in the value run after the store read its address (local.get comes first).
        const LS = binaryen as unknown as { LocalSet: { getValue(e: ExprRef): ExprRef; setValue(e: ExprRef, v: ExprRef): void } };
        next = [{ get: () => LS.LocalSet.getValue(set), set: (v) => LS.LocalSet.setValue(set, v) }, ...s.rest];
      }
      const marks = [mark(pageOf(addr, s.offset))];
      if (s.bytes > 1) marks.push(mark(pageOf(addr, lastAdd)));
      return { replacement: m.block(null, [...prefix, ...marks, expr], type), next };
    };

    const bulk = (expr: ExprRef, id: number): Visit => {
      const type = binaryen.getExpressionType(expr);
      let operands: ExprRef[];
      let helper: string;
      if (id === ids.fill) {
        operands = [E.MemoryFill.getDest(expr), E.MemoryFill.getValue(expr), E.MemoryFill.getSize(expr)];
        helper = fillHelper ??= reserve(FILL_HELPER);
      } else if (id === ids.copy) {
        operands = [E.MemoryCopy.getDest(expr), E.MemoryCopy.getSource(expr), E.MemoryCopy.getSize(expr)];
        helper = copyHelper ??= reserve(COPY_HELPER);
      } else {
        const segment = E.MemoryInit.getSegment(expr);
        operands = [E.MemoryInit.getDest(expr), E.MemoryInit.getOffset(expr), E.MemoryInit.getSize(expr)];
        let name = initHelpers.get(segment);
        if (name === undefined) {
          name = reserve(`${INIT_HELPER_PREFIX}_${initHelpers.size}`);
          initHelpers.set(segment, name);
        }
        helper = name;
      }
      const childSlots = (call: ExprRef): Slot[] => {
        const C = binaryen as unknown as { Call: { getOperandAt(e: ExprRef, i: number): ExprRef; setOperandAt(e: ExprRef, i: number, v: ExprRef): void } };
        return [0, 1, 2].map((i) => ({ get: () => C.Call.getOperandAt(call, i), set: (v: ExprRef) => C.Call.setOperandAt(call, i, v) }));
      };
      if (type === binaryen.unreachable) {
        const slots: Slot[] = [];
        childEnumerators(binaryen).get(id)!(expr, slots);
        return { replacement: null, next: slots };
      }
      stats.bulk++;
      const call = m.call(helper, operands, binaryen.none);
      return { replacement: call, next: childSlots(call) };
    };

    rewriteFunctionBody(binaryen, fn, 'instrument stores for dirty-page tracking', visit);
  }

  // (func $wb_dirty_mark_range (param $addr i32) (param $len i32)
  //   (if (local.get $len)
  //     (memory.fill (i32.add (i32.const mapAddr) (i32.shr_u (local.get $addr) (i32.const 12)))
  //                  (i32.const 1)
  //                  (i32.add (i32.sub (i32.shr_u (i32.add (local.get $addr) (i32.sub (local.get $len) (i32.const 1))) 12)
  //                                    (i32.shr_u (local.get $addr) 12)) (i32.const 1)))))
  // Called only after the operation succeeded, so addr + len <= memory size: no overflow.
  const a = (): ExprRef => m.local.get(0, i32);
  const n = (): ExprRef => m.local.get(1, i32);
  const firstPage = (): ExprRef => m.i32.shr_u(a(), m.i32.const(DIRTY_PAGE_SHIFT));
  const lastPage = (): ExprRef => m.i32.shr_u(m.i32.add(a(), m.i32.sub(n(), m.i32.const(1))), m.i32.const(DIRTY_PAGE_SHIFT));
  m.addFunction(markRange, binaryen.createType([i32, i32]), binaryen.none, [], m.if(
    n(),
    m.memory.fill(
      m.i32.add(m.i32.const(mapAddr | 0), firstPage()),
      m.i32.const(1),
      m.i32.add(m.i32.sub(lastPage(), firstPage()), m.i32.const(1)),
      memoryName,
    ),
  ));
  m.addFunctionExport(markRange, DIRTY_MARK_RANGE_EXPORT);
  const three = binaryen.createType([i32, i32, i32]);
  const p = (i: number): ExprRef => m.local.get(i, i32);
  if (fillHelper !== null) {
    m.addFunction(fillHelper, three, binaryen.none, [], m.block(null, [
      m.memory.fill(p(0), p(1), p(2), memoryName),
      m.call(markRange, [p(0), p(2)], binaryen.none),
    ]));
  }
  if (copyHelper !== null) {
    m.addFunction(copyHelper, three, binaryen.none, [], m.block(null, [
      m.memory.copy(p(0), p(1), p(2), memoryName, memoryName),
      m.call(markRange, [p(0), p(2)], binaryen.none),
    ]));
  }
  for (const [segment, name] of initHelpers) {
    m.addFunction(name, three, binaryen.none, [], m.block(null, [
      m.memory.init(segment, p(0), p(1), p(2), memoryName),
      m.call(markRange, [p(0), p(2)], binaryen.none),
    ]));
  }
  return stats;
}

/**
 * A function that marks `[addr, addr + len)` in an instrumented image's dirty map, for writes the
 * host makes into guest memory (the library OS writing syscall results). Cheap: one byte per
 * 4 KiB page touched. Re-reads `memory.buffer` after a grow.
 */
export function hostWriteMarker(memory: WebAssembly.Memory, layout: { dirtyMapAddr: number; dirtyMapBytes: number }): (addr: number, len: number) => void {
  let buffer: ArrayBuffer | null = null;
  let map = new Uint8Array(0);
  return (addr: number, len: number): void => {
    if (len <= 0) return;
    if (buffer !== memory.buffer) {
      buffer = memory.buffer;
      map = new Uint8Array(buffer, layout.dirtyMapAddr, layout.dirtyMapBytes);
    }
    const first = addr >>> DIRTY_PAGE_SHIFT;
    const last = Math.min((addr + len - 1) >>> DIRTY_PAGE_SHIFT, map.length - 1);
    if (first === last) map[first] = 1;
    else map.fill(1, first, last + 1);
  };
}
