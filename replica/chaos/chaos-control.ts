/**
 * TEST AND CHAOS ONLY: faults the chaos harness injects into ONE member process from outside,
 * without touching the machine: a skewed clock (jumps and drift of this process's monotonic
 * clock, never the system clock) and a slow or failing checkpoint store.
 *
 * Off unless WATERBEAR_CHAOS_CONTROL names a control file. The harness writes that file
 * atomically (JSON, `ChaosControlState`); the member polls it every CHAOS_CONTROL_POLL_MS and,
 * once it applied a state, writes `<file>.applied` (JSON, `ChaosControlApplied`) so the harness
 * knows the fault is in effect and how often the store fault actually struck.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { WaterbearError } from '../../libos-host/errors.js';
import type { StoreFault } from '../../checkpoint/store/checkpoint-store.js';
import type { MonotonicClock } from '../coord/lease.js';

/** The environment variable naming the control file. */
export const CHAOS_CONTROL_ENV = 'WATERBEAR_CHAOS_CONTROL';
/** How often a member re-reads its control file. */
export const CHAOS_CONTROL_POLL_MS = 25;
/** Bounds on what a control file may ask (a typo must not freeze a member for an hour). */
export const MAX_CLOCK_JUMP_MS = 600_000;
export const MIN_CLOCK_RATE = 0.01;
export const MAX_CLOCK_RATE = 100;

/** What the harness asks of one member. A new `seq` is a new instruction. */
export interface ChaosControlState {
  seq: number;
  /** Jump this process's clock by `jumpMs` once (when `seq` changes), then run at `rate` × real time. */
  clock?: { jumpMs: number; rate: number };
  /** Every checkpoint-store commit is delayed by `delayMs` and/or fails with `errno`. */
  store?: StoreFault;
}

/** What the member reports back. */
export interface ChaosControlApplied {
  seq: number;
  pid: number;
  /** Store commits that were delayed / failed by the control since the process started. */
  storeDelays: number;
  storeFailures: number;
  /** This process's skewed clock minus its real monotonic clock, ms. */
  clockOffsetMs: number;
  clockRate: number;
}

/** Validate a parsed control file. @throws WaterbearError WB_CONFIG_INVALID */
export function parseChaosControl(text: string, file: string): ChaosControlState {
  let v: unknown;
  try { v = JSON.parse(text); } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `${CHAOS_CONTROL_ENV} file ${file} is not JSON: ${(err as Error).message}`);
  }
  const bad = (what: string): never => { throw new WaterbearError('WB_CONFIG_INVALID', `${CHAOS_CONTROL_ENV} file ${file}: ${what}`); };
  if (v === null || typeof v !== 'object') return bad('must be an object');
  const o = v as Record<string, unknown>;
  if (!Number.isInteger(o.seq) || (o.seq as number) < 0) bad(`seq must be a non-negative integer: got ${JSON.stringify(o.seq)}`);
  const out: ChaosControlState = { seq: o.seq as number };
  if (o.clock !== undefined && o.clock !== null) {
    const c = o.clock as Record<string, unknown>;
    const jumpMs = c.jumpMs ?? 0;
    const rate = c.rate ?? 1;
    if (typeof jumpMs !== 'number' || !Number.isFinite(jumpMs) || Math.abs(jumpMs) > MAX_CLOCK_JUMP_MS) bad(`clock.jumpMs must be within ±${MAX_CLOCK_JUMP_MS} ms: got ${JSON.stringify(jumpMs)}`);
    if (typeof rate !== 'number' || !(rate >= MIN_CLOCK_RATE && rate <= MAX_CLOCK_RATE)) bad(`clock.rate must be between ${MIN_CLOCK_RATE} and ${MAX_CLOCK_RATE}: got ${JSON.stringify(rate)}`);
    out.clock = { jumpMs: jumpMs as number, rate: rate as number };
  }
  if (o.store !== undefined && o.store !== null) {
    const s = o.store as Record<string, unknown>;
    const f: StoreFault = {};
    if (s.delayMs !== undefined) {
      if (typeof s.delayMs !== 'number' || !(s.delayMs >= 0 && s.delayMs <= 10_000)) bad(`store.delayMs must be between 0 and 10000: got ${JSON.stringify(s.delayMs)}`);
      f.delayMs = s.delayMs as number;
    }
    if (s.errno !== undefined) {
      if (s.errno !== 'ENOSPC' && s.errno !== 'EIO') bad(`store.errno must be "ENOSPC" or "EIO": got ${JSON.stringify(s.errno)}`);
      f.errno = s.errno as 'ENOSPC' | 'EIO';
    }
    out.store = f;
  }
  return out;
}

