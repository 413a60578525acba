import test from 'ava';
import { isWaterbearError } from '../../libos-host/errors.js';
import { ALL_FAULTS, FAULT_KINDS, STORAGE_FAULTS, generateSchedule, parseFaults } from '../../chaos/nemesis/schedule.js';
import { Prng } from '../../chaos/random/prng.js';

test('the same seed gives the same schedule; another seed another one', (t) => {
  const faults = parseFaults('all');
  const a = generateSchedule(new Prng(123).fork('schedule'), 123, 300_000, faults);
  const b = generateSchedule(new Prng(123).fork('schedule'), 123, 300_000, faults);
  const c = generateSchedule(new Prng(124).fork('schedule'), 124, 300_000, faults);
  t.deepEqual(a, b);
  t.notDeepEqual(a.steps, c.steps);
  t.true(a.steps.length > 10);
});

test('the schedule does not depend on what else draws from the run\'s generator', (t) => {
  const faults = parseFaults('kill,pause');
  const g1 = new Prng(9);
  const g2 = new Prng(9);
  for (let i = 0; i < 1000; i++) g2.fork(`client:${i % 5}`).nextUint32(); // clients draw in between
  t.deepEqual(generateSchedule(g1.fork('schedule'), 9, 60_000, faults), generateSchedule(g2.fork('schedule'), 9, 60_000, faults));
});

test('every requested fault appears in each round, with a valid target', (t) => {
  const s = generateSchedule(new Prng(5).fork('schedule'), 5, 60_000, parseFaults('kill:primary,pause:backup,partition,corrupt'));
  t.deepEqual(s.steps.slice(0, 4).map((x) => x.kind).sort(), ['corrupt', 'kill', 'partition', 'pause']);
  for (const step of s.steps) {
    if (step.kind === 'kill') t.is(step.target, 'primary');
    if (step.kind === 'pause') t.is(step.target, 'backup');
    t.true(step.holdMs > 0 && step.gapMs > 0);
  }
});

test('a short duration still gets one fault', (t) => {
  t.is(generateSchedule(new Prng(1), 1, 1000, parseFaults('kill')).steps.length, 1);
});

test('fault lists are validated with stable codes', (t) => {
  t.deepEqual(parseFaults('all').map((f) => f.kind), [...ALL_FAULTS]);
  t.deepEqual(parseFaults('all,storage,clock').map((f) => f.kind).sort(), [...FAULT_KINDS].sort());
  t.deepEqual(parseFaults('storage').map((f) => f.kind), [...STORAGE_FAULTS]);
  t.deepEqual(parseFaults('clock:witness,disk-full:backup').map((f) => `${f.kind}:${f.target}`), ['clock:witness', 'disk-full:backup']);
  for (const bad of ['', 'explode', 'kill:everyone', 'clock:links', 'disk-full:primary', 'storage:backup', 'kill:primary:x']) {
    const err = t.throws(() => parseFaults(bad));
    t.true(isWaterbearError(err, 'WB_CONFIG_INVALID'), bad);
  }
});

test('the generator is deterministic across instances and in range', (t) => {
  const a = new Prng(77);
  const b = new Prng(77);
  for (let i = 0; i < 1000; i++) {
    const x = a.int(3, 9);
    t.is(x, b.int(3, 9));
    if (x < 3 || x > 9) t.fail(`out of range: ${x}`);
  }
  t.throws(() => new Prng(-1));
  t.throws(() => new Prng(2 ** 32));
});
