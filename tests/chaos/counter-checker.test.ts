import test from 'ava';
import { checkAvailability } from '../../chaos/checker/availability.js';
import { checkCounter } from '../../chaos/checker/counter-checker.js';
import type { Op } from '../../chaos/workload/history.js';

let id = 0;
const op = (o: Partial<Op> & Pick<Op, 'f' | 'invokeMs' | 'completeMs' | 'status'>): Op => ({ id: id++, process: 0, key: 'counter', ...o });
const incr = (v: number | null, a: number, b: number | null): Op =>
  (v === null ? op({ f: 'incr', invokeMs: a, completeMs: b, status: 'unknown' }) : op({ f: 'incr', invokeMs: a, completeMs: b, status: 'ok', result: v }));
const final = (v: string | null, at: number): Op => op({ f: 'read', invokeMs: at, completeMs: at + 1, status: 'ok', result: v, final: true });

test('counter: acknowledged plus some unknown INCRs explain the final value', (t) => {
  const c = checkCounter([incr(1, 0, 10), incr(2, 5, 20), incr(null, 30, null), incr(null, 40, null), final('3', 100)], 'counter');
  t.is(c.valid, true);
  t.is(c.acknowledgedIncrs, 2);
  t.is(c.unknownIncrs, 2);
});

test('counter: a final value below the acknowledged INCRs is a lost increment', (t) => {
  const c = checkCounter([incr(1, 0, 10), incr(2, 20, 30), incr(3, 40, 50), final('2', 100)], 'counter');
  t.is(c.valid, false);
  t.is(c.boundsOk, false);
  t.is(c.aboveFinal.length, 1);
});

test('counter: a final value above acknowledged + unknown is invented', (t) => {
  t.is(checkCounter([incr(1, 0, 10), final('5', 100)], 'counter').valid, false);
});

test('counter: the same INCR result returned twice is a violation', (t) => {
  const c = checkCounter([incr(1, 0, 10), incr(1, 5, 15), incr(null, 20, null), final('2', 100)], 'counter');
  t.is(c.valid, false);
  t.is(c.duplicateResults[0].value, 1);
});

test('counter: a read that started after a larger value was seen must not go backwards', (t) => {
  const c = checkCounter([incr(1, 0, 10), incr(2, 20, 30), op({ f: 'read', invokeMs: 40, completeMs: 45, status: 'ok', result: '1' }), final('2', 100)], 'counter');
  t.is(c.valid, false);
  t.is(c.wentBackwards.length, 1);
});

test('counter: without a final read the answer is unknown', (t) => {
  t.is(checkCounter([incr(1, 0, 10)], 'counter').valid, 'unknown');
});

test('availability: gaps, unavailable windows and failover durations come from the history', (t) => {
  const ops = [
    op({ f: 'read', invokeMs: 0, completeMs: 100, status: 'ok', result: null }),
    op({ f: 'read', invokeMs: 150, completeMs: 1150, status: 'unknown' }),
    op({ f: 'read', invokeMs: 1200, completeMs: 1210, status: 'fail' }),
    op({ f: 'read', invokeMs: 1300, completeMs: 1400, status: 'ok', result: null }),
    op({ f: 'read', invokeMs: 1500, completeMs: 1600, status: 'ok', result: null }),
  ];
  const faults = [{ step: 0, kind: 'kill', target: 'primary', applied: ['a'], startMs: 120, endMs: 900 }];
  const views = [{ atMs: 0, primary: 'a', view: 1, backups: ['b'], protected: true }, { atMs: 800, primary: 'b', view: 2, backups: [], protected: false }];
  const a = checkAvailability(ops, faults, views, { startMs: 0, endMs: 1700 });
  t.is(a.ok, 3);
  t.is(a.unknown, 1);
  t.is(a.fail, 1);
  t.is(a.longestGapMs, 1300);
  t.deepEqual(a.unavailable, [{ fromMs: 100, toMs: 1400 }]);
  t.is(a.faults[0].firstSuccessAfterMs, 1400 - 120);
  t.is(a.failovers.length, 1);
  t.is(a.failovers[0].toPrimary, 'b');
  t.is(a.failovers[0].durationMs, 1280);
});
