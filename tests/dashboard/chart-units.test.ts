import test from 'ava';
import { BINARY_INCRS, BYTES, COUNT, fmtBytes, fmtClock, isolatedPoints, MS, rangeFrom0 } from '../../dashboard/ui/chart-units.js';

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

test('bytes read in binary units, with no ".0"', (t) => {
  t.is(fmtBytes(0), '0 B');
  t.is(fmtBytes(1000), '1000 B');
  t.is(fmtBytes(1024), '1 KiB');
  t.is(fmtBytes(1536), '1.5 KiB');
  t.is(fmtBytes(2 * 1024 * 1024), '2 MiB');
  t.is(fmtBytes(150 * 1024), '150 KiB');
  t.is(fmtBytes(null), '–');
});

/** The ticks uPlot puts on a 0..top axis: the multiples of the least spacing in `incrs` that leaves `space` px between ticks on `px` px. */
function ticks(incrs: number[], top: number, px: number, space: number): number[] {
  const step = incrs.find((i) => (i * px) / top >= space)!;
  return Array.from({ length: Math.floor(top / step) + 1 }, (_, k) => k * step);
}

test('byte axes tick on round binary values: 1 KiB, not 1000 B; 1 MiB, 2 MiB, not 1.9 MiB', (t) => {
  t.true(BINARY_INCRS.every((x) => Number.isInteger(Math.log2(x))), 'powers of two');
  t.is(BYTES.incrs, BINARY_INCRS);
  // An axis of zeros (0..1 KiB), and guest memory of about 4 MiB, on a 150 px axis with ticks 30 px apart.
  t.deepEqual(ticks(BINARY_INCRS, 1024, 150, 30).map(fmtBytes), ['0 B', '256 B', '512 B', '768 B', '1 KiB']);
  t.deepEqual(ticks(BINARY_INCRS, 4.2 * 1024 * 1024, 150, 30).map(fmtBytes), ['0 B', '1 MiB', '2 MiB', '3 MiB', '4 MiB']);
  for (const top of [3000, 40_000, 700_000, 9e6, 3e9]) {
    for (const label of ticks(BINARY_INCRS, top, 150, 30).map(fmtBytes)) t.regex(label, /^(0 B|\d+(\.5)? (B|KiB|MiB|GiB))$/, `top ${top}`);
  }
});
