import test from 'ava';
import { RecentAverage } from '../../dashboard/recent-average.js';

test('the recent average covers only the window: an old slow spell stops counting once it is past', (t) => {
  const r = new RecentAverage(60_000);
  t.is(r.update(0, 'a', 0, 0), null, 'nothing counted yet');
  t.is(r.update(1_000, 'a', 500, 1), 500, 'one slow epoch');
  let v: number | null = null;
  // 1 ms epochs every second for two minutes: the 500 ms one leaves the window after 60 s.
  for (let s = 2; s <= 120; s++) v = r.update(s * 1000, 'a', 500 + (s - 1), s);
  t.is(v, 1);
  // The whole-tenure average would still read (500 + 119) / 120 ms.
  t.true((500 + 119) / 120 > 5);
});

test('the recent average is null when nothing was counted in the window (an idle service)', (t) => {
  const r = new RecentAverage(10_000);
  r.update(0, 'a', 0, 0);
  t.is(r.update(1_000, 'a', 3, 1), 3);
  for (let s = 2; s <= 20; s++) r.update(s * 1000, 'a', 3, 1);
  t.is(r.update(21_000, 'a', 3, 1), null);
  t.is(r.update(22_000, 'a', 7, 2), 4, 'the next epoch alone');
});

test('a new primary, or counters that went backwards, start the window over', (t) => {
  const r = new RecentAverage(60_000);
  r.update(0, 'a', 0, 0);
  t.is(r.update(1_000, 'a', 100, 10), 10);
  t.is(r.update(2_000, 'b', 50, 1), null, 'b\'s tenure so far is one snapshot: no difference yet');
  t.is(r.update(3_000, 'b', 52, 2), 2);
  t.is(r.update(4_000, 'b', 1, 1), null, 'restarted counters');
  t.is(r.update(5_000, 'b', 4, 2), 3);
  r.reset();
  t.is(r.update(6_000, 'b', 10, 5), null);
});
