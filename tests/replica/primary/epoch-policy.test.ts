import test from 'ava';
import { EpochPolicy } from '../../../replica/primary/epoch-policy.js';

const opts = { maxIntervalMs: 25, minIntervalMs: 2, maxInflightEpochs: 4, maxLagBytes: 1000 };

test('a guest that blocks with held output is checkpointed at once, but not within the min interval', (t) => {
  const p = new EpochPolicy(opts, 0);
  t.deepEqual(p.decide(1, true, true), { kind: 'wait', untilMs: 2 });
  t.deepEqual(p.decide(2, true, true), { kind: 'checkpoint' });
  p.checkpointed(2);
  t.deepEqual(p.decide(3, true, true), { kind: 'wait', untilMs: 4 });
});

test('a running guest without output is checkpointed at the max interval; an idle one never', (t) => {
  const p = new EpochPolicy(opts, 100);
  t.deepEqual(p.decide(110, false, true), { kind: 'wait', untilMs: 125 });
  t.deepEqual(p.decide(125, false, true), { kind: 'checkpoint' });
  t.deepEqual(p.decide(500, false, false), { kind: 'none' });
  t.is(p.nextDeadlineMs(), 125);
});

test('the guest is throttled when too many epochs or bytes are unacknowledged', (t) => {
  const p = new EpochPolicy(opts, 0);
  t.false(p.mustThrottle(3, 999));
  t.true(p.mustThrottle(4, 0));
  t.true(p.mustThrottle(0, 1000));
});

test('a min interval above the max interval is refused', (t) => {
  const err = t.throws(() => new EpochPolicy({ ...opts, minIntervalMs: 50 }, 0));
  t.is((err as { code?: string }).code, 'WB_CONFIG_INVALID');
});
