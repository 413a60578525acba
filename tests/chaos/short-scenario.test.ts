import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFaults } from '../../chaos/nemesis/schedule.js';
import { runChaos } from '../../chaos/run/chaos-run.js';

/**
 * The CI chaos scenario: about a minute, seeded, on the safe build — kill -9 of the primary,
 * SIGSTOP of the backup, a network partition and corrupted replication traffic, each healed
 * before the next. Every acknowledged write must survive and the history must be linearizable.
 * Replay a failure with: waterbear chaos --seed 20240611 --duration 45s --faults kill:primary,pause:backup,partition:primary-backup,corrupt:bulk
 */
const SEED = 20240611;
/**
 * The partition cuts primary from backup (the witness sees both) and the corruption hits checkpoint
 * data only. `partition:isolate-primary` and corruption of coordination traffic have their own
 * scenarios (isolated-primary.test.ts, coordination-corruption.test.ts).
 */
const FAULTS = 'kill:primary,pause:backup,partition:primary-backup,corrupt:bulk';

test.serial('short seeded scenario: kill primary, pause backup, partition, corrupt — linearizable, nothing lost', async (t) => {
  t.timeout(240_000);
  const dir = mkdtempSync(join(tmpdir(), 'wb-chaos-ci-'));
  let passed = false;
  t.teardown(() => { if (passed) rmSync(dir, { recursive: true, force: true }); else t.log(`report kept: ${dir}/ci/report.html`); });
  const started = performance.now();
  const r = await runChaos({
    seed: SEED, durationMs: 45_000, workload: 'kv', faults: parseFaults(FAULTS),
    clients: 5, keys: 3, reportsDir: dir, runName: 'ci', checkBudgetMs: 30_000,
    timing: { gapMs: [500, 1500], holdMs: { kill: [500, 1500], pause: [1000, 2000], partition: [1000, 3000], corrupt: [2000, 4000] }, recoveryMs: 3000 },
    log: (line) => t.log(line),
  });
  t.log(r.summary.verdictLine);
  t.log(`ran ${((performance.now() - started) / 1000).toFixed(1)} s; failovers: ${r.summary.availability.failovers.map((f) => `${f.fromPrimary}→${f.toPrimary} ${f.durationMs === null ? '?' : Math.round(f.durationMs)} ms`).join(', ') || 'none'}`);
  t.deepEqual(r.summary.violations, [], `see ${r.reportDir}/report.html`);
  t.is(r.summary.verdict, 'pass');
  t.is(r.exitCode, 0);
  t.deepEqual([...new Set(r.summary.availability.faults.map((f) => f.kind))].sort(), ['corrupt', 'kill', 'partition', 'pause'], 'every fault of the scenario was injected');
  t.true(r.summary.availability.ok > 1000, 'the workload made progress');
  for (const f of ['history.jsonl', 'schedule.json', 'summary.json', 'report.html']) t.true(existsSync(join(r.reportDir, f)), f);
  // Same seed, same schedule.
  const schedule = JSON.parse(readFileSync(join(r.reportDir, 'schedule.json'), 'utf8')) as { seed: number };
  t.is(schedule.seed, SEED);
  passed = true;
});
