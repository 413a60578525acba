/**
 * Yield points: a binaryen pass that lets the runtime interrupt a guest that computes for a long
 * time without a system call, so that a checkpoint is never postponed without bound.
 *
 * Every `loop` is counted in two places: its entries in a global countdown, its iterations in a
 * local of the function. And the call that may unwind the guest sits outside the loop, which
 * matters more than the counting: Asyncify guards every piece of a function that lies on the
 * way to a call that may unwind (`if (state == normal)` around each, a global read per piece), so
 * a call inside the loop taxed every iteration of every loop (1.45-1.49x on a multiply-bound
 * loop, even with the counting in a register). Outside it, a loop without calls of its own is
 * one piece for Asyncify and runs as tight as before, paying a register decrement and a branch:
 *
 * ```
 * (block $done                                 ;; in the loop's place, of the loop's type
 *   (global.set $wb_yield_countdown (i32.sub (global.get $wb_yield_countdown) (i32.const 1)))
 *   (if (i32.le_s (global.get $wb_yield_countdown) (i32.const 0))
 *     (then (global.set $wb_yield_countdown (call $waterbear.yield))))
 *   (local.set $left (global.get $wb_yield_countdown))
 *   (loop $retry
 *     (block $due
 *       (br $done                              ;; (with the loop's value, if it has one)
 *         (loop $L
 *           (br_if $due (i32.le_s (local.tee $left (i32.sub (local.get $left) (i32.const 1))) (i32.const 0)))
 *           ...original body...)))
 *     (global.set $wb_yield_countdown (call $waterbear.yield))
 *     (local.set $left (global.get $wb_yield_countdown))
 *     (br $retry)))                            ;; back to the top of the same iteration
 * ```
 *
 * Leaving for `$due` happens at the top of an iteration, before any of its body ran, so coming
 * back in at the loop's top continues exactly where it stopped (also after a checkpoint there).
 *
 * Bound: with a countdown C, one run of a loop takes at most C back-edges before it yields, and
 * at most C loop entries happen between two yields, so no more than about C x C back-edges pass
 * between yields, however the loops nest (each entry, at any depth, spends the shared global).
 * The runtime's pacer (YieldPacer) shrinks C when yields come too rarely, so the time between
 * them stays near its target either way. One local per function serves all its loops: an inner
 * loop's entry refills it from the global, which keeps the same bound.
 *
 * `waterbear.yield: () -> i32` is an import (module `WATERBEAR_MODULE`, name `YIELD_IMPORT`)
 * that is added to Asyncify's import list, so the runtime may unwind the guest there. It returns
 * the countdown until the next call. The runtime decides, at that call, whether a checkpoint is
 * due (a deadline on the monotonic clock); most calls just return.
 *
 * Run BEFORE Asyncify (which then saves the local with the others when it unwinds). Cost: the
 * global per loop entry and the local per iteration, plus Asyncify instrumenting every function
 * that contains a loop (and its callers) around the calls. docs/dirty-tracking.md has the
 * measured cost.
 *
 * Not covered: recursion without loops (each call is bounded code, but a deep recursion can run
 * long without a back-edge); such guests still suspend at their next system call.
 */
import type binaryenModule from 'binaryen';
import { WATERBEAR_MODULE } from '../wasi/wasi-imports.js';
import { addLocal, definedFunctions, freshName, rewriteFunctionBody, type Visit } from './expression-walker.js';

type Binaryen = typeof binaryenModule;
type BModule = binaryenModule.Module;
type ExprRef = number;

/** The import's name in `WATERBEAR_MODULE`. */
export const YIELD_IMPORT = 'yield';

/** The import as Asyncify's `asyncify-imports` argument spells it. */
export const YIELD_ASYNCIFY_IMPORT = `${WATERBEAR_MODULE}.${YIELD_IMPORT}`;

/** The countdown before the first `yield` call (the runtime picks every later one). */
export const INITIAL_YIELD_COUNTDOWN = 10_000;

/** Internal names the pass adds. */
const COUNTDOWN_GLOBAL = 'wb_yield_countdown';
/** Labels the pass adds start with this (binaryen names are free text; compilers do not name labels so). */
const LABEL_PREFIX = 'wb:yield:';
const YIELD_FUNCTION = 'wb_yield';

/** A block type for `e`'s place: its own, or inferred where `e` never falls through. */
function blockType(binaryen: Binaryen, e: ExprRef): number {
  const t = binaryen.getExpressionType(e);
  return t === binaryen.unreachable ? binaryen.auto : t;
}

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

  const B = binaryen as unknown as {
    Block: { getChildAt(e: ExprRef, i: number): ExprRef; setChildAt(e: ExprRef, i: number, v: ExprRef): void };
    Loop: { getBody(e: ExprRef): ExprRef; setBody(e: ExprRef, v: ExprRef): void };
  };
  const loopId = binaryen.LoopId;
  const stats: YieldPointStats = { loops: 0, functions: functions.length };
  /** On entry: `countdown -= 1; if countdown <= 0: countdown = yield()`; the local refilled. */
  const entry = (left: number): ExprRef[] => [
    m.global.set(countdown, m.i32.sub(m.global.get(countdown, i32), m.i32.const(1))),
    m.if(m.i32.le_s(m.global.get(countdown, i32), m.i32.const(0)), m.global.set(countdown, m.call(yieldFn, [], i32))),
    m.local.set(left, m.global.get(countdown, i32)),
  ];
  /** Every iteration: `left -= 1; if left <= 0: leave for the yield`. */
  const due = (left: number, label: string): ExprRef =>
    m.br(label, m.i32.le_s(m.local.tee(left, m.i32.sub(m.local.get(left, i32), m.i32.const(1)), i32), m.i32.const(0)));

  for (const fn of functions) {
    let left = -1; // the function's local, added at its first loop
    const visit = (expr: ExprRef): Visit => {
      if (binaryen.getExpressionId(expr) !== loopId) return null;
      if (left < 0) left = addLocal(binaryen, fn, i32);
      const [done, retry, yieldDue] = ['done', 'retry', 'due'].map((x) => `${LABEL_PREFIX}${x}:${stats.loops}`);
      const type = binaryen.getExpressionType(expr);
      const body = B.Loop.getBody(expr);
      const inner = m.block(null, [due(left, yieldDue), body], blockType(binaryen, body));
      B.Loop.setBody(expr, inner);
      // The loop leaves through $done; only a due yield falls out of $due.
      const leave = type === binaryen.unreachable ? [expr] : type === binaryen.none ? [expr, m.br(done)] : [m.br(done, 0, expr)];
      const replacement = m.block(done, [
        ...entry(left),
        m.loop(retry, m.block(null, [
          m.block(yieldDue, leave, binaryen.none),
          m.global.set(countdown, m.call(yieldFn, [], i32)),
          m.local.set(left, m.global.get(countdown, i32)),
          m.br(retry),
        ], binaryen.auto)),
      ], blockType(binaryen, expr));
      stats.loops++;
      // Walk the original body (nested loops), now the inner block's second child.
      return { replacement, next: [{ get: () => B.Block.getChildAt(inner, 1), set: (v) => B.Block.setChildAt(inner, 1, v) }] };
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
