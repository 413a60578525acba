/**
 * Deterministic simulation of 3- and 5-node Raft clusters under loss, duplication, reordering, delay,
 * symmetric and one-way partitions, crashes (losing unpersisted state) and restarts, with clients
 * proposing values, reading and changing membership. Safety invariants are checked on every step;
 * liveness after healing at the end of each run.
 *
 *   RAFT_SIM_RUNS=20000 npx ava tests/replica/coord/raft-simulation.test.ts     # more runs (default 2000)
 *   RAFT_SIM_FIRST_SEED=50000 …                                                  # another seed range
 *   RAFT_SIM_SEED=123 RAFT_SIM_NODES=5 npx ava tests/replica/coord/raft-simulation.test.ts   # replay one run with its trace
 *   RAFT_SIM_BUG=grantVoteTwice …                                                # replay with an unsafe test bug
 */
import test from 'ava';
import { replayCommand, runRaftSimulation, type SimResult } from '../../../replica/coord/raft/sim/raft-sim.js';
import { UNSAFE_TEST_BUG_NAMES, type UnsafeTestBugName } from '../../../replica/coord/raft/raft-unsafe-test-bugs.js';

const env = process.env;
const RUNS = Number(env.RAFT_SIM_RUNS ?? 2000);
const FIRST_SEED = Number(env.RAFT_SIM_FIRST_SEED ?? 1);

function describeFailure(r: SimResult, bug?: string): string {
  const v = r.violation;
  return `seed ${r.seed} (${r.nodes} nodes): ${v?.invariant} at tick ${v?.tick}: ${v?.message}\n  replay: ${replayCommand(r.seed, r.nodes, bug)}`;
}

if (env.RAFT_SIM_SEED !== undefined) {
  const seed = Number(env.RAFT_SIM_SEED);
  const nodes = Number(env.RAFT_SIM_NODES ?? 3);
  const bug = env.RAFT_SIM_BUG as UnsafeTestBugName | undefined;
  test(`replay of seed ${seed} with ${nodes} nodes${bug === undefined ? '' : ` and unsafe bug ${bug}`}`, (t) => {
    if (bug !== undefined && !UNSAFE_TEST_BUG_NAMES.includes(bug)) t.fail(`unknown bug ${bug}; known: ${UNSAFE_TEST_BUG_NAMES.join(', ')}`);
    const r = runRaftSimulation({ seed, nodes, trace: true, ...(bug !== undefined ? { unsafeTestBugs: { [bug]: true } } : {}) });
    t.log(r.trace.join('\n'));
    t.log(`trace digest ${r.traceDigest}; stats ${JSON.stringify(r.stats)}`);
    if (r.violation !== null) t.fail(describeFailure(r, bug));
    else t.pass();
  });
} else {
  for (const nodes of [3, 5]) {
    const runs = Math.ceil(RUNS / 2);
    test(`${runs} seeded runs of a ${nodes}-node cluster keep every safety invariant and recover after healing`, (t) => {
      const failures: string[] = [];
      const total = { elections: 0, committed: 0, crashes: 0, snapshotsInstalled: 0, confChanges: 0, reads: 0, messages: 0, dropped: 0 };
      const started = performance.now();
      for (let seed = FIRST_SEED; seed < FIRST_SEED + runs; seed++) {
        const r = runRaftSimulation({ seed, nodes });
        for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += r.stats[k];
        if (r.violation !== null) failures.push(describeFailure(r));
      }
      t.log(`${runs} runs in ${((performance.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(total)}`);
      // The runs must actually exercise the protocol.
      t.true(total.elections > runs && total.crashes > runs && total.snapshotsInstalled > runs / 4 && total.confChanges > runs / 2 && total.reads > runs);
      if (failures.length > 0) t.fail(`${failures.length} of ${runs} runs broke an invariant:\n${failures.slice(0, 5).join('\n')}`);
    });
  }

  test('the same seed reproduces the same run exactly; another seed gives another run', (t) => {
    for (const nodes of [3, 5]) {
      const a = runRaftSimulation({ seed: 4242, nodes, trace: true });
      const b = runRaftSimulation({ seed: 4242, nodes, trace: true });
      const c = runRaftSimulation({ seed: 4243, nodes, trace: true });
      t.true(a.trace.length > 100);
      t.deepEqual(a.trace, b.trace);
      t.is(a.traceDigest, b.traceDigest);
      t.deepEqual(a.stats, b.stats);
      t.not(a.traceDigest, c.traceDigest);
      // Tracing does not change the run.
      t.is(runRaftSimulation({ seed: 4242, nodes }).traceDigest, a.traceDigest);
    }
  });
}
