/**
 * Linearizability checking after Wing & Gong (1993) with Lowe's memoisation of configurations
 * ("Testing for linearizability", 2017), and Horn & Kroening's P-compositionality (2015): a
 * history of a map is linearizable iff the sub-history of every key is, so each key is checked
 * on its own.
 *
 * The search walks a doubly linked list of call and return events in time order. At each step it
 * may linearize any operation whose call comes before the first return still in the list (the
 * operations that are "minimal"); it applies the operation to the sequential model, lifts its call
 * and return out of the list and starts again from the head. When it meets a return event, the
 * operation returning there was not linearized in time: it backtracks. A configuration (set of
 * linearized operations + model state) that was seen before is never explored again (Lowe).
 *
 * Operations whose outcome is unknown (the client timed out, the connection died mid-call) may
 * have taken effect at any time after their call, or never: they have no return event, and the
 * search succeeds once every operation with a known outcome is linearized, whatever became of
 * the unknown ones.
 *
 * The search is exponential in the worst case: it checks its time budget (and a bound on the
 * memo's size) and answers "unknown" rather than hanging.
 */

/** What `Model.step` returns when the operation cannot have produced its output in that state. */
export const ILLEGAL: unique symbol = Symbol('illegal');

/** A sequential specification. `step` returns the next state, or ILLEGAL when `output` is impossible. */
export interface Model<S, I, O> {
  init(): S;
  /** Apply `input` in `state`. `output` is undefined for an operation whose outcome is unknown. */
  step(state: S, input: I, output: O | undefined): S | typeof ILLEGAL;
  /** A string that identifies the state: equal states must give equal strings. */
  hash(state: S): string;
  /** For reports: a short description of a state, an input and an output. */
  describe?(state: S): string;
}

/** One operation as the checker sees it. */
export interface LinOp<I, O> {
  /** Caller's id (reported back in witnesses). */
  id: number;
  input: I;
  /** The output; ignored when `known` is false. */
  output?: O;
  /** False when the outcome is unknown: it may have happened (once) at any time after `callMs`, or never. */
  known: boolean;
  callMs: number;
  /** Ignored when `known` is false. */
  returnMs: number;
}

export type LinVerdict = 'linearizable' | 'not-linearizable' | 'unknown';

export interface LinResult {
  verdict: LinVerdict;
  /** For not-linearizable: the operation that could not be linearized in time, after the longest prefix that could. */
  failedOpId?: number;
  /** Model states (described) reached just before the failure, for the report. */
  statesAtFailure?: string[];
  /** Ids of the last operations of the longest linearizable prefix found (most recent last). */
  prefixTail?: number[];
  /** Why the answer is unknown (budget exhausted). */
  reason?: string;
  /** Search steps taken and configurations memoised. */
  steps: number;
  memo: number;
  elapsedMs: number;
}

export interface LinOptions {
  /** Give up (verdict "unknown") after this long. Default 10 s. */
  budgetMs?: number;
  /** Give up (verdict "unknown") once this many configurations are memoised. Default 4,000,000. */
  maxMemo?: number;
  /** Monotonic clock in ms (tests inject one). */
  nowMs?: () => number;
}

export const DEFAULT_LIN_BUDGET_MS = 10_000;
export const DEFAULT_LIN_MAX_MEMO = 4_000_000;
/** How many search steps between two looks at the clock. */
const BUDGET_CHECK_STEPS = 2048;
const PREFIX_TAIL_OPS = 8;

/**
 * Check one history (one key's, under P-compositionality) against `model`.
 * Never throws on a bad history; operations are sorted here.
 */
