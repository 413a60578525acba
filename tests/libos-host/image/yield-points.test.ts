import test from 'ava';
import { loadBinaryen } from '../../../libos-host/image/binaryen-loader.js';
import { addYieldPoints, INITIAL_YIELD_COUNTDOWN, MAX_YIELD_COUNTDOWN, MIN_YIELD_COUNTDOWN, YieldPacer, YIELD_IMPORT, YIELD_INTERVAL_TARGET_US } from '../../../libos-host/image/yield-points.js';
import type { Lvm } from '../../../libos-host/runtime/lvm.js';
import { WATERBEAR_MODULE } from '../../../libos-host/wasi/wasi-imports.js';
import { startTrackedGuest } from '../../checkpoint/trackers/helpers.js';

const NS_PER_MS = 1_000_000n;

test('every loop calls waterbear.yield once its countdown runs out', async (t) => {
  const binaryen = await loadBinaryen();
  const m = binaryen.parseText(String.raw`
    (module
      (func (export "spin") (param $n i32) (result i32) (local $i i32) (local $j i32)
        (loop $outer
          (local.set $j (i32.const 0))
          (loop $inner
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if $inner (i32.lt_u (local.get $j) (i32.const 10))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $outer (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $i)))`);
  try {
    const stats = addYieldPoints(binaryen, m);
    t.is(stats.loops, 2);
    t.truthy(m.validate());
    const module = await WebAssembly.compile(m.emitBinary() as Uint8Array<ArrayBuffer>);
    t.deepEqual(WebAssembly.Module.imports(module), [{ module: WATERBEAR_MODULE, name: YIELD_IMPORT, kind: 'function' }]);
    let calls = 0;
    const instance = new WebAssembly.Instance(module, { [WATERBEAR_MODULE]: { [YIELD_IMPORT]: () => { calls++; return 100; } } });
    // 1000 outer iterations, 10 inner each: 11,000 loop-body entries.
    t.is((instance.exports.spin as (n: number) => number)(1000), 1000);
    t.is(calls, 1 + Math.floor((11_000 - INITIAL_YIELD_COUNTDOWN) / 100));
  } finally {
    m.dispose();
  }
});

test('the yield pacer aims at one yield per target interval, within bounds', (t) => {
  const p = new YieldPacer();
  let now = 0n;
  let c = p.next(now);
  t.is(c, INITIAL_YIELD_COUNTDOWN);
  // Yields far too often: the countdown doubles up to the maximum.
  for (let i = 0; i < 40; i++) { now += 1000n; c = p.next(now); }
  t.is(c, MAX_YIELD_COUNTDOWN);
  // Yields far too rarely: it halves down to the minimum.
  for (let i = 0; i < 40; i++) { now += BigInt(YIELD_INTERVAL_TARGET_US) * 10_000n; c = p.next(now); }
  t.is(c, MIN_YIELD_COUNTDOWN);
  // On target: it stays.
  now += BigInt(YIELD_INTERVAL_TARGET_US) * 1000n;
  const steady = p.next(now);
  now += BigInt(YIELD_INTERVAL_TARGET_US) * 1000n;
  t.is(p.next(now), steady);
});

/** Run compute.wasm, asking for a suspension every `everyMs` after the previous one; latencies in ms. */
async function suspendLatencies(yieldPoints: boolean, rounds: number, everyMs: number): Promise<{ latenciesMs: number[]; stdout: string; code: number | null; wallMs: number }> {
  const latenciesMs: number[] = [];
  let requestedAt = 0n;
  const ask = (lvm: Lvm): void => {
    requestedAt = lvm.abi.now('monotonic') + BigInt(everyMs) * NS_PER_MS;
    lvm.requestSuspend(requestedAt);
  };
  const g = await startTrackedGuest('test/compute', {
    yieldPoints, env: [`ROUNDS=${rounds}`],
    hooks: {
      onSuspended: (lvm) => {
        if (lvm.suspended?.forced === true) latenciesMs.push(Number(lvm.abi.now('monotonic') - requestedAt) / 1e6);
        ask(lvm);
      },
    },
  });
  ask(g.lvm);
  const t0 = performance.now();
  const exit = await g.run();
  return { latenciesMs, stdout: g.stdout(), code: exit.kind === 'exit' ? exit.code : null, wallMs: performance.now() - t0 };
}

test.serial('a compute loop with yield points is suspended within a bounded time of a request, and computes the same', async (t) => {
  const ROUNDS = 60;
  const plain = await suspendLatencies(false, ROUNDS, 20);
  const yielding = await suspendLatencies(true, ROUNDS, 20);
  t.is(plain.code, 0);
  t.is(yielding.code, 0);
  t.is(yielding.stdout, plain.stdout);
  t.regex(yielding.stdout, /done \d+\n$/);
  const max = (xs: number[]): number => Math.max(...xs);
  t.log(`run ${plain.wallMs.toFixed(0)} ms plain, ${yielding.wallMs.toFixed(0)} ms with yield points; ` +
    `suspension latency after a due request: plain max ${max(plain.latenciesMs).toFixed(1)} ms (${plain.latenciesMs.length} suspensions), ` +
    `yield points max ${max(yielding.latenciesMs).toFixed(2)} ms (${yielding.latenciesMs.length} suspensions)`);
  t.true(plain.wallMs > 200, 'the guest must compute for more than 200 ms');
  // With yield points the guest stops every ~20 ms; without, only at its prints (every 10 rounds).
  t.true(yielding.latenciesMs.length >= Math.floor(yielding.wallMs / 20 / 2), `${yielding.latenciesMs.length} suspensions in ${yielding.wallMs.toFixed(0)} ms`);
  t.true(max(yielding.latenciesMs) < 25, `max latency ${max(yielding.latenciesMs).toFixed(2)} ms`);
});
