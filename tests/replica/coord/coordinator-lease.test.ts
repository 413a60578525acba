import test from 'ava';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { decodeView, encodeView, validateView, validateViewProposal, viewConflict } from '../../../replica/coord/coordinator.js';
import {
  grantorExpiryMs,
  holderDeadlineMs,
  LeaseHolder,
  LeaseTable,
  resolveLeaseTiming,
  type MonotonicClock,
} from '../../../replica/coord/lease.js';
import { SeededRandom } from '../../../replica/coord/raft/raft-random.js';

class FakeClock implements MonotonicClock {
  constructor(public now = 0) {}
  nowMs(): number {
    return this.now;
  }
}

test('the holder always stops before the grantor considers the lease expired, for any clock rates within the bound', (t) => {
  const timing = resolveLeaseTiming({ ttlMs: 1000, maxDriftRate: 0.01, marginMs: 5 });
  const rng = new SeededRandom(42);
  for (let i = 0; i < 10_000; i++) {
    // Real times; each clock runs at a rate within 1 ± 1%.
    const holderRate = 1 + (rng.nextFloat() * 2 - 1) * timing.maxDriftRate;
    const grantorRate = 1 + (rng.nextFloat() * 2 - 1) * timing.maxDriftRate;
    const realSend = rng.nextFloat() * 1e6;
    const realReceive = realSend + rng.nextFloat() * 500;
    const holderLocalSend = rng.nextFloat() * 1e6;
    const grantorLocalReceive = rng.nextFloat() * 1e6;
    const holderStopsReal = realSend + (holderDeadlineMs(holderLocalSend, timing) - holderLocalSend) / holderRate;
    const grantorExpiresReal = realReceive + (grantorExpiryMs(grantorLocalReceive, timing) - grantorLocalReceive) / grantorRate;
    if (!(holderStopsReal < grantorExpiresReal)) t.fail(`holder stops at ${holderStopsReal}, grantor expires at ${grantorExpiresReal}`);
  }
  t.pass();
});

test('a lease holder is expired until confirmed, then until its deadline', (t) => {
  const clock = new FakeClock(100);
  const holder = new LeaseHolder(clock, resolveLeaseTiming({ ttlMs: 1000, maxDriftRate: 0.01, marginMs: 10 }));
  t.true(holder.expired());
  t.is(holder.lastConfirmedMs, null);
  const sentAt = holder.beginRenewal();
  clock.now = 400; // the confirmation arrives later; the lease counts from the send
  holder.confirm(sentAt);
  t.is(holder.lastConfirmedMs, 100);
  t.is(holder.validUntilMs, 100 + 990 - 10);
  clock.now = 1079;
  t.false(holder.expired());
  clock.now = 1080;
  t.true(holder.expired());
  holder.confirm(50); // a late, older confirmation does not move the lease backwards
  t.is(holder.lastConfirmedMs, 100);
});

test('the grantor counts every lease as renewed when it takes over', (t) => {
  const clock = new FakeClock(0);
  const table = new LeaseTable(clock, resolveLeaseTiming({ ttlMs: 1000, maxDriftRate: 0, marginMs: 0 }));
  t.true(table.expired('w1'), 'never renewed');
  table.renew('w1');
  clock.now = 999;
  t.false(table.expired('w1'));
  clock.now = 1000;
  t.true(table.expired('w1'));
  clock.now = 5000;
  table.assumeAllRenewed();
  t.false(table.expired('w1'));
  t.false(table.expired('never-seen'));
  clock.now = 6000;
  t.true(table.expired('never-seen'));
});

test('lease timing is validated', (t) => {
  t.true(isWaterbearError(t.throws(() => resolveLeaseTiming({ ttlMs: 1 })), 'WB_CONFIG_INVALID'));
  t.true(isWaterbearError(t.throws(() => resolveLeaseTiming({ maxDriftRate: 0.5 })), 'WB_CONFIG_INVALID'));
  t.true(isWaterbearError(t.throws(() => resolveLeaseTiming({ ttlMs: 100, marginMs: 50 })), 'WB_CONFIG_INVALID'));
});

test('views are validated and round-trip through their stored form', (t) => {
  const v = { view: 3, primary: 'w1', backups: ['w2', 'w3'] };
  t.deepEqual(decodeView(encodeView(v)), v);
  for (const bad of [
    { view: 0, primary: 'w1', backups: [] },
    { view: 1, primary: '', backups: [] },
    { view: 1, primary: 'w1', backups: ['w1'] },
    { view: 1, primary: 'w1', backups: ['w2', 'w2'] },
  ]) {
    t.true(isWaterbearError(t.throws(() => validateView(bad)), 'WB_CONFIG_INVALID'));
  }
  t.true(isWaterbearError(t.throws(() => validateViewProposal(1, { view: 3, primary: 'w1', backups: [] })), 'WB_CONFIG_INVALID'));
  t.true(isWaterbearError(t.throws(() => decodeView('{"view":1}')), 'WB_PROTOCOL'));
  const conflict = viewConflict(v);
  t.true(isWaterbearError(conflict, 'WB_VIEW_CONFLICT'));
  t.deepEqual(conflict.details?.current, v);
});
