/**
 * Rewrite `memory.size` and `memory.grow` so that the reserved region stays invisible to the
 * guest's allocator.
 *
 * Older wasi-libc (dlmalloc in wasi-sdk ≤ ~18) takes the heap end from `memory.size` at the first
 * malloc. With the region appended to the initial memory, it would take the region for heap. So:
 *
 *   memory.size      →  (select (memory.size) (i32.const originalInitialPages) (global.get $wb_grown))
 *   memory.grow(d)   →  (call $wb_memory_grow d)
 *
 * `$wb_grown` is a mutable i32, 0 at start; `$wb_memory_grow` grows and sets it to 1 when the
 * grow succeeded. The first successful grow returns originalInitialPages + reservedPages (the
 * page after the region), after which `memory.size` reports the real size.
 *
 * binaryen.js has no generic expression walker, so this module walks every function body with
 * the per-expression accessors. Expression kinds it does not know stop preparation
 * (WB_IMAGE_PREPARATION) rather than risk leaving a `memory.size` unrewritten.
 */
import type binaryenModule from 'binaryen';
import { WaterbearError } from '../errors.js';
import { GROWN_FLAG_GLOBAL, MEMORY_GROW_HELPER } from './image-names.js';

type Binaryen = typeof binaryenModule;
type BModule = binaryenModule.Module;
type ExprRef = number;

/** How many instructions were rewritten, and the internal names that were added. */
export interface MemorySizeRewriteResult {
  memorySizeRewritten: number;
  memoryGrowRewritten: number;
  grownGlobal: string;
  growHelper: string;
}

/** One child slot of an expression: read it, or replace it. */
interface Slot { get(): ExprRef; set(v: ExprRef): void }

type Accessors = Record<string, (...args: never[]) => unknown>;

/** Child expressions by accessor stem (getX/setX), and lists (getNumXs/getXAt/setXAt). */
interface ChildSpec { fields?: string[]; lists?: { count: string; at: string }[] }

/** Expression kinds, by binaryen.js wrapper class, with the accessors of their child expressions. */
const CHILD_SPECS: Record<string, ChildSpec> = {
  Block: { lists: [{ count: 'getNumChildren', at: 'ChildAt' }] },
  If: { fields: ['Condition', 'IfTrue', 'IfFalse'] },
  Loop: { fields: ['Body'] },
  Break: { fields: ['Condition', 'Value'] },
  Switch: { fields: ['Condition', 'Value'] },
  Call: { lists: [{ count: 'getNumOperands', at: 'OperandAt' }] },
  CallIndirect: { fields: ['Target'], lists: [{ count: 'getNumOperands', at: 'OperandAt' }] },
  LocalSet: { fields: ['Value'] },
  GlobalSet: { fields: ['Value'] },
  TableGet: { fields: ['Index'] },
  TableSet: { fields: ['Index', 'Value'] },
  TableGrow: { fields: ['Value', 'Delta'] },
  MemoryGrow: { fields: ['Delta'] },
  Load: { fields: ['Ptr'] },
  Store: { fields: ['Ptr', 'Value'] },
  Unary: { fields: ['Value'] },
  Binary: { fields: ['Left', 'Right'] },
  Select: { fields: ['IfTrue', 'IfFalse', 'Condition'] },
  Drop: { fields: ['Value'] },
  Return: { fields: ['Value'] },
  AtomicRMW: { fields: ['Ptr', 'Value'] },
  AtomicCmpxchg: { fields: ['Ptr', 'Expected', 'Replacement'] },
  AtomicWait: { fields: ['Ptr', 'Expected', 'Timeout'] },
  AtomicNotify: { fields: ['Ptr', 'NotifyCount'] },
  SIMDExtract: { fields: ['Vec'] },
  SIMDReplace: { fields: ['Vec', 'Value'] },
  SIMDShuffle: { fields: ['Left', 'Right'] },
  SIMDTernary: { fields: ['A', 'B', 'C'] },
  SIMDShift: { fields: ['Vec', 'Shift'] },
  SIMDLoad: { fields: ['Ptr'] },
  SIMDLoadStoreLane: { fields: ['Ptr', 'Vec'] },
  MemoryInit: { fields: ['Dest', 'Offset', 'Size'] },
  MemoryCopy: { fields: ['Dest', 'Source', 'Size'] },
  MemoryFill: { fields: ['Dest', 'Value', 'Size'] },
  RefIsNull: { fields: ['Value'] },
  RefAs: { fields: ['Value'] },
  RefEq: { fields: ['Left', 'Right'] },
  RefTest: { fields: ['Ref'] },
  RefCast: { fields: ['Ref'] },
  BrOn: { fields: ['Ref'] },
  Try: { fields: ['Body'], lists: [{ count: 'getNumCatchBodies', at: 'CatchBodyAt' }] },
  Throw: { lists: [{ count: 'getNumOperands', at: 'OperandAt' }] },
  TupleMake: { lists: [{ count: 'getNumOperands', at: 'OperandAt' }] },
  TupleExtract: { fields: ['Tuple'] },
  RefI31: { fields: ['Value'] },
  I31Get: { fields: ['I31'] },
  CallRef: { fields: ['Target'], lists: [{ count: 'getNumOperands', at: 'OperandAt' }] },
  StructNew: { lists: [{ count: 'getNumOperands', at: 'OperandAt' }] },
  StructGet: { fields: ['Ref'] },
  StructSet: { fields: ['Ref', 'Value'] },
  ArrayNew: { fields: ['Init', 'Size'] },
  ArrayNewFixed: { lists: [{ count: 'getNumValues', at: 'ValueAt' }] },
  ArrayNewData: { fields: ['Offset', 'Size'] },
  ArrayNewElem: { fields: ['Offset', 'Size'] },
  ArrayGet: { fields: ['Ref', 'Index'] },
  ArraySet: { fields: ['Ref', 'Index', 'Value'] },
  ArrayLen: { fields: ['Ref'] },
  ArrayFill: { fields: ['Ref', 'Index', 'Value', 'Size'] },
  ArrayCopy: { fields: ['DestRef', 'DestIndex', 'SrcRef', 'SrcIndex', 'Length'] },
  ArrayInitData: { fields: ['Ref', 'Index', 'Offset', 'Size'] },
  ArrayInitElem: { fields: ['Ref', 'Index', 'Offset', 'Size'] },
};

