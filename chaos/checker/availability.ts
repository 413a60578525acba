import type { FaultEvent, Op, ViewSample } from '../workload/history.js';

/** A stretch with no successful operation longer than this counts as unavailable (ms). */
export const UNAVAILABLE_GAP_MS = 500;
/** A view change this long after a fault ended is still attributed to it (ms). */
export const FAILOVER_ATTRIBUTION_MS = 10_000;

export interface Availability {
  /** Workload operations (final reads excluded). */
  ops: number;
  ok: number;
  fail: number;
  unknown: number;
  /** ok / ops. */
  okShare: number;
  /** Longest time without a successful completion inside the workload window (ms). */
  longestGapMs: number;
  longestGap: { fromMs: number; toMs: number } | null;
  /** Every stretch without a success longer than UNAVAILABLE_GAP_MS. */
  unavailable: Array<{ fromMs: number; toMs: number }>;
  unavailableTotalMs: number;
  /** Per fault: how long until an operation invoked after it started succeeded. */
  faults: Array<{ step: number; kind: string; target: string; applied: string[]; startMs: number; endMs: number | null; firstSuccessAfterMs: number | null }>;
  /** Primary changes, each with the fault it is attributed to and how long clients waited. */
  failovers: Array<{ fromPrimary: string | null; toPrimary: string; view: number; seenAtMs: number; faultStep: number | null; faultKind: string | null; durationMs: number | null }>;
}

/**
 * Availability from the history: share of successful operations, the longest window without a
 * success, the unavailable windows, time to the first success after each fault, and each
 * failover's duration (fault start to the first success of an operation invoked after it).
 */
export function checkAvailability(ops: readonly Op[], faults: readonly FaultEvent[], views: readonly ViewSample[], window: { startMs: number; endMs: number }): Availability {
  const work = ops.filter((o) => o.final !== true);
  const ok = work.filter((o) => o.status === 'ok');
  const doneTimes = ok.map((o) => o.completeMs!).filter((t) => t >= window.startMs && t <= window.endMs).sort((a, b) => a - b);
  const unavailable: Availability['unavailable'] = [];
  let longest: { fromMs: number; toMs: number } | null = null;
  let prev = window.startMs;
  for (const t of [...doneTimes, window.endMs]) {
    const gap = { fromMs: prev, toMs: t };
    if (longest === null || gap.toMs - gap.fromMs > longest.toMs - longest.fromMs) longest = gap;
    if (t - prev > UNAVAILABLE_GAP_MS) unavailable.push(gap);
    prev = t;
  }
  const firstSuccessAfter = (t: number): number | null => {
    let best: number | null = null;
    for (const o of ok) if (o.invokeMs >= t && (best === null || o.completeMs! < best)) best = o.completeMs!;
    return best === null ? null : best - t;
  };
  const faultRows = faults.map((f) => ({
    step: f.step, kind: f.kind, target: f.target, applied: f.applied, startMs: f.startMs, endMs: f.endMs, firstSuccessAfterMs: firstSuccessAfter(f.startMs),
  }));
  const failovers: Availability['failovers'] = [];
  let lastPrimary: string | null = null;
  for (const v of views) {
    if (v.primary === null) continue;
    if (lastPrimary !== null && v.primary !== lastPrimary) {
      // The latest fault that started before the change and had not long ended.
      const f = [...faults].reverse().find((x) => x.startMs <= v.atMs && (x.endMs === null || v.atMs - x.endMs <= FAILOVER_ATTRIBUTION_MS));
      const d = f === undefined ? null : firstSuccessAfter(f.startMs);
      failovers.push({ fromPrimary: lastPrimary, toPrimary: v.primary, view: v.view, seenAtMs: v.atMs, faultStep: f?.step ?? null, faultKind: f?.kind ?? null, durationMs: d });
    }
    lastPrimary = v.primary;
  }
  return {
    ops: work.length, ok: ok.length,
    fail: work.filter((o) => o.status === 'fail').length,
    unknown: work.filter((o) => o.status === 'unknown').length,
    okShare: work.length === 0 ? 0 : ok.length / work.length,
    longestGapMs: longest === null ? 0 : longest.toMs - longest.fromMs,
    longestGap: longest,
    unavailable,
    unavailableTotalMs: unavailable.reduce((s, g) => s + (g.toMs - g.fromMs), 0),
    faults: faultRows,
    failovers,
  };
}
