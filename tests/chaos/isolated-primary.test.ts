import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { passingScenario } from './helpers/scenario.js';

/**
 * The primary is cut off from its backup and the witness (both directions, every link) for 4–6 s
 * at a time. Its backup must take over *while the partition lasts*: on one machine the isolated
 * primary holds the shared service address, and it used to keep it until the partition healed
 * (chaos problem 2: unavailable for the whole partition). It cannot step down — its own proposal
 * of a view without the backup may still commit, so it may hold the only copy of the state — so
 * it parks: frees the address and cuts its connections, keeps the state, holds the output.
 * Replay: waterbear chaos --seed 31 --duration 20s --faults partition:isolate-primary
 */
test.serial('an isolated primary frees the service address: its backup takes over during the partition — linearizable, nothing lost', async (t) => {
  t.timeout(180_000);
  const r = await passingScenario(t, {
    seed: 31, durationMs: 20_000, faults: 'partition:isolate-primary',
    timing: { gapMs: [1500, 2500], holdMs: { partition: [4000, 6000] }, recoveryMs: 2000 },
  });
  const { faults, failovers } = r.summary.availability;
  const partitions = faults.filter((f) => f.kind === 'partition' && f.target === 'isolate-primary');
  t.true(partitions.length >= 2, `partitions injected: ${partitions.length}`);
  for (const f of partitions) {
    t.not(f.endMs, null, `partition #${f.step} was healed`);
    const during = failovers.filter((fo) => fo.seenAtMs > f.startMs && fo.seenAtMs < (f.endMs ?? Infinity));
    t.true(during.length > 0, `partition #${f.step} (${Math.round(f.startMs)}–${Math.round(f.endMs ?? 0)} ms): a backup took over before it healed; failovers seen at ${failovers.map((fo) => Math.round(fo.seenAtMs)).join(', ')} ms`);
    t.not(f.firstSuccessAfterMs, null);
    t.true((f.firstSuccessAfterMs ?? Infinity) < (f.endMs ?? 0) - f.startMs, `partition #${f.step}: clients were served again before it healed (after ${Math.round(f.firstSuccessAfterMs ?? -1)} ms)`);
  }
  const logs = ['a', 'b'].map((id) => readFileSync(join(r.reportDir, 'logs', `${id}.log`), 'utf8')).join('\n');
  t.regex(logs, /service address freed meanwhile/, 'the isolated primary said it parked');
});
