import test from 'ava';
import { JOIN_BACKOFF_MAX_MS, JOIN_BACKOFF_MIN_MS, JoinBackoff } from '../../../replica/backup/join-backoff.js';

test('after a store failure a replica waits before asking to join again, doubling per failed attempt up to the maximum', (t) => {
  const b = new JoinBackoff();
  t.true(b.mayAsk(0));
  b.failed(0);
  t.false(b.mayAsk(JOIN_BACKOFF_MIN_MS - 1));
  // The primary's resends inside one wait are one failure.
  b.failed(50);
  b.failed(300);
  t.true(b.mayAsk(JOIN_BACKOFF_MIN_MS));
  let now = JOIN_BACKOFF_MIN_MS;
  const waits: number[] = [];
  for (let i = 0; i < 6; i++) {
    b.failed(now);
    let wait = 0;
    while (!b.mayAsk(now + wait)) wait += 100;
    waits.push(wait);
    now += wait;
  }
  t.deepEqual(waits, [2_000, 4_000, 8_000, 8_000, 8_000, 8_000].map((w) => Math.min(w, JOIN_BACKOFF_MAX_MS)));
});

test('a stored checkpoint ends the backoff: the next failure waits the shortest time again', (t) => {
  const b = new JoinBackoff();
  b.failed(0);
  b.failed(1_000);
  b.failed(3_000);
  b.stored();
  t.true(b.mayAsk(3_001));
  b.failed(3_001);
  t.false(b.mayAsk(3_001 + JOIN_BACKOFF_MIN_MS - 1));
  t.true(b.mayAsk(3_001 + JOIN_BACKOFF_MIN_MS));
});
