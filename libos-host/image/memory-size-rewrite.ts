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
import { definedFunctions, freshName, rewriteFunctionBody, type Binaryen, type BModule, type ExprRef, type Visit } from './expression-walker.js';
import { GROWN_FLAG_GLOBAL, MEMORY_GROW_HELPER } from './image-names.js';


/** How many instructions were rewritten, and the internal names that were added. */
export interface MemorySizeRewriteResult {
  memorySizeRewritten: number;
  memoryGrowRewritten: number;
  grownGlobal: string;
  growHelper: string;
}

/**
 * Rewrite every `memory.size` and `memory.grow` in the module's defined functions (see the
 * module comment). `memoryName` is binaryen's internal name of the (single) memory.
 * Throws WB_IMAGE_PREPARATION on an expression kind the walker does not know.
 */
export function rewriteMemorySize(
  binaryen: Binaryen, module: BModule, memoryName: string, originalInitialPages: number,
): MemorySizeRewriteResult {
  const grownGlobal = freshName((n) => module.getGlobal(n) !== 0, GROWN_FLAG_GLOBAL);
  const growHelper = freshName((n) => module.getFunction(n) !== 0, MEMORY_GROW_HELPER);

  // Collect the defined functions first: the helper added below must not be walked.
  const functions = definedFunctions(binaryen, module);

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
    Call: { getOperandAt(e: ExprRef, i: number): ExprRef; setOperandAt(e: ExprRef, i: number, v: ExprRef): void };
  };
  let memorySizeRewritten = 0;
  let memoryGrowRewritten = 0;

  // memory.size becomes a select with no children worth visiting; memory.grow becomes a call of
  // the helper whose operand (the old delta) is still walked.
  const visit = (expr: ExprRef): Visit => {
    const id = binaryen.getExpressionId(expr);
    if (id === memorySizeId) {
      memorySizeRewritten++;
      return {
        replacement: module.select(module.global.get(grownGlobal, binaryen.i32), module.memory.size(memoryName), module.i32.const(originalInitialPages)),
        next: [],
      };
    }
    if (id === memoryGrowId) {
      memoryGrowRewritten++;
      const call = module.call(growHelper, [classes.MemoryGrow.getDelta(expr)], binaryen.i32);
      return { replacement: call, next: [{ get: () => classes.Call.getOperandAt(call, 0), set: (v) => classes.Call.setOperandAt(call, 0, v) }] };
    }
    return null;
  };
  for (const fn of functions) rewriteFunctionBody(binaryen, fn, 'rewrite memory.size', visit);
  return { memorySizeRewritten, memoryGrowRewritten, grownGlobal, growHelper };
}
