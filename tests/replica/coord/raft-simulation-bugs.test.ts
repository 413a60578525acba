/**
 * A checker is trusted only after it has caught a deliberately broken build (STYLE.md). Each unsafe
 * test bug must make the simulation report a violation of the invariant it breaks within a bounded
 * number of seeds. The simulation is deterministic, so the seed that catches it is the same every run.
 */
import test from 'ava';
import type { InvariantName } from '../../../replica/coord/raft/sim/sim-checker.js';
import { replayCommand, runRaftSimulation } from '../../../replica/coord/raft/sim/raft-sim.js';
import type { UnsafeTestBugName } from '../../../replica/coord/raft/raft-unsafe-test-bugs.js';

interface Case {
  readonly bug: UnsafeTestBugName;
  readonly nodes: number;
  /** Seeds 1..maxSeeds are tried; detection rates measured at ≥1% per seed, so this has a wide margin. */
  readonly maxSeeds: number;
  readonly expect: readonly InvariantName[];
}

const CASES: readonly Case[] = [
  { bug: 'grantVoteTwice', nodes: 3, maxSeeds: 300, expect: ['election-safety'] },
  { bug: 'grantVoteTwice', nodes: 5, maxSeeds: 300, expect: ['election-safety'] },
  { bug: 'skipVotePersistence', nodes: 3, maxSeeds: 1500, expect: ['election-safety'] },
  { bug: 'skipVotePersistence', nodes: 5, maxSeeds: 1500, expect: ['election-safety'] },
  { bug: 'commitWithoutQuorum', nodes: 3, maxSeeds: 300, expect: ['leader-completeness', 'state-machine-safety'] },
  { bug: 'commitWithoutQuorum', nodes: 5, maxSeeds: 300, expect: ['leader-completeness', 'state-machine-safety'] },
  { bug: 'skipLogUpToDateCheck', nodes: 3, maxSeeds: 300, expect: ['leader-completeness', 'state-machine-safety', 'election-safety'] },
  { bug: 'readIndexWithoutHeartbeat', nodes: 3, maxSeeds: 1500, expect: ['read-linearizability'] },
  { bug: 'readIndexWithoutHeartbeat', nodes: 5, maxSeeds: 1500, expect: ['read-linearizability'] },
];

for (const c of CASES) {
  test(`the simulation catches ${c.bug} with ${c.nodes} nodes as ${c.expect.join(' or ')} within ${c.maxSeeds} seeds`, (t) => {
    for (let seed = 1; seed <= c.maxSeeds; seed++) {
      const r = runRaftSimulation({ seed, nodes: c.nodes, unsafeTestBugs: { [c.bug]: true } });
      if (r.violation === null) continue;
      t.log(`caught at seed ${seed}: ${r.violation.message}\n  replay: ${replayCommand(seed, c.nodes, c.bug)}`);
      t.true(c.expect.includes(r.violation.invariant), `expected ${c.expect.join(' or ')}, got ${r.violation.invariant}: ${r.violation.message}`);
      return;
    }
    t.fail(`${c.bug} went undetected for ${c.maxSeeds} seeds: the checker or the fault model has lost its teeth`);
  });
}