/** Expression kinds with no child expressions. */
const LEAF_KINDS = [
  'Nop', 'Unreachable', 'Const', 'LocalGet', 'GlobalGet', 'MemorySize', 'RefNull', 'RefFunc',
  'DataDrop', 'AtomicFence', 'TableSize', 'Pop', 'Rethrow',
];

type ChildEnumerator = (expr: ExprRef, out: Slot[]) => void;

interface Walker { byId: Map<number, ChildEnumerator>; names: Map<number, string> }

let cachedWalker: { binaryen: Binaryen; walker: Walker } | null = null;

/** Build (once per binaryen instance) the table from expression id to child enumerator. */
function walkerFor(binaryen: Binaryen): Walker {
  if (cachedWalker !== null && cachedWalker.binaryen === binaryen) return cachedWalker.walker;
  const b = binaryen as unknown as Record<string, unknown>;
  const byId = new Map<number, ChildEnumerator>();
  const names = new Map<number, string>();
  for (const leaf of LEAF_KINDS) {
    const id = b[`${leaf}Id`];
    if (typeof id !== 'number') throw new Error(`binaryen.js has no ${leaf}Id`);
    byId.set(id, () => {});
    names.set(id, leaf);
  }
  for (const [kind, spec] of Object.entries(CHILD_SPECS)) {
    const id = b[`${kind}Id`];
    const cls = b[kind] as Accessors | undefined;
    if (typeof id !== 'number' || cls === undefined) throw new Error(`binaryen.js has no ${kind}`);
    const need = (name: string): ((...args: never[]) => unknown) => {
      const fn = cls[name];
      if (typeof fn !== 'function') throw new Error(`binaryen.js ${kind} has no ${name}`);
      return fn;
    };
    const fields = (spec.fields ?? []).map((f) => ({
      get: need(`get${f}`) as unknown as (e: ExprRef) => ExprRef,
      set: need(`set${f}`) as unknown as (e: ExprRef, v: ExprRef) => void,
    }));
    const lists = (spec.lists ?? []).map((l) => ({
      count: need(l.count) as unknown as (e: ExprRef) => number,
      get: need(`get${l.at}`) as unknown as (e: ExprRef, i: number) => ExprRef,
      set: need(`set${l.at}`) as unknown as (e: ExprRef, i: number, v: ExprRef) => void,
    }));
    byId.set(id, (expr, out) => {
      for (const f of fields) out.push({ get: () => f.get(expr), set: (v) => f.set(expr, v) });
      for (const l of lists) {
        const n = l.count(expr);
        for (let i = 0; i < n; i++) out.push({ get: () => l.get(expr, i), set: (v) => l.set(expr, i, v) });
      }
    });
    names.set(id, kind);
  }
  const walker = { byId, names };
  cachedWalker = { binaryen, walker };
  return walker;
}

