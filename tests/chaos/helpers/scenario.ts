import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { parseFaults } from '../../../chaos/nemesis/schedule.js';
import { runChaos, type ChaosOptions, type ChaosResult } from '../../../chaos/run/chaos-run.js';

/**
 * One short seeded chaos run on the safe build for a scenario test: the report folder is removed
 * when the test passes and kept (and named in the log) when it fails. Asserts the verdict is a
 * pass with no violation; the caller checks what the faults did.
 */
export async function passingScenario(t: ExecutionContext, o: Omit<ChaosOptions, 'faults' | 'workload' | 'reportsDir' | 'runName' | 'log'> & { faults: string; workload?: ChaosOptions['workload'] }): Promise<ChaosResult> {
  const dir = mkdtempSync(join(tmpdir(), 'wb-chaos-scenario-'));
  let passed = false;
  t.teardown(() => { if (passed) rmSync(dir, { recursive: true, force: true }); else t.log(`report kept: ${dir}/run/report.html`); });
  const started = performance.now();
  const r = await runChaos({
    workload: 'kv', clients: 5, keys: 3, checkBudgetMs: 20_000, ...o, faults: parseFaults(o.faults),
    reportsDir: dir, runName: 'run', keepData: false, log: (line) => t.log(line),
  });
  t.log(r.summary.verdictLine);
  t.log(`ran ${((performance.now() - started) / 1000).toFixed(1)} s`);
  t.deepEqual(r.summary.violations, [], `see ${r.reportDir}/report.html`);
  t.is(r.summary.verdict, 'pass');
  t.true(r.summary.availability.ok > 200, 'the workload made progress');
  t.true(r.summary.nemesis.injected > 0);
  passed = r.summary.verdict === 'pass';
  return r;
}
