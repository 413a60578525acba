import test from 'ava';
import { EpochPolicy } from '../../../replica/primary/epoch-policy.js';

const opts = { maxIntervalMs: 25, minIntervalMs: 2, maxInflightEpochs: 4, pipelineDepth: 4, maxLagBytes: 1000 };

test('a guest that blocks with held output is checkpointed at once, but not within the min interval of one in flight', (t) => {
  const p = new EpochPolicy(opts, 0);
  t.deepEqual(p.decide(1, true, true, 1), { kind: 'wait', untilMs: 2 });
  t.deepEqual(p.decide(2, true, true, 1), { kind: 'checkpoint' });
  p.checkpointed(2);
  t.deepEqual(p.decide(3, true, true, 1), { kind: 'wait', untilMs: 4 });
});

test('with nothing in flight, held output is checkpointed at once, even within the min interval', (t) => {
  const p = new EpochPolicy(opts, 0);
  p.checkpointed(10);
  t.deepEqual(p.decide(10.5, true, true, 0), { kind: 'checkpoint' }, 'the backup is idle: waiting would only delay the reply');
  t.deepEqual(p.decide(10.5, true, true, 1), { kind: 'wait', untilMs: 12 });
  t.deepEqual(p.decide(10.5, false, true, 0), { kind: 'wait', untilMs: 35 }, 'without held output the max interval still applies');
});

test('a running guest without output is checkpointed at the max interval; an idle one never', (t) => {
  const p = new EpochPolicy(opts, 100);
  t.deepEqual(p.decide(110, false, true), { kind: 'wait', untilMs: 125 });
  t.deepEqual(p.decide(125, false, true), { kind: 'checkpoint' });
  t.deepEqual(p.decide(500, false, false), { kind: 'none' });
  t.is(p.nextDeadlineMs(), 125);
});

test('time blocked with nothing run does not count toward the max interval', (t) => {
  const p = new EpochPolicy(opts, 0);
  p.checkpointed(10); // the guest blocks right after this checkpoint, idle until 60
  p.runsFrom(60);
  t.is(p.nextDeadlineMs(), 85);
  t.deepEqual(p.decide(60.2, false, true), { kind: 'wait', untilMs: 85 }, 'no empty epoch at the first suspension after an idle spell');
  t.deepEqual(p.decide(85, false, true), { kind: 'checkpoint' }, 'a guest that then runs is still checkpointed at the max interval');
  t.deepEqual(p.decide(60.2, true, true, 1), { kind: 'checkpoint' }, 'the min interval still counts from the checkpoint');
  p.checkpointed(90);
  t.is(p.nextDeadlineMs(), 115);
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

test('a due checkpoint waits for an acknowledgement while the pipeline is full; the guest is not throttled for it', (t) => {
  const p = new EpochPolicy({ ...opts, pipelineDepth: 2 }, 0);
  t.deepEqual(p.decide(5, true, true, 1), { kind: 'checkpoint' });
  t.deepEqual(p.decide(5, true, true, 2), { kind: 'after-ack' });
  t.deepEqual(p.decide(30, false, true, 2), { kind: 'after-ack' }, 'the max interval waits too');
  t.deepEqual(p.decide(1, true, true, 2), { kind: 'wait', untilMs: 2 }, 'not due yet: a plain wait');
  t.deepEqual(p.decide(30, false, false, 2), { kind: 'none' });
  t.false(p.mustThrottle(2, 0));
});

test('a pipeline depth of 0 or above the max in-flight epochs is refused', (t) => {
  for (const pipelineDepth of [0, 5, Number.NaN]) {
    const err = t.throws(() => new EpochPolicy({ ...opts, pipelineDepth }, 0));
    t.is((err as { code?: string }).code, 'WB_CONFIG_INVALID');
  }
});