/** A name not yet used by a global (or function) in the module, starting from `base`. */
function freshName(exists: (name: string) => boolean, base: string): string {
  if (!exists(base)) return base;
  for (let i = 1; ; i++) if (!exists(`${base}_${i}`)) return `${base}_${i}`;
}

/**
 * Rewrite every `memory.size` and `memory.grow` in the module's defined functions (see the
 * module comment). `memoryName` is binaryen's internal name of the (single) memory.
 * Throws WB_IMAGE_PREPARATION on an expression kind the walker does not know.
 */
export function rewriteMemorySize(
  binaryen: Binaryen, module: BModule, memoryName: string, originalInitialPages: number,
): MemorySizeRewriteResult {
  const walker = walkerFor(binaryen);
  const grownGlobal = freshName((n) => module.getGlobal(n) !== 0, GROWN_FLAG_GLOBAL);
  const growHelper = freshName((n) => module.getFunction(n) !== 0, MEMORY_GROW_HELPER);

  // Collect the defined functions first: the helper added below must not be walked.
  const functions: number[] = [];
  for (let i = 0; i < module.getNumFunctions(); i++) {
    const fn = module.getFunctionByIndex(i);
    const info = binaryen.getFunctionInfo(fn);
    if (info.module === null || info.module === '') functions.push(fn);
  }

  module.addGlobal(grownGlobal, binaryen.i32, true, module.i32.const(0));
  // (func $wb_memory_grow (param $delta i32) (result i32) (local $old i32)
  //   (local.set $old (memory.grow (local.get $delta)))
  //   (if (i32.ne (local.get $old) (i32.const -1)) (global.set $wb_grown (i32.const 1)))
  //   (local.get $old))
  module.addFunction(growHelper, binaryen.i32, binaryen.i32, [binaryen.i32], module.block(null, [
    module.local.set(1, module.memory.grow(module.local.get(0, binaryen.i32), memoryName)),
    module.if(
      module.i32.ne(module.local.get(1, binaryen.i32), module.i32.const(-1)),
      module.global.set(grownGlobal, module.i32.const(1)),
    ),
    module.local.get(1, binaryen.i32),
  ], binaryen.i32));

  const memorySizeId = binaryen.MemorySizeId;
  const memoryGrowId = binaryen.MemoryGrowId;
  const classes = binaryen as unknown as {
    MemoryGrow: { getDelta(e: ExprRef): ExprRef };
    Function: { getBody(fn: number): ExprRef; setBody(fn: number, body: ExprRef): void };
  };
  const getDelta = classes.MemoryGrow.getDelta;
  let memorySizeRewritten = 0;
  let memoryGrowRewritten = 0;

  const replacementFor = (expr: ExprRef): ExprRef | null => {
    const id = binaryen.getExpressionId(expr);
    if (id === memorySizeId) {
      memorySizeRewritten++;
      return module.select(
        module.global.get(grownGlobal, binaryen.i32),
        module.memory.size(memoryName),
        module.i32.const(originalInitialPages),
      );
    }
    if (id === memoryGrowId) {
      memoryGrowRewritten++;
      return module.call(growHelper, [getDelta(expr)], binaryen.i32);
    }
    return null;
  };

  const slots: Slot[] = [];
  const pending: ExprRef[] = [];
  for (const fn of functions) {
    const body = classes.Function.getBody(fn);
    if (body === 0) continue;
    const replacedBody = replacementFor(body);
    if (replacedBody !== null) {
      classes.Function.setBody(fn, replacedBody);
      // A new memory.size has no children worth visiting; a call's operand (the old delta) does.
      if (binaryen.getExpressionId(replacedBody) !== binaryen.SelectId) pending.push(replacedBody);
    } else {
      pending.push(body);
    }
    while (pending.length > 0) {
      const expr = pending.pop()!;
      const id = binaryen.getExpressionId(expr);
      const enumerate = walker.byId.get(id);
      if (enumerate === undefined) {
        throw new WaterbearError('WB_IMAGE_PREPARATION',
          `cannot rewrite memory.size in function ${binaryen.getFunctionInfo(fn).name}: it uses an expression kind (id ${id}) ` +
          'that waterbear does not know (a newer WebAssembly proposal?). Build the guest for plain wasm32-wasip1');
      }
      slots.length = 0;
      enumerate(expr, slots);
      for (const slot of slots) {
        const child = slot.get();
        if (child === 0) continue; // optional child absent (if without else, br without value…)
        const replacement = replacementFor(child);
        if (replacement === null) {
          pending.push(child);
        } else {
          slot.set(replacement);
          if (binaryen.getExpressionId(replacement) !== binaryen.SelectId) pending.push(replacement);
        }
      }
    }
  }
  return { memorySizeRewritten, memoryGrowRewritten, grownGlobal, growHelper };
}
