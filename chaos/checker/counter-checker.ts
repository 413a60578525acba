import type { Op } from '../workload/history.js';

/** The counter workload's invariants, for summary.json and the report. */
export interface CounterCheck {
  valid: boolean | 'unknown';
  finalValue: number | null;
  acknowledgedIncrs: number;
  unknownIncrs: number;
  /** The final value must lie in [acknowledged, acknowledged + unknown]. */
  boundsOk: boolean | 'unknown';
  /** INCRs that returned the same value to two clients (an increment was lost). */
  duplicateResults: Array<{ value: number; ops: Op[] }>;
  /** Pairs where an operation that started after another finished saw a smaller value. */
  wentBackwards: Array<{ earlier: Op; later: Op }>;
  /** INCR results above the final value (the final state forgot them). */
  aboveFinal: Op[];
  problems: string[];
}

const MAX_EXAMPLES = 5;

/**
 * Check a counter history (INCR and GET on one key, starting from nothing):
 * - the final value equals the acknowledged INCRs plus at most the unknown ones;
 * - no two INCRs returned the same value;
 * - values never go backwards in real time (an operation invoked after another completed sees
 *   at least its value; an INCR sees more);
 * - no acknowledged INCR result exceeds the final value.
 */
export function checkCounter(ops: readonly Op[], key: string): CounterCheck {
  const mine = ops.filter((o) => o.key === key);
  const incrs = mine.filter((o) => o.f === 'incr');
  const acked = incrs.filter((o) => o.status === 'ok' && !o.final);
  const unknown = incrs.filter((o) => o.status === 'unknown');
  const finals = mine.filter((o) => o.final === true && o.f === 'read' && o.status === 'ok');
  const fin = finals.length > 0 ? finals[finals.length - 1] : undefined;
  const finalValue = fin === undefined ? null : fin.result === null ? 0 : Number(fin.result);
  const problems: string[] = [];

  let boundsOk: boolean | 'unknown' = 'unknown';
  if (finalValue !== null) {
    boundsOk = finalValue >= acked.length && finalValue <= acked.length + unknown.length;
    if (!boundsOk) problems.push(`final value ${finalValue} is outside [${acked.length}, ${acked.length + unknown.length}] (acknowledged INCRs, plus unknown ones)`);
  } else {
    problems.push('no successful final read: the bounds could not be checked');
  }

  const byValue = new Map<number, Op[]>();
  for (const o of acked) {
    const v = Number(o.result);
    let l = byValue.get(v);
    if (l === undefined) byValue.set(v, (l = []));
    l.push(o);
  }
  const duplicateResults = [...byValue].filter(([, l]) => l.length > 1).map(([value, l]) => ({ value, ops: l }));
  if (duplicateResults.length > 0) problems.push(`${duplicateResults.length} INCR result(s) returned to more than one client (e.g. ${duplicateResults[0].value})`);

  // Real-time order: sweep invocations in time order, with the largest value completed before.
  const valued = mine.filter((o) => o.status === 'ok' && (o.f === 'incr' || o.f === 'read'));
  const value = (o: Op): number => (o.result === null || o.result === undefined ? 0 : Number(o.result));
  const byComplete = [...valued].sort((a, b) => a.completeMs! - b.completeMs!);
  const byInvoke = [...valued].sort((a, b) => a.invokeMs - b.invokeMs);
  const wentBackwards: CounterCheck['wentBackwards'] = [];
  let j = 0;
  let maxDone: Op | null = null;
  for (const o of byInvoke) {
    while (j < byComplete.length && byComplete[j].completeMs! < o.invokeMs) {
      if (maxDone === null || value(byComplete[j]) > value(maxDone)) maxDone = byComplete[j];
      j++;
    }
    if (maxDone === null) continue;
    const bad = o.f === 'incr' ? value(o) <= value(maxDone) : value(o) < value(maxDone);
    if (bad && wentBackwards.length < MAX_EXAMPLES) wentBackwards.push({ earlier: maxDone, later: o });
  }
  if (wentBackwards.length > 0) {
    const w = wentBackwards[0];
    problems.push(`values went backwards: op ${w.later.id} (${w.later.f} → ${w.later.result}) began after op ${w.earlier.id} (${w.earlier.f} → ${w.earlier.result}) had completed`);
  }
  const aboveFinal = finalValue === null ? [] : acked.filter((o) => Number(o.result) > finalValue).slice(0, MAX_EXAMPLES);
  if (aboveFinal.length > 0) problems.push(`acknowledged INCR returned ${aboveFinal[0].result} but the final value is ${finalValue}: acknowledged increments were lost`);

  const violated = (boundsOk === false) || duplicateResults.length > 0 || wentBackwards.length > 0 || aboveFinal.length > 0;
  return {
    valid: violated ? false : boundsOk === 'unknown' ? 'unknown' : true,
    finalValue, acknowledgedIncrs: acked.length, unknownIncrs: unknown.length, boundsOk,
    duplicateResults: duplicateResults.slice(0, MAX_EXAMPLES), wentBackwards, aboveFinal, problems,
  };
}
