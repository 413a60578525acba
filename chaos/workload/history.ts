/**
 * The history of a chaos run: every client operation with its invocation and completion, and
 * every fault the nemesis injected or healed. Times are monotonic milliseconds since the start
 * of the run (performance.now() in the harness process; members run elsewhere, but the harness
 * is the only observer).
 */

/** How an operation ended. `unknown`: the request may or may not have taken effect (timeout, connection lost mid-call). */
export type OpStatus = 'ok' | 'fail' | 'unknown';

export type OpFunction = 'read' | 'write' | 'incr';

/** One client operation. */
export interface Op {
  /** Index in the history (order of invocation). */
  id: number;
  /** The client (a logical process; it reconnects on failure but keeps its number). */
  process: number;
  f: OpFunction;
  key: string;
  /** Input: the value written (write); absent for read and incr. */
  value?: string;
  invokeMs: number;
  /** Completion time; null while pending (or never completed). */
  completeMs: number | null;
  status: OpStatus | 'pending';
  /** Output: the value read (string or null for a missing key), the INCR result, or 'OK'. */
  result?: string | number | null;
  /** Why it failed or is unknown. */
  error?: string;
  /** Part of the final reads, after every fault healed. */
  final?: boolean;
}

/** A fault as it happened (start and end), from the nemesis. */
export interface FaultEvent {
  /** Index of the schedule step. */
  step: number;
  kind: string;
  /** What the fault was aimed at, as scheduled ("primary", "backup", "witness", "links"). */
  target: string;
  /** Members (or links) it was actually applied to, resolved when it started. */
  applied: string[];
  startMs: number;
  endMs: number | null;
  detail?: string;
  /** Storage faults: how many store commits of the target it delayed or failed. */
  struck?: number;
}

/** A change of view or role, as seen by polling the replicas' Status RPC. */
export interface ViewSample {
  atMs: number;
  primary: string | null;
  view: number;
  backups: string[];
  protected: boolean;
}

/** A member exit the harness did not cause (a crash), or other noteworthy events. */
export interface ClusterEvent {
  atMs: number;
  kind: 'exit' | 'spawn' | 'crash' | 'note';
  member?: string;
  detail: string;
}

/** Collects operations in invocation order. */
export class History {
  readonly ops: Op[] = [];

  constructor(private readonly nowMs: () => number) {}

  invoke(process: number, f: OpFunction, key: string, value?: string, final = false): Op {
    const op: Op = { id: this.ops.length, process, f, key, invokeMs: this.nowMs(), completeMs: null, status: 'pending' };
    if (value !== undefined) op.value = value;
    if (final) op.final = true;
    this.ops.push(op);
    return op;
  }

  complete(op: Op, status: OpStatus, result?: string | number | null, error?: string): void {
    if (op.status !== 'pending') throw new Error(`operation ${op.id} completed twice`);
    op.completeMs = this.nowMs();
    op.status = status;
    if (result !== undefined) op.result = result;
    if (error !== undefined) op.error = error;
  }

  /** Operations still pending at the end count as unknown (their outcome was never seen). */
  closePending(): void {
    for (const op of this.ops) if (op.status === 'pending') { op.status = 'unknown'; op.error = 'still pending at the end of the run'; }
  }
}

/** history.jsonl: one line per invocation and completion, Jepsen style, in time order. */
export function historyLines(ops: readonly Op[], faults: readonly FaultEvent[]): string[] {
  const events: Array<{ t: number; seq: number; line: Record<string, unknown> }> = [];
  let seq = 0;
  for (const op of ops) {
    const base = { id: op.id, process: op.process, f: op.f, key: op.key, ...(op.final === true ? { final: true } : {}) };
    events.push({ t: op.invokeMs, seq: seq++, line: { type: 'invoke', time: round(op.invokeMs), ...base, ...(op.value !== undefined ? { value: op.value } : {}) } });
    if (op.completeMs !== null) {
      events.push({ t: op.completeMs, seq: seq++, line: { type: op.status, time: round(op.completeMs), ...base, value: op.f === 'write' ? op.value : op.result ?? null, ...(op.error !== undefined ? { error: op.error } : {}) } });
    } else {
      events.push({ t: Infinity, seq: seq++, line: { type: 'unknown', time: null, ...base, error: op.error ?? 'never completed' } });
    }
  }
  for (const f of faults) {
    events.push({ t: f.startMs, seq: seq++, line: { type: 'nemesis-start', time: round(f.startMs), process: 'nemesis', f: f.kind, target: f.target, applied: f.applied, step: f.step, ...(f.detail !== undefined ? { detail: f.detail } : {}) } });
    if (f.endMs !== null) events.push({ t: f.endMs, seq: seq++, line: { type: 'nemesis-stop', time: round(f.endMs), process: 'nemesis', f: f.kind, target: f.target, applied: f.applied, step: f.step } });
  }
  events.sort((a, b) => a.t - b.t || a.seq - b.seq);
  return events.map((e) => JSON.stringify(e.line));
}

function round(ms: number): number { return Math.round(ms * 1000) / 1000; }
