import test from 'ava';
import { simulateReplication, type SimOptions } from '../../../replica/protocol/sim/replication-sim.js';

/** The first violation a deliberately unsafe build shows over seeds 1..maxSeed, or null. */
function firstViolation(maxSeed: number, o: Omit<SimOptions, 'seed'>): string | null {
  for (let seed = 1; seed <= maxSeed; seed++) {
    const r = simulateReplication({ seed, ...o });
    if (r.violation !== null) return `seed ${seed}: ${r.violation}`;
  }
  return null;
}

const RUNS = Number(process.env.REPLICATION_SIM_RUNS ?? 3000);
const ONLY_SEED = process.env.REPLICATION_SIM_SEED;

test('no replica is ever promoted with a state older than released output (seeded simulation)', (t) => {
  const seeds = ONLY_SEED !== undefined ? [Number(ONLY_SEED)] : Array.from({ length: RUNS }, (_, i) => i + 1);
  let promotions = 0;
  let released = 0;
  for (const seed of seeds) {
    for (const replicas of [2, 3, 4]) {
      const r = simulateReplication({ seed, replicas, steps: 300 });
      promotions += r.promotions;
      released += r.released;
      if (r.violation !== null) {
        t.fail(`seed ${seed} (${replicas} replicas): ${r.violation}\nreplay: REPLICATION_SIM_SEED=${seed} npx ava tests/replica/protocol/replication-simulation.test.ts\n${r.trace.join('\n')}`);
        return;
      }
    }
  }
  // The runs must exercise failover and output release, or the invariant is vacuous.
  t.log(`${seeds.length * 3} runs: ${promotions} promotions, ${released} epochs released`);
  if (ONLY_SEED !== undefined) return;
  t.true(promotions > seeds.length, `promotions: ${promotions}`);
  t.true(released > seeds.length * 5, `released epochs: ${released}`);
});

// Long runs of two replicas reach the histories that take several role changes: e.g. r1 takes
// over from r0, hands back by switchover, and takes over again while its disk still holds r0's
// chain from two views earlier (a state older than released output: found by these runs).
const LONG_RUNS = Number(process.env.REPLICATION_SIM_LONG_RUNS ?? 16000);

test('long runs with switchovers and restarts: no promotion with a state older than released output', (t) => {
  const seeds = ONLY_SEED !== undefined ? [Number(ONLY_SEED)] : Array.from({ length: LONG_RUNS }, (_, i) => i + 1);
  let promotions = 0;
  for (const seed of seeds) {
    const r = simulateReplication({ seed, replicas: 2, steps: 1000 });
    promotions += r.promotions;
    if (r.violation !== null) {
      t.fail(`seed ${seed} (2 replicas, 1000 steps): ${r.violation}\nreplay: REPLICATION_SIM_SEED=${seed} npx ava tests/replica/protocol/replication-simulation.test.ts\n${r.trace.join('\n')}`);
      return;
    }
  }
  t.log(`${seeds.length} long runs: ${promotions} promotions`);
  t.true(ONLY_SEED !== undefined || promotions > seeds.length / 4, `promotions: ${promotions}`);
});

test('the simulation catches a build that releases output on any single backup ack', (t) => {
  const caught = firstViolation(3000, { replicas: 3, steps: 300, unsafeReleaseOnAnyAck: true });
  t.truthy(caught, 'the unsafe build must be caught');
  t.log(caught);
});

// Proposals that time out and commit late (or never) stress views that add a joiner: output
// released while such a view may still commit must be held by the joiner too.
const TIMEOUT_RUNS = Number(process.env.REPLICATION_SIM_TIMEOUT_RUNS ?? 20000);

test('frequent proposal timeouts with late commits: no promotion with a state older than released output', (t) => {
  const seeds = ONLY_SEED !== undefined ? [Number(ONLY_SEED)] : Array.from({ length: TIMEOUT_RUNS }, (_, i) => i + 1);
  let late = 0;
  for (const seed of seeds) {
    const r = simulateReplication({ seed, replicas: 3, steps: 300, proposalTimeouts: 0.5 });
    late += r.trace.filter((l) => l.includes('committed late')).length;
    if (r.violation !== null) {
      t.fail(`seed ${seed} (3 replicas, timeouts 0.5): ${r.violation}\nreplay: REPLICATION_SIM_SEED=${seed} npx ava tests/replica/protocol/replication-simulation.test.ts\n${r.trace.join('\n')}`);
      return;
    }
  }
  t.log(`${seeds.length} runs: ${late} views committed after their proposal timed out`);
  t.true(ONLY_SEED !== undefined || late > seeds.length / 10, `late commits: ${late}`);
});

test('the simulation catches a build that treats a timed-out proposal as one that cannot commit', (t) => {
  const caught = firstViolation(20000, { replicas: 3, steps: 300, proposalTimeouts: 0.5, unsafeForgetTimedOutProposals: true });
  t.truthy(caught, 'the unsafe build must be caught');
  t.log(caught);
});

test('the same seed replays the same run', (t) => {
  const a = simulateReplication({ seed: 42, replicas: 3 });
  const b = simulateReplication({ seed: 42, replicas: 3 });
  t.deepEqual(a.trace, b.trace);
});

// Whole-cluster crashes: every replica restarts with its disk, and a backup takes over only with
// a chain its record says it held in the first view it learns (chain-record-rules.ts).
const CRASH_RUNS = Number(process.env.REPLICATION_SIM_CRASH_RUNS ?? 4000);

test('whole-cluster crashes and restarts: recoveries happen, never with a state older than released output', (t) => {
  const seeds = ONLY_SEED !== undefined ? [Number(ONLY_SEED)] : Array.from({ length: CRASH_RUNS }, (_, i) => i + 1);
  let crashes = 0;
  let recoveries = 0;
  for (const seed of seeds) {
    const r = simulateReplication({ seed, replicas: 2, steps: 600, wholeClusterCrashes: 0.01 });
    crashes += r.wholeClusterCrashes;
    recoveries += r.wholeClusterRecoveries;
    if (r.violation !== null) {
      t.fail(`seed ${seed} (2 replicas, whole-cluster crashes 0.01): ${r.violation}\nreplay: REPLICATION_SIM_SEED=${seed} npx ava tests/replica/protocol/replication-simulation.test.ts\n${r.trace.join('\n')}`);
      return;
    }
  }
  t.log(`${seeds.length} runs: ${crashes} whole-cluster crashes, ${recoveries} recovered by a takeover`);
  // Most crashes hit a cluster still restarting from the last one, or an unprotected view (whose
  // state only its primary held): those wait. Enough recover to make the invariant non-vacuous.
  t.true(ONLY_SEED !== undefined || recoveries > crashes / 50, `recoveries: ${recoveries} of ${crashes}`);
});

test('the simulation catches a build whose chain record names every view it learns', (t) => {
  const caught = firstViolation(20000, { replicas: 2, steps: 600, wholeClusterCrashes: 0.01, unsafeChainRecordFollowsEveryView: true });
  t.truthy(caught, 'the unsafe build must be caught');
  t.log(caught);
});