/**
 * A monotonic clock that can be jumped and made to drift: x ↦ anchorSkewed + (x − anchorReal)·rate,
 * continuous except at a jump. `base` is the real monotonic clock (injectable for tests).
 */
export class SkewedClock implements MonotonicClock {
  private anchorReal: number;
  private anchorSkewed: number;
  private rate = 1;

  constructor(private readonly base: () => number = () => performance.now()) {
    this.anchorReal = base();
    this.anchorSkewed = this.anchorReal;
  }

  nowMs(): number {
    return this.anchorSkewed + (this.base() - this.anchorReal) * this.rate;
  }

  /** Jump by `jumpMs` now (negative: backwards), then run at `rate` × real time. */
  set(jumpMs: number, rate: number): void {
    const now = this.nowMs();
    this.anchorReal = this.base();
    this.anchorSkewed = now + jumpMs;
    this.rate = rate;
  }

  get offsetMs(): number { return this.nowMs() - this.base(); }
  get currentRate(): number { return this.rate; }
}

/** The control of one member process; `fromEnv` returns null (no overhead) unless the harness set it up. */
export class ChaosControl {
  readonly clock = new SkewedClock();
  private state: ChaosControlState = { seq: -1 };
  private storeDelays = 0;
  private storeFailures = 0;
  private readonly timer: NodeJS.Timeout;
  private lastError: string | null = null;

  private constructor(readonly file: string, private readonly warn: (msg: string) => void) {
    this.poll();
    this.timer = setInterval(() => this.poll(), CHAOS_CONTROL_POLL_MS);
    this.timer.unref();
  }

  /** The control named by WATERBEAR_CHAOS_CONTROL, or null when it is not set. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env, warn: (msg: string) => void = (m) => process.stderr.write(`${m}\n`)): ChaosControl | null {
    const file = env[CHAOS_CONTROL_ENV];
    if (file === undefined || file === '') return null;
    warn(`waterbear: ${CHAOS_CONTROL_ENV}=${file}: TEST/CHAOS MODE — this process's clock and checkpoint store obey that file`);
    return new ChaosControl(file, warn);
  }

  /** For CheckpointStoreOptions.faultHook. */
  readonly storeFault = (): StoreFault | null => {
    const f = this.state.store;
    if (f === undefined || (f.errno === undefined && (f.delayMs ?? 0) <= 0)) return null;
    if ((f.delayMs ?? 0) > 0) this.storeDelays++;
    if (f.errno !== undefined) this.storeFailures++;
    queueMicrotask(() => this.report());
    return f;
  };

  /** Re-read the control file; a missing file means "no faults". */
  poll(): void {
    let next: ChaosControlState;
    try {
      next = parseChaosControl(readFileSync(this.file, 'utf8'), this.file);
      this.lastError = null;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') next = { seq: this.state.seq < 0 ? 0 : this.state.seq };
      else {
        const msg = (err as Error).message;
        if (msg !== this.lastError) this.warn(`waterbear: chaos control ignored: ${msg}`);
        this.lastError = msg;
        return;
      }
    }
    if (next.seq === this.state.seq) return;
    if (next.clock !== undefined) this.clock.set(next.clock.jumpMs, next.clock.rate);
    else this.clock.set(0, 1);
    this.state = next;
    this.report();
  }

  private report(): void {
    const applied: ChaosControlApplied = {
      seq: this.state.seq, pid: process.pid, storeDelays: this.storeDelays, storeFailures: this.storeFailures,
      clockOffsetMs: Math.round(this.clock.offsetMs), clockRate: this.clock.currentRate,
    };
    try {
      const tmp = `${this.file}.applied.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(applied));
      renameSync(tmp, `${this.file}.applied`);
    } catch { /* the harness will time out waiting and say so */ }
  }

  close(): void { clearInterval(this.timer); }
}
