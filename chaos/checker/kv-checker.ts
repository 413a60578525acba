import type { Op } from '../workload/history.js';
import { kvModel, type KvInput, type KvOutput } from './kv-model.js';
import { checkPartitioned, type LinOp, type LinOptions, type LinVerdict } from './linearizability.js';

/** What the KV checkers found, for summary.json and the report. */
export interface KvCheck {
  linearizable: LinVerdict;
  keys: Array<{
    key: string; ops: number; verdict: LinVerdict; steps: number; elapsedMs: number;
    /** For a non-linearizable key: the operation that could not be linearized, and context. */
    failedOp?: Op; statesAtFailure?: string[]; prefixTail?: Op[]; reason?: string;
  }>;
  /** Unknown writes dropped before the search because no one ever observed their value. */
  unobservedUnknownWritesDropped: number;
  /** Acknowledged writes whose key's final read shows a value from strictly before them. */
  lostWrites: Array<{ write: Op; finalRead: Op; origin: Op | null }>;
  /** Values read (or returned by INCR) that no write or INCR in the history could have produced. */
  phantomReads: Op[];
  /** Keys without a successful final read (the lost-write check could not run for them). */
  keysWithoutFinalRead: string[];
}

/** How many INCRs a written value may absorb before it could collide with another written value. */
export const VALUE_STRIDE = 1000;

/** The written value whose INCR family contains `v` (values are written as multiples of VALUE_STRIDE). */
function familyOf(v: string | number | null | undefined): string | null {
  if (v === null || v === undefined) return null;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) return String(v);
  return String(n - (((n % VALUE_STRIDE) + VALUE_STRIDE) % VALUE_STRIDE));
}

/**
 * Check a KV history: linearizability per key (P-compositionality), lost acknowledged writes
 * against the final reads, and phantom values. Failed operations (definitely not executed) are
 * left out; unknown reads are left out (they cannot change the state); unknown writes whose
 * value nobody ever observed are left out too (linearizing them can never explain a read).
 */
export function checkKv(ops: readonly Op[], options: LinOptions = {}): KvCheck {
  const byKey = new Map<string, Op[]>();
  for (const op of ops) {
    if (op.status === 'fail' || op.status === 'pending') continue;
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  // Values (and INCR families) that some successful operation observed.
  const observed = new Set<string>();
  for (const op of ops) {
    if (op.status !== 'ok') continue;
    if (op.f === 'read' || op.f === 'incr') { const fam = familyOf(op.result); if (fam !== null) observed.add(`${op.key}\u0000${fam}`); }
  }
  let dropped = 0;
  const partitions = new Map<string, Array<LinOp<KvInput, KvOutput>>>();
  const byId = new Map<number, Op>();
  for (const [key, list] of byKey) {
    const lin: Array<LinOp<KvInput, KvOutput>> = [];
    for (const op of list) {
      if (op.status === 'unknown' && op.f === 'read') continue;
      if (op.status === 'unknown' && op.f === 'write' && !observed.has(`${key}\u0000${familyOf(op.value)}`)) { dropped++; continue; }
      byId.set(op.id, op);
      const input: KvInput = op.f === 'write' ? { f: 'write', value: op.value! } : { f: op.f };
      const known = op.status === 'ok';
      const l: LinOp<KvInput, KvOutput> = { id: op.id, input, known, callMs: op.invokeMs, returnMs: known ? op.completeMs! : Infinity };
      if (known) l.output = op.f === 'write' ? 'OK' : op.result ?? null;
      lin.push(l);
    }
    partitions.set(key, lin);
  }
  const lin = checkPartitioned(kvModel, partitions, options);
  const keys: KvCheck['keys'] = lin.partitions.map(({ key, ops: n, result }) => {
    const k: KvCheck['keys'][number] = { key, ops: n, verdict: result.verdict, steps: result.steps, elapsedMs: Math.round(result.elapsedMs) };
    if (result.failedOpId !== undefined) k.failedOp = byId.get(result.failedOpId);
    if (result.statesAtFailure !== undefined) k.statesAtFailure = result.statesAtFailure;
    if (result.prefixTail !== undefined) k.prefixTail = result.prefixTail.map((id) => byId.get(id)!).filter((o) => o !== undefined);
    if (result.reason !== undefined) k.reason = result.reason;
    return k;
  });
  const lost = lostWrites(ops);
  return {
    linearizable: lin.verdict, keys, unobservedUnknownWritesDropped: dropped,
    lostWrites: lost.lost, phantomReads: phantoms(ops), keysWithoutFinalRead: lost.missing,
  };
}

/**
 * An acknowledged write is lost when its key's final read (after every fault healed) returns a
 * value whose origin — the write or INCR that produced it — completed before the write was even
 * invoked: nothing after the write can have produced that value, so the write's effect vanished.
 */
function lostWrites(ops: readonly Op[]): { lost: KvCheck['lostWrites']; missing: string[] } {
  const lost: KvCheck['lostWrites'] = [];
  const missing: string[] = [];
  const keys = new Set(ops.filter((o) => !o.final).map((o) => o.key));
  for (const key of keys) {
    const finals = ops.filter((o) => o.final === true && o.key === key && o.f === 'read' && o.status === 'ok');
    const fin = finals[finals.length - 1];
    if (fin === undefined) { missing.push(key); continue; }
    const v = fin.result === null || fin.result === undefined ? null : String(fin.result);
    const writes = ops.filter((o) => o.key === key && o.f === 'write' && o.status === 'ok' && !o.final);
    // Origin: the write of exactly this value, else the successful INCR that returned it.
    let origin: Op | null = null;
    if (v !== null) {
      origin = ops.find((o) => o.key === key && o.f === 'write' && o.value === v && o.status !== 'fail')
        ?? ops.find((o) => o.key === key && o.f === 'incr' && o.status === 'ok' && String(o.result) === v) ?? null;
      if (origin === null) continue; // produced by an unknown INCR: ambiguous, linearizability covers it
    }
    for (const w of writes) {
      const originDone = origin === null ? -Infinity : origin.completeMs ?? Infinity;
      if (origin === null || (origin.status === 'ok' && originDone < w.invokeMs)) lost.push({ write: w, finalRead: fin, origin });
    }
  }
  return { lost, missing };
}

/** Reads (and INCR results) of values that no write could have produced on that key. */
function phantoms(ops: readonly Op[]): Op[] {
  const families = new Set<string>();
  for (const o of ops) if (o.f === 'write' && o.status !== 'fail') families.add(`${o.key}\u0000${familyOf(o.value)}`);
  const out: Op[] = [];
  for (const o of ops) {
    if (o.status !== 'ok' || o.f === 'write') continue;
    if (o.result === null || o.result === undefined) continue;
    const fam = familyOf(o.result);
    // INCR on a key never written starts from 0: family "0" is legitimate.
    if (fam === '0') continue;
    if (!families.has(`${o.key}\u0000${fam}`)) out.push(o);
  }
  return out;
}
