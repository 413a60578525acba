import test from 'ava';
import { median, nearestRank, quantile } from '../../bench/lib/stats.js';

test('median takes the middle value, or the mean of the two middle values', (t) => {
  t.is(median([3, 1, 2]), 2);
  t.is(median([4, 1, 3, 2]), 2.5);
  t.throws(() => median([]), { instanceOf: RangeError });
});

test('nearestRank: the smallest value with at least p% of the list at or below it', (t) => {
  const xs = [10, 20, 30, 40];
  t.is(nearestRank(xs, 50), 20);
  t.is(nearestRank(xs, 51), 30);
  t.is(nearestRank(xs, 99), 40);
  t.is(nearestRank(xs, 100), 40);
  t.is(nearestRank(xs, 0), 10);
  t.is(nearestRank([7], 99), 7);
});

test('quantile: the nearest rank below, NaN for an empty list', (t) => {
  t.is(quantile([10, 20, 30, 40], 0.5), 30);
  t.is(quantile([10, 20, 30, 40], 0.99), 40);
  t.true(Number.isNaN(quantile([], 0.5)));
});
