import test from 'ava';
import { passingScenario } from './helpers/scenario.js';

/**
 * Bits flipped on every link — the replication streams and the coordination traffic to and from
 * the witness (Raft, leases, views) — plus kill -9 of the primary and an isolated primary. Every
 * coordination and replication message carries a checksum trailer and a corrupt one is refused,
 * never decoded (chaos problem 3: a corrupted Raft batch once let a restarted replica read view 14
 * after view 18 had committed). Required here: a pass, and corruption that did reach the witness's
 * links, so the scenario tests what it names.
 * Replay: waterbear chaos --seed 20 --duration 25s --faults corrupt:all-links,kill:primary,partition:isolate-primary
 */
test.serial('corrupted coordination and replication traffic, a killed and an isolated primary: linearizable, nothing lost', async (t) => {
  t.timeout(180_000);
  const r = await passingScenario(t, {
    seed: 20, durationMs: 25_000, faults: 'corrupt:all-links,kill:primary,partition:isolate-primary',
    timing: { gapMs: [1000, 2000], holdMs: { corrupt: [3000, 5000], kill: [500, 1500], partition: [2000, 3000] }, recoveryMs: 3000 },
  });
  const kinds = new Set(r.summary.availability.faults.map((f) => f.kind));
  t.true(kinds.has('corrupt'), 'corruption was injected');
  const witnessLinks = Object.entries(r.summary.proxies).filter(([link]) => link.includes('w'));
  const corruptedToWitness = witnessLinks.reduce((n, [, s]) => n + s.corruptedChunks, 0);
  t.log(`corrupted chunks on the witness's links: ${corruptedToWitness}; on all links: ${Object.values(r.summary.proxies).reduce((n, s) => n + s.corruptedChunks, 0)}`);
  t.true(corruptedToWitness > 0, 'coordination traffic was corrupted');
});
