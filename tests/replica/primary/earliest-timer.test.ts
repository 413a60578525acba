import test from 'ava';
import { EarliestTimer, type TimerFns } from '../../../replica/primary/earliest-timer.js';

/** Timers on a hand-driven clock: `advance` runs what falls due, in order. */
function fakeTimers(): { now: () => number; timers: TimerFns; advance: (ms: number) => void } {
  let now = 0;
  let next = 1;
  const due = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    timers: { set: (fn, delayMs) => { const id = next++; due.set(id, { at: now + delayMs, fn }); return id; }, clear: (id) => { due.delete(id as number); } },
    advance: (ms) => {
      const end = now + ms;
      for (;;) {
        const first = [...due.entries()].filter(([, d]) => d.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (first === undefined) break;
        due.delete(first[0]);
        now = first[1].at;
        first[1].fn();
      }
      now = end;
    },
  };
}

/** An EarliestTimer on fake timers, and a log of what fired when. */
function setup(): { f: ReturnType<typeof fakeTimers>; timer: EarliestTimer; fired: string[] } {
  const f = fakeTimers();
  return { f, timer: new EarliestTimer(f.now, f.timers), fired: [] };
}

test('an earlier deadline replaces a later pending one: a max-interval wait does not hold a min-interval checkpoint', (t) => {
  const { f, timer, fired } = setup();
  timer.schedule(25, () => fired.push(`max@${f.now()}`));
  timer.schedule(1, () => fired.push(`min@${f.now()}`));
  f.advance(30);
  t.deepEqual(fired, ['min@1']);
});

test('a later deadline does not move an earlier pending one; after it fires, a new one can be set', (t) => {
  const { f, timer, fired } = setup();
  timer.schedule(1, () => fired.push(`a@${f.now()}`));
  timer.schedule(25, () => fired.push(`b@${f.now()}`));
  f.advance(2);
  timer.schedule(10, () => fired.push(`c@${f.now()}`));
  f.advance(30);
  t.deepEqual(fired, ['a@1', 'c@10']);
});

test('cancel drops the pending callback', (t) => {
  const { f, timer, fired } = setup();
  timer.schedule(5, () => fired.push('first'));
  timer.cancel();
  f.advance(10);
  t.deepEqual(fired, []);
  timer.schedule(12, () => fired.push('second'));
  f.advance(10);
  t.deepEqual(fired, ['second']);
});
