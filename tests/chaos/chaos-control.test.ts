import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { CheckpointStore, type StoreFault } from '../../checkpoint/store/checkpoint-store.js';
import { isWaterbearError } from '../../libos-host/errors.js';
import { CHAOS_CONTROL_ENV, ChaosControl, SkewedClock, parseChaosControl, type ChaosControlApplied } from '../../replica/chaos/chaos-control.js';
import { SyntheticVfs, expectedMemory, syntheticCheckpoint } from '../checkpoint/helpers/synthetic.js';

function tempDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'wb-chaos-control-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a store whose disk is full or fails refuses the epoch with WB_STORE_FULL / WB_STORE_IO and keeps the previous one', (t) => {
  let fault: StoreFault | null = null;
  const store = CheckpointStore.open(tempDir(t), { faultHook: () => fault });
  t.teardown(() => store.close());
  const vfs = new SyntheticVfs();
  for (let e = 1; e <= 3; e++) store.commit(syntheticCheckpoint(e, vfs.step(e)));
  fault = { errno: 'ENOSPC' };
  const full = t.throws(() => store.commit(syntheticCheckpoint(4, vfs.step(4))));
  t.true(isWaterbearError(full, 'WB_STORE_FULL'), String(full));
  t.is(store.latestEpoch(), 3, 'nothing of epoch 4 is visible');
  t.is(Buffer.compare(store.loadImage()!.lvm.memory, expectedMemory(3)), 0, 'epoch 3 is intact');
  fault = { errno: 'EIO' };
  const io = t.throws(() => store.commit(syntheticCheckpoint(4, { full: false, bytes: new Uint8Array(0) })));
  t.true(isWaterbearError(io, 'WB_STORE_IO'), String(io));
  t.is(store.latestEpoch(), 3);
  // Healed: the chain continues from what was stored.
  fault = null;
  store.commit(syntheticCheckpoint(4, { full: false, bytes: new Uint8Array(0) }));
  t.is(store.latestEpoch(), 4);
});

test('a slow store delays the commit by the simulated time and then stores it', (t) => {
  const store = CheckpointStore.open(tempDir(t), { faultHook: () => ({ delayMs: 120 }) });
  t.teardown(() => store.close());
  const vfs = new SyntheticVfs();
  const start = performance.now();
  store.commit(syntheticCheckpoint(1, vfs.step(1)));
  t.true(performance.now() - start >= 115);
  t.is(store.latestEpoch(), 1);
});

test('a skewed clock jumps forward and back and drifts, continuously between changes', (t) => {
  let real = 1000;
  const c = new SkewedClock(() => real);
  t.is(c.nowMs(), 1000);
  c.set(5000, 1);
  t.is(c.nowMs(), 6000);
  real += 100;
  t.is(c.nowMs(), 6100);
  c.set(-8000, 2);
  t.is(c.nowMs(), -1900);
  real += 100;
  t.is(c.nowMs(), -1700);
  c.set(0, 1); // heal: the rate is restored, the clock is not moved
  real += 50;
  t.is(c.nowMs(), -1650);
});

test('the chaos control file is validated: bad values are refused with WB_CONFIG_INVALID', (t) => {
  t.deepEqual(parseChaosControl('{"seq":3,"clock":{"jumpMs":-200,"rate":1.5},"store":{"errno":"EIO","delayMs":5}}', 'f'),
    { seq: 3, clock: { jumpMs: -200, rate: 1.5 }, store: { errno: 'EIO', delayMs: 5 } });
  for (const bad of ['nope', '{"seq":-1}', '{"seq":1,"clock":{"rate":0}}', '{"seq":1,"clock":{"jumpMs":1e9}}', '{"seq":1,"store":{"errno":"EPERM"}}', '{"seq":1,"store":{"delayMs":99999}}']) {
    const e = t.throws(() => parseChaosControl(bad, 'f'));
    t.true(isWaterbearError(e, 'WB_CONFIG_INVALID'), bad);
  }
});

test('a member obeys its control file and reports what it applied', async (t) => {
  const file = join(tempDir(t), 'a.json');
  t.is(ChaosControl.fromEnv({}), null, 'off without the variable');
  const warnings: string[] = [];
  const ctl = ChaosControl.fromEnv({ [CHAOS_CONTROL_ENV]: file }, (m) => warnings.push(m))!;
  t.teardown(() => ctl.close());
  t.regex(warnings[0], /CHAOS MODE/);
  t.is(ctl.storeFault(), null);
  writeFileSync(file, JSON.stringify({ seq: 1, clock: { jumpMs: 10_000, rate: 1 }, store: { errno: 'ENOSPC' } }));
  ctl.poll();
  t.true(ctl.clock.nowMs() - performance.now() > 9_000);
  t.deepEqual(ctl.storeFault(), { errno: 'ENOSPC' });
  await new Promise((r) => setImmediate(r));
  const applied = JSON.parse(readFileSync(`${file}.applied`, 'utf8')) as ChaosControlApplied;
  t.is(applied.seq, 1);
  t.is(applied.storeFailures, 1);
  writeFileSync(file, JSON.stringify({ seq: 2 }));
  ctl.poll();
  t.is(ctl.storeFault(), null, 'healed');
  t.true(ctl.clock.nowMs() - performance.now() > 9_000, 'healing does not move the clock back');
});
