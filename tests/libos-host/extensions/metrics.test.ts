import test from 'ava';
import { LATENCY_BUCKET_BOUNDS_US, bucketIndex } from '../../../libos-host/extensions/latency-histogram.js';
import { MetricsExtension } from '../../../libos-host/extensions/metrics.js';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { FakeAbi } from './fake-abi.js';

test('metrics count calls, errors, WOULD_BLOCK and bytes per call', (t) => {
  const lower = new FakeAbi();
  const m = new MetricsExtension(lower);
  const h = lower.connection();
  lower.push(h, 'abcde');
  m.read(h, new Uint8Array(3));
  m.read(h, new Uint8Array(3));
  m.read(h, new Uint8Array(3));
  m.read(999, new Uint8Array(3));
  m.write(h, new Uint8Array(7));
  const s = m.snapshot();
  t.like(s.calls.read, { count: 4, errors: 1, wouldBlock: 1, errorsByCode: { EBADF: 1 } });
  t.like(s.calls.write, { count: 1, errors: 0 });
  t.is(s.bytesRead, 5);
  t.is(s.bytesWritten, 7);
  t.is(s.calls.poll, undefined);
});

test('latency lands in fixed log-scale microsecond buckets', async (t) => {
  const lower = new FakeAbi();
  const m = new MetricsExtension(lower);
  const w = m.wait([], lower.timeNs + 3_000_000n); // 3 ms
  lower.advance(3_000_000n);
  await w;
  m.now('monotonic'); // 0 µs on the virtual clock
  const s = m.snapshot();
  const wait = s.calls.wait!.latencyUs;
  t.deepEqual(wait.boundsUs, [...LATENCY_BUCKET_BOUNDS_US]);
  t.is(wait.counts.length, LATENCY_BUCKET_BOUNDS_US.length + 1);
  t.is(wait.counts[LATENCY_BUCKET_BOUNDS_US.indexOf(5_000)], 1);
  t.is(wait.sumUs, 3000);
  t.is(s.calls.now!.latencyUs.counts[0], 1);
  t.is(bucketIndex(1), 0);
  t.is(bucketIndex(1.5), 1);
  t.is(bucketIndex(2e6), LATENCY_BUCKET_BOUNDS_US.length);
});

test('snapshot is a plain copy that later calls do not change', (t) => {
  const m = new MetricsExtension(new FakeAbi());
  m.now('monotonic');
  const s = m.snapshot();
  m.now('monotonic');
  t.is(s.calls.now!.count, 1);
  t.deepEqual(JSON.parse(JSON.stringify(s)), s);
});

test('counters continue after saveState/restoreState on a new instance', (t) => {
  const lowerA = new FakeAbi();
  const a = new MetricsExtension(lowerA);
  const h = lowerA.connection();
  a.write(h, new Uint8Array(10));
  a.read(999, new Uint8Array(1));
  const lowerB = new FakeAbi();
  const b = new MetricsExtension(lowerB);
  b.restoreState(JSON.parse(JSON.stringify(a.saveState())));
  t.deepEqual(b.snapshot(), a.snapshot());
  b.write(lowerB.connection(), new Uint8Array(5));
  t.is(b.snapshot().bytesWritten, 15);
  t.is(b.snapshot().calls.write!.count, 2);
  t.true(isWaterbearError(t.throws(() => b.restoreState({ v: 1, calls: { read: { count: 1 } }, bytesRead: 0, bytesWritten: 0 })), 'WB_CHECKPOINT_CORRUPT'));
  t.true(isWaterbearError(t.throws(() => b.restoreState({ v: 0 })), 'WB_CHECKPOINT_VERSION'));
});
