import test from 'ava';
import { renderReport } from '../../chaos/report/report-html.js';
import type { ChaosSummary } from '../../chaos/run/chaos-run.js';
import type { Op } from '../../chaos/workload/history.js';

/** More operations than a spread argument list survives (the V8 limit is roughly 120k on a default stack). */
const LONG_HISTORY_OPS = 400_000;

function summary(endMs: number): ChaosSummary {
  return {
    formatVersion: 1, run: 'long', command: 'waterbear chaos', seed: 1, workload: 'kv', faults: ['kill:primary'],
    durationMs: endMs, startedAt: new Date(0).toISOString(), unsafeReleaseEarly: false, verdict: 'pass', verdictLine: 'PASS',
    violations: [], warnings: [],
    timings: { startupMs: 0, workloadMs: endMs, recoveryMs: 0, finalReadsMs: 0, checkMs: 0, totalMs: endMs },
    window: { startMs: 0, endMs }, kv: null, counter: null,
    availability: { ops: LONG_HISTORY_OPS, ok: LONG_HISTORY_OPS, fail: 0, unknown: 0, okShare: 1, longestGapMs: 0, longestGap: null, unavailable: [], unavailableTotalMs: 0, faults: [], failovers: [] },
    nemesis: { planned: 0, injected: 0, notes: [] }, cluster: { members: ['a', 'b'], crashes: 0, events: [] }, views: [], proxies: {},
  };
}

test('a report renders a history longer than a spread argument list allows, with the slowest operation on the scale', (t) => {
  const ops: Op[] = [];
  for (let i = 0; i < LONG_HISTORY_OPS; i++) {
    const invokeMs = i / 20;
    // One outlier of 4.2 s: the latency axis must reach it.
    const lat = i === 12_345 ? 4200 : 0.5 + (i % 7);
    ops.push({ id: i, process: i % 8, f: i % 2 === 0 ? 'write' : 'read', key: `k${i % 3}`, value: String(i), invokeMs, completeMs: invokeMs + lat, status: 'ok' });
  }
  const html = renderReport(summary(LONG_HISTORY_OPS / 20), { seed: 1, durationMs: LONG_HISTORY_OPS / 20, faults: [], steps: [] }, ops, []);
  t.true(html.includes('<svg'));
  t.true(html.includes('>1 s<'), 'the latency axis has a 1 s grid line because the outlier is 4.2 s');
});
