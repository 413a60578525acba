import test from 'ava';
import { BYTES, COUNT, fmtClock, isolatedPoints, MS, rangeFrom0 } from '../../dashboard/ui/chart-units.js';

test('a value between two gaps is drawn as a dot; values with a neighbour are left to the line', (t) => {
  t.deepEqual(isolatedPoints([null, 5, null, 1, 2, null, 7]), [1, 6]);
  t.deepEqual(isolatedPoints([3, null, null]), [0]);
  t.deepEqual(isolatedPoints([3]), [0]);
  t.is(isolatedPoints([1, 2, 3]), null);
  t.is(isolatedPoints([null, undefined, null]), null);
  t.is(isolatedPoints([]), null);
});

test('an axis of zeros spans a unit wide enough for distinct labels', (t) => {
  t.deepEqual(rangeFrom0(BYTES, 0, 0), [0, 1024]);
  t.deepEqual(rangeFrom0(MS, 0, 0), [0, 1]);
  t.deepEqual(rangeFrom0(COUNT, null, null), [0, 1]);
  t.deepEqual(rangeFrom0(BYTES, 10, 40_000), [0, 40_000], 'real data keeps its own top, from 0');
  t.deepEqual(rangeFrom0(COUNT, -2, 5), [-2, 5]);
  // The labels uPlot would put on a 0..top axis in five steps differ from one another.
  for (const u of [BYTES, MS, COUNT]) {
    const [lo, hi] = rangeFrom0(u, 0, 0);
    const labels = [0, 1, 2, 3, 4].map((k) => u.fmt(lo + ((hi - lo) * k) / 4));
    t.is(new Set(labels).size, labels.length, labels.join(', '));
  }
});

test('the time axis reads as the local time of day', (t) => {
  const d = new Date(2026, 10, 24, 9, 5, 7);
  t.is(fmtClock(d.getTime() / 1000), '09:05:07');
});
