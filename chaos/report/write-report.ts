import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Schedule } from '../nemesis/schedule.js';
import type { ChaosSummary } from '../run/chaos-run.js';
import type { FaultEvent, Op } from '../workload/history.js';
import { renderReport } from './report-html.js';

/** Write report.html into a run folder (history.jsonl, schedule.json and summary.json are written by the run). */
export function writeReport(dir: string, summary: ChaosSummary, schedule: Schedule, ops: readonly Op[], faults: readonly FaultEvent[]): string {
  const file = join(dir, 'report.html');
  writeFileSync(file, renderReport(summary, schedule, ops, faults));
  return file;
}