export function checkLinearizable<S, I, O>(model: Model<S, I, O>, history: ReadonlyArray<LinOp<I, O>>, options: LinOptions = {}): LinResult {
  const now = options.nowMs ?? (() => performance.now());
  const budgetMs = options.budgetMs ?? DEFAULT_LIN_BUDGET_MS;
  const maxMemo = options.maxMemo ?? DEFAULT_LIN_MAX_MEMO;
  const started = now();
  const ops = [...history];
  const n = ops.length;

  // Events: a call per operation, a return per operation with a known outcome. Sorted by time;
  // at equal times calls come first (the operations count as concurrent: the permissive choice).
  interface Ev { op: number; call: boolean; t: number }
  const evs: Ev[] = [];
  for (let i = 0; i < n; i++) {
    const o = ops[i];
    evs.push({ op: i, call: true, t: o.callMs });
    if (o.known) {
      // A return before its call is a recording bug; clamp so the search stays well-formed.
      evs.push({ op: i, call: false, t: Math.max(o.returnMs, o.callMs) });
    }
  }
  evs.sort((x, y) => x.t - y.t || (x.call === y.call ? x.op - y.op : x.call ? -1 : 1));

  // Doubly linked list over event indices 1..m; 0 is the head sentinel, m+1 the end.
  const m = evs.length;
  const END = m + 1;
  const next = new Int32Array(m + 2);
  const prev = new Int32Array(m + 2);
  for (let i = 0; i <= m; i++) { next[i] = i + 1; prev[i + 1] = i; }
  const evOp = new Int32Array(m + 2);
  const evCall = new Uint8Array(m + 2);
  const retOf = new Int32Array(n).fill(-1); // event index of each op's return
  const callOf = new Int32Array(n);
  for (let i = 0; i < m; i++) {
    const e = i + 1;
    evOp[e] = evs[i].op;
    evCall[e] = evs[i].call ? 1 : 0;
    if (evs[i].call) callOf[evs[i].op] = e; else retOf[evs[i].op] = e;
  }
  const unlink = (e: number): void => { next[prev[e]] = next[e]; prev[next[e]] = prev[e]; };
  const relink = (e: number): void => { next[prev[e]] = e; prev[next[e]] = e; };
  const lift = (callEv: number): void => {
    unlink(callEv);
    const r = retOf[evOp[callEv]];
    if (r >= 0) unlink(r);
  };
  const unlift = (callEv: number): void => {
    const r = retOf[evOp[callEv]];
    if (r >= 0) relink(r);
    relink(callEv);
  };

  // Zobrist hashing of the linearized set: 3 x 32 bits, updated in O(1) per lift.
  const z1 = new Uint32Array(n), z2 = new Uint32Array(n), z3 = new Uint32Array(n);
  let seed = 0x2545f491;
  const rnd = (): number => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>>= 0); };
  for (let i = 0; i < n; i++) { z1[i] = rnd(); z2[i] = rnd(); z3[i] = rnd(); }
  let h1 = 0, h2 = 0, h3 = 0;
  const memo = new Set<string>();

  let remainingKnown = 0;
  for (const o of ops) if (o.known) remainingKnown++;
  let state = model.init();
  const stack: Array<{ ev: number; state: S }> = [];
  let linearizedKnown = 0;
  let best = -1;
  let bestFailure: { op: number; states: string[]; tail: number[] } | null = null;
  let steps = 0;
  let e = next[0];
  const describe = (s: S): string => (model.describe ? model.describe(s) : model.hash(s));
  const finish = (verdict: LinVerdict, extra: Partial<LinResult> = {}): LinResult =>
    ({ verdict, steps, memo: memo.size, elapsedMs: now() - started, ...extra });

  for (;;) {
    if (remainingKnown === 0) return finish('linearizable');
    if (++steps % BUDGET_CHECK_STEPS === 0) {
      if (now() - started > budgetMs) return finish('unknown', { reason: `time budget of ${budgetMs} ms exhausted after ${steps} steps` });
      if (memo.size > maxMemo) return finish('unknown', { reason: `more than ${maxMemo} configurations explored` });
    }
    if (e !== END && evCall[e] === 1) {
      const i = evOp[e];
      const o = ops[i];
      const ns = model.step(state, o.input, o.known ? o.output : undefined);
      if (ns !== ILLEGAL) {
        const k = `${(h1 ^ z1[i]) >>> 0}.${(h2 ^ z2[i]) >>> 0}.${(h3 ^ z3[i]) >>> 0}|${model.hash(ns)}`;
        if (!memo.has(k)) {
          memo.add(k);
          stack.push({ ev: e, state });
          h1 = (h1 ^ z1[i]) >>> 0; h2 = (h2 ^ z2[i]) >>> 0; h3 = (h3 ^ z3[i]) >>> 0;
          state = ns;
          lift(e);
          if (o.known) { remainingKnown--; linearizedKnown++; }
          e = next[0];
          continue;
        }
      }
      e = next[e];
      continue;
    }
    // A return event (an operation that had to be linearized by now), or the end: backtrack.
    if (e !== END && linearizedKnown > best) {
      best = linearizedKnown;
      bestFailure = { op: ops[evOp[e]].id, states: [describe(state)], tail: stack.slice(-PREFIX_TAIL_OPS).map((s) => ops[evOp[s.ev]].id) };
    } else if (e !== END && linearizedKnown === best && bestFailure !== null && bestFailure.states.length < 4) {
      const d = describe(state);
      if (!bestFailure.states.includes(d)) bestFailure.states.push(d);
    }
    const top = stack.pop();
    if (top === undefined) {
      return finish('not-linearizable', bestFailure === null ? {} : { failedOpId: bestFailure.op, statesAtFailure: bestFailure.states, prefixTail: bestFailure.tail });
    }
    const i = evOp[top.ev];
    h1 = (h1 ^ z1[i]) >>> 0; h2 = (h2 ^ z2[i]) >>> 0; h3 = (h3 ^ z3[i]) >>> 0;
    if (ops[i].known) { remainingKnown++; linearizedKnown--; }
    unlift(top.ev);
    state = top.state;
    e = next[top.ev];
  }
}

export interface PartitionedResult<K> {
  verdict: LinVerdict;
  /** Per partition (key) results. */
  partitions: Array<{ key: K; ops: number; result: LinResult }>;
}

/**
 * P-compositionality: check each partition (e.g. each key of a map) on its own, sharing the time
 * budget. Not linearizable if any partition is not; unknown if any is unknown and none fails.
 */
export function checkPartitioned<K, S, I, O>(
  model: Model<S, I, O>, partitions: ReadonlyMap<K, ReadonlyArray<LinOp<I, O>>>, options: LinOptions = {},
): PartitionedResult<K> {
  const now = options.nowMs ?? (() => performance.now());
  const total = options.budgetMs ?? DEFAULT_LIN_BUDGET_MS;
  const start = now();
  const out: PartitionedResult<K> = { verdict: 'linearizable', partitions: [] };
  // Smallest partitions first: a failure in a small one is found (and reported) fastest.
  const keys = [...partitions.keys()].sort((a, b) => partitions.get(a)!.length - partitions.get(b)!.length);
  let left = keys.length;
  for (const key of keys) {
    const ops = partitions.get(key)!;
    // Every remaining partition gets an equal share of what is left of the budget.
    const share = Math.max(1, (total - (now() - start)) / left--);
    const result = checkLinearizable(model, ops, { ...options, budgetMs: share, nowMs: now });
    out.partitions.push({ key, ops: ops.length, result });
    if (result.verdict === 'not-linearizable') out.verdict = 'not-linearizable';
    else if (result.verdict === 'unknown' && out.verdict === 'linearizable') out.verdict = 'unknown';
  }
  return out;
}
