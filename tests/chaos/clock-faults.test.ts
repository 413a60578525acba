import test from 'ava';
import { generateSchedule, parseFaults, clockWithinBound, DEFAULT_TIMING } from '../../chaos/nemesis/schedule.js';
import { Prng } from '../../chaos/random/prng.js';
import { passingScenario } from './helpers/scenario.js';

const SEED = 11;
const FAULTS = 'clock,kill:primary';
const TIMING = { gapMs: [500, 1500] as [number, number], holdMs: { clock: [2000, 3500] as [number, number], kill: [500, 1000] as [number, number] }, recoveryMs: 2000 };

test('clock faults are seeded: the same seed gives the same jumps and drifts; respect/exceed choose within or beyond the drift bound', (t) => {
  const faults = parseFaults('clock');
  const a = generateSchedule(new Prng(5).fork('schedule'), 5, 60_000, faults, DEFAULT_TIMING, 'both');
  const b = generateSchedule(new Prng(5).fork('schedule'), 5, 60_000, faults, DEFAULT_TIMING, 'both');
  t.deepEqual(a, b);
  const within = generateSchedule(new Prng(5).fork('schedule'), 5, 60_000, faults, DEFAULT_TIMING, 'respect');
  const beyond = generateSchedule(new Prng(5).fork('schedule'), 5, 60_000, faults, DEFAULT_TIMING, 'exceed');
  t.true(within.steps.every((s) => clockWithinBound(s.params)));
  t.true(beyond.steps.every((s) => !clockWithinBound(s.params)));
  // Asking for the older faults gives the schedule it always gave: new kinds draw nothing then.
  const old = generateSchedule(new Prng(5).fork('schedule'), 5, 60_000, parseFaults('all'));
  t.deepEqual(old.faults, ['kill', 'pause', 'partition', 'delay', 'drop', 'duplicate', 'reorder', 'corrupt']);
});

/**
 * One member's monotonic clock (never the machine's) jumps forward and back, drifts within the
 * 1% bound the leases assume and runs far faster or slower than that, while the primary is killed.
 * Output commit does not depend on clocks (an ack is needed from every backup of the view, and a
 * backup acks only its current view), so even beyond the bound no stale primary may release output.
 * Replay: waterbear chaos --seed 11 --duration 30s --faults clock,kill:primary
 */
test.serial('one member\'s clock jumps and drifts, within and beyond the lease bound, while the primary is killed: linearizable, nothing lost', async (t) => {
  t.timeout(180_000);
  const r = await passingScenario(t, { seed: SEED, durationMs: 30_000, faults: FAULTS, timing: TIMING, clockBound: 'both' });
  const clocks = r.summary.availability.faults.filter((f) => f.kind === 'clock');
  t.true(clocks.length >= 3, `${clocks.length} clock faults`);
  t.true(clocks.every((f) => f.endMs !== null), 'every clock fault healed');
  const details = r.schedule.steps.filter((s) => s.kind === 'clock').map((s) => clockWithinBound(s.params));
  t.true(details.includes(true) && details.includes(false), 'the schedule has faults within and beyond the drift bound');
  t.deepEqual(r.summary.warnings.filter((w) => /did not confirm/.test(w)), [], 'every member confirmed its clock fault');
});
