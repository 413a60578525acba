/**
 * Yield points: a binaryen pass that lets the runtime interrupt a guest that computes for a long
 * time without a system call, so that a checkpoint is never postponed without bound.
 *
 * Every `loop` gets a countdown check at the top of its body, which runs on entry and on every
 * back-edge (a branch to the loop's label re-enters the body):
 *
 * ```
 * (loop $L
 *   (global.set $wb_yield_countdown (i32.sub (global.get $wb_yield_countdown) (i32.const 1)))
 *   (if (i32.le_s (global.get $wb_yield_countdown) (i32.const 0))
 *     (then (global.set $wb_yield_countdown (call $waterbear.yield))))
 *   ...original body...)
 * ```
 *
 * `waterbear.yield: () -> i32` is an import (module `WATERBEAR_MODULE`, name `YIELD_IMPORT`)
 * that is added to Asyncify's import list, so the runtime may unwind the guest there. It returns
 * the number of back-edges until the next call. The runtime decides, at that call, whether a
 * checkpoint is due (a deadline on the monotonic clock); most calls just return.
 *
 * Run BEFORE Asyncify. Cost: one global decrement and a compare per back-edge, plus Asyncify
 * instrumenting every function that contains a loop (and its callers). docs/dirty-tracking.md
 * has the measured cost.
 *
 * Not covered: recursion without loops (each call is bounded code, but a deep recursion can run
 * long without a back-edge); such guests still suspend at their next system call.
 */
import type binaryenModule from 'binaryen';
import { WATERBEAR_MODULE } from '../wasi/wasi-imports.js';
import { definedFunctions, freshName, rewriteFunctionBody, type Visit } from './expression-walker.js';

type Binaryen = typeof binaryenModule;
type BModule = binaryenModule.Module;
type ExprRef = number;

/** The import's name in `WATERBEAR_MODULE`. */
export const YIELD_IMPORT = 'yield';

/** The import as Asyncify's `asyncify-imports` argument spells it. */
export const YIELD_ASYNCIFY_IMPORT = `${WATERBEAR_MODULE}.${YIELD_IMPORT}`;

/** Back-edges before the first `yield` call (the runtime picks every later countdown). */
export const INITIAL_YIELD_COUNTDOWN = 10_000;

/** Internal names the pass adds. */
const COUNTDOWN_GLOBAL = 'wb_yield_countdown';
const YIELD_FUNCTION = 'wb_yield';

export interface YieldPointStats {
  /** Loops that got a countdown check. */
  loops: number;
  /** Functions whose body was walked. */
  functions: number;
}

/**
 * Add a countdown check to every loop of `module` and the `waterbear.yield` import (see the module
 * comment). Throws WB_IMAGE_PREPARATION on an expression kind the walker does not know.
 */
export function addYieldPoints(binaryen: Binaryen, module: BModule): YieldPointStats {
  const m = module;
  const i32 = binaryen.i32;
  const functions = definedFunctions(binaryen, m);
  const countdown = freshName((n) => m.getGlobal(n) !== 0, COUNTDOWN_GLOBAL);
  const yieldFn = freshName((n) => m.getFunction(n) !== 0, YIELD_FUNCTION);
  m.addGlobal(countdown, i32, true, m.i32.const(INITIAL_YIELD_COUNTDOWN));
  m.addFunctionImport(yieldFn, WATERBEAR_MODULE, YIELD_IMPORT, binaryen.none, i32);

  const L = binaryen as unknown as { Loop: { getBody(e: ExprRef): ExprRef; setBody(e: ExprRef, v: ExprRef): void } };
  const loopId = binaryen.LoopId;
  const stats: YieldPointStats = { loops: 0, functions: functions.length };
  const check = (): ExprRef => m.block(null, [
    m.global.set(countdown, m.i32.sub(m.global.get(countdown, i32), m.i32.const(1))),
    m.if(m.i32.le_s(m.global.get(countdown, i32), m.i32.const(0)), m.global.set(countdown, m.call(yieldFn, [], i32))),
  ], binaryen.none);

  for (const fn of functions) {
    const visit = (expr: ExprRef): Visit => {
      if (binaryen.getExpressionId(expr) !== loopId) return null;
      const body = L.Loop.getBody(expr);
      const type = binaryen.getExpressionType(body);
      const block = m.block(null, [check(), body], type === binaryen.unreachable ? binaryen.auto : type);
      L.Loop.setBody(expr, block);
      stats.loops++;
      // Walk the original body (nested loops), now the block's second child.
      const B = binaryen as unknown as { Block: { getChildAt(e: ExprRef, i: number): ExprRef; setChildAt(e: ExprRef, i: number, v: ExprRef): void } };
      return { replacement: null, next: [{ get: () => B.Block.getChildAt(block, 1), set: (v) => B.Block.setChildAt(block, 1, v) }] };
    };
    rewriteFunctionBody(binaryen, fn, 'add yield points', visit);
  }
  return stats;
}

/** Aimed-for time between two `waterbear.yield` calls, in microseconds. */
export const YIELD_INTERVAL_TARGET_US = 500;
/** Bounds of the countdown the runtime hands back. */
export const MIN_YIELD_COUNTDOWN = 64;
export const MAX_YIELD_COUNTDOWN = 1 << 24;

/**
 * Picks the countdown `waterbear.yield` returns, so that yields happen about every
 * YIELD_INTERVAL_TARGET_US whatever the loops cost: it doubles the countdown while yields come
 * in less than half the target, and halves it when they come more than twice the target apart.
 * Pure: the caller passes the monotonic time (ns).
 */
export class YieldPacer {
  private countdown = INITIAL_YIELD_COUNTDOWN;
  private lastNs: bigint | null = null;

  /** The countdown until the next yield, given the time of this one. */
  next(nowNs: bigint): number {
    if (this.lastNs !== null) {
      const elapsedUs = Number(nowNs - this.lastNs) / 1000;
      if (elapsedUs < YIELD_INTERVAL_TARGET_US / 2) this.countdown = Math.min(MAX_YIELD_COUNTDOWN, this.countdown * 2);
      else if (elapsedUs > YIELD_INTERVAL_TARGET_US * 2) this.countdown = Math.max(MIN_YIELD_COUNTDOWN, Math.floor(this.countdown / 2));
    }
    this.lastNs = nowNs;
    return this.countdown;
  }
}
