import test from 'ava';
import { FaultExtension } from '../../../libos-host/extensions/fault.js';
import { parseFaultRule } from '../../../libos-host/extensions/registry.js';
import { FakeAbi, settle } from './fake-abi.js';

const MS = 1_000_000n;
const S = 1_000_000_000n;

function setup(...rules: string[]): { lower: FakeAbi; f: FaultExtension } {
  const lower = new FakeAbi();
  return { lower, f: new FaultExtension(lower, rules.map(parseFaultRule)) };
}

test('a realtime jump shifts realtime only', (t) => {
  const { lower, f } = setup('call=now,clock=realtime,jump=+5s');
  t.is(f.now('realtime') - lower.now('realtime'), 5n * S);
  t.is(f.now('monotonic'), lower.now('monotonic'));
});

test('a realtime jump may go backwards; after=n delays it to the n+1-th call', (t) => {
  const { lower, f } = setup('call=now,clock=realtime,jump=-2s,after=2');
  const r1 = f.now('realtime');
  t.is(r1, lower.now('realtime'));
  t.is(f.now('realtime'), lower.now('realtime'));
  t.is(f.now('realtime'), lower.now('realtime') - 2n * S);
});

test('a backward monotonic jump is clamped: the clock stands still instead of going back', (t) => {
  const { lower, f } = setup('call=now,clock=monotonic,jump=-1s,after=1');
  const t0 = f.now('monotonic');
  t.is(f.now('monotonic'), t0); // jumped back 1 s: clamped
  lower.advance(500n * MS);
  t.is(f.now('monotonic'), t0);
  lower.advance(600n * MS);
  t.is(f.now('monotonic'), t0 + 100n * MS);
});

test('drift scales elapsed time from activation', (t) => {
  const { lower, f } = setup('call=now,clock=monotonic,drift=2');
  const t0 = f.now('monotonic');
  lower.advance(3n * MS);
  t.is(f.now('monotonic') - t0, 6n * MS);
});

test('wait deadlines on a drifted clock map back to the real clock', async (t) => {
  const { lower, f } = setup('call=now,clock=monotonic,drift=2');
  const deadline = f.now('monotonic') + 10n * MS; // 10 ms of faulted time = 5 ms of real time
  let woke = false;
  const w = f.wait([], deadline).then(() => { woke = true; });
  lower.advance(4n * MS);
  await settle();
  t.false(woke);
  lower.advance(1n * MS);
  await w;
  t.true(f.now('monotonic') >= deadline);
});

test('wait deadlines on a jumped clock do not fire early', async (t) => {
  const { lower, f } = setup('call=now,clock=monotonic,jump=+5s');
  const deadline = f.now('monotonic') + 10n * MS;
  let woke = false;
  const w = f.wait([], deadline).then(() => { woke = true; });
  await settle();
  t.false(woke);
  lower.advance(10n * MS);
  await w;
  t.true(woke);
});

test('a restored clock fault continues its offset and call count in another instance', (t) => {
  const rules = ['call=now,clock=realtime,drift=2', 'call=now,clock=monotonic,jump=+1s,after=3'];
  const a = setup(...rules);
  a.f.now('realtime');
  a.f.now('monotonic');
  a.lower.advance(1n * MS);
  const saved = JSON.parse(JSON.stringify(a.f.saveState())) as unknown;
  const b = setup(...rules);
  b.lower.advance(999n * S); // another process: unrelated clock values
  b.f.restoreState(saved);
  t.is(b.f.now('realtime') - b.lower.now('realtime'), 1n * MS);
  t.is(a.f.now('realtime') - a.lower.now('realtime'), 1n * MS);
  // Monotonic: one of the after=3 calls was made before the save, so calls 2 and 3 are real and 4 jumps.
  t.is(b.f.now('monotonic'), b.lower.now('monotonic'));
  t.is(b.f.now('monotonic'), b.lower.now('monotonic'));
  t.is(b.f.now('monotonic') - b.lower.now('monotonic'), 1n * S);
});
