import { ForwardingAbi } from '../abi/forwarding-abi.js';
import {
  END_OF_STREAM, WOULD_BLOCK,
  type ClockName, type ErrnoLike, type Extension, type Handle, type HostAbi, type Interest, type Readiness, type StreamKind,
} from '../abi/host-abi.js';
import { WaterbearError } from '../errors.js';
import { assertState, checkSavedState } from './extension-state.js';
import { ClockFault, type ClockFaultState } from './fault-clock.js';
import { faultRuleFromOptions, type FailCall, type FailRule, type FaultRule } from './fault-rule.js';
import { FaultTrigger, type FaultTriggerState } from './fault-trigger.js';
import { ReadLatency } from './read-latency.js';

const FAULT_STATE_VERSION = 1;
/** Spreads per-rule seeds derived from one random draw (the 32-bit golden ratio). */
const SEED_STRIDE = 0x9e3779b9;

interface SavedRule { text: string; trigger?: FaultTriggerState; clock?: ClockFaultState }

/**
 * Fault injection over the host ABI (rules from `parseFaultRule`):
 * - fail rules make accept/read/write/shutdown/poll return an errno, listen reject, wait wake
 *   spuriously, random return zeros. A read, accept or write that would block (the lower stream
 *   is not ready) is neither counted nor failed, so the failure pattern does not depend on how
 *   often the guest polls. A failed read/write consumes nothing; the data stays for the next call.
 * - latency rules withhold read data (see ReadLatency) or delay every wake-up of wait.
 * - clock rules jump and/or drift `now`; monotonic never goes backwards (it is clamped, so a
 *   negative jump makes it stand still), and wait deadlines are mapped back to the real clock.
 * The PRNG states, call counters and clock activations are the saved state; per-stream state
 * (pending injected errors, withheld data) is not, as connections do not survive a restore.
 */
export class FaultExtension extends ForwardingAbi implements Extension {
  readonly name = 'fault';
  private readonly perRule: Array<FaultTrigger | ClockFault | null>;
  private readonly triggers: FaultTrigger[] = [];
  private readonly failCalls = new Set<FailCall>();
  private readonly clocks: Record<ClockName, ClockFault[]> = { monotonic: [], realtime: [] };
  private readonly readLatencies: ReadLatency[] = [];
  private waitLatencyNs = 0n;
  /** Errors reported by a failed poll, returned by the next read or write of that handle. */
  private readonly pending = new Map<Handle, ErrnoLike>();
  /** Connections handed out reset by a failed accept: the errno until reported, then null. */
  private readonly resets = new Map<Handle, ErrnoLike | null>();
  private lastMonotonicNs: bigint | null = null;

  constructor(lower: HostAbi, readonly rules: readonly FaultRule[]) {
    super(lower);
    const needsSeed = rules.some((r) => r.kind === 'fail' && r.seed === null);
    const base = needsSeed ? drawSeed(lower) : 0;
    this.perRule = rules.map((rule, i) => {
      switch (rule.kind) {
        case 'fail': {
          const t = new FaultTrigger(rule, rule.seed ?? (base + i * SEED_STRIDE) >>> 0);
          this.triggers.push(t);
          this.failCalls.add(rule.call);
          return t;
        }
        case 'clock': {
          const c = new ClockFault(rule);
          this.clocks[rule.clock].push(c);
          return c;
        }
        case 'latency':
          if (rule.call === 'read') this.readLatencies.push(new ReadLatency(lower, BigInt(rule.latencyNs), rule.on));
          else this.waitLatencyNs += BigInt(rule.latencyNs);
          return null;
      }
    });
  }

  /** The PRNG seed of each fail rule, in rule order: print it when a seeded run fails. */
  seeds(): number[] {
    return this.triggers.map((t) => t.seed);
  }

  /** Count a call against every matching fail rule; the first rule that fires, or null. */
  private fire(call: FailCall, handle?: Handle): FailRule | null {
    if (!this.failCalls.has(call)) return null;
    let fired: FailRule | null = null;
    let kind: StreamKind | null | undefined;
    for (const t of this.triggers) {
      if (t.rule.call !== call) continue;
      if (t.rule.on !== null) {
        if (kind === undefined) kind = handle === undefined ? null : this.lower.info(handle)?.kind ?? null;
        if (kind !== t.rule.on) continue;
      }
      if (t.fire() && fired === null) fired = t.rule;
    }
    return fired;
  }

  /** When `handle`'s input is released by the read-latency rules; null if not withheld. */
  private releaseAt(handle: Handle): bigint | null {
    let at: bigint | null = null;
    for (const rl of this.readLatencies) {
      const t = rl.withheldUntil(handle);
      if (t !== null && (at === null || t > at)) at = t;
    }
    return at;
  }

  /** An injected result for read/write on a reset or error-pending handle, or undefined. */
  private injected(handle: Handle, forWrite: boolean): number | ErrnoLike | undefined {
    const reset = this.resets.get(handle);
    if (reset !== undefined) {
      if (reset === null) return forWrite ? 'EPIPE' : END_OF_STREAM;
      this.resets.set(handle, null);
      return reset;
    }
    const p = this.pending.get(handle);
    if (p !== undefined) this.pending.delete(handle);
    return p;
  }

  override listen(uri: `tcp.srv:${string}`): Promise<Handle> {
    const rule = this.fire('listen');
    if (rule === null) return this.lower.listen(uri);
    return Promise.reject(new WaterbearError('WB_LISTEN_FAILED', `cannot listen on ${uri}: ${rule.errno} (injected by --fault ${rule.text})`));
  }

  override accept(listener: Handle): Handle | typeof WOULD_BLOCK {
    if (!this.failCalls.has('accept') || !this.lower.poll(listener).readable) return this.lower.accept(listener);
    const rule = this.fire('accept', listener);
    const h = this.lower.accept(listener);
    if (rule !== null && h !== WOULD_BLOCK) {
      this.resets.set(h, rule.errno);
      this.lower.shutdown(h, { read: true, write: true });
    }
    return h;
  }

  override read(handle: Handle, dst: Uint8Array): number | ErrnoLike {
    const inj = this.injected(handle, false);
    if (inj !== undefined) return inj;
    if (this.readLatencies.length > 0 && this.releaseAt(handle) !== null) return WOULD_BLOCK;
    if (this.failCalls.has('read') && this.lower.poll(handle).readable) {
      const rule = this.fire('read', handle);
      if (rule !== null) return rule.errno as ErrnoLike;
    }
    const r = this.lower.read(handle, dst);
    for (const rl of this.readLatencies) rl.afterRead(handle);
    return r;
  }

  override write(handle: Handle, src: Uint8Array): number | ErrnoLike {
    const inj = this.injected(handle, true);
    if (inj !== undefined) return inj;
    if (this.failCalls.has('write') && this.lower.poll(handle).writable) {
      const rule = this.fire('write', handle);
      if (rule !== null) return rule.errno as ErrnoLike;
    }
    return this.lower.write(handle, src);
  }

  override shutdown(handle: Handle, how: { read: boolean; write: boolean }): void | ErrnoLike {
    if (this.resets.has(handle)) return 'ENOTCONN';
    const rule = this.fire('shutdown', handle);
    if (rule !== null) return rule.errno as ErrnoLike;
    return this.lower.shutdown(handle, how);
  }

  override close(handle: Handle): void {
    this.pending.delete(handle);
    this.resets.delete(handle);
    for (const rl of this.readLatencies) rl.forget(handle);
    this.lower.close(handle);
  }

  override poll(handle: Handle): Readiness {
    const reset = this.resets.get(handle);
    if (reset !== undefined) return { readable: true, writable: true, hangup: true, error: reset };
    const p = this.pending.get(handle);
    if (p !== undefined) return { readable: true, writable: true, hangup: false, error: p };
    let r = this.lower.poll(handle);
    if (this.readLatencies.length > 0 && this.releaseAt(handle) !== null) r = { ...r, readable: false, hangup: false, error: null };
    const rule = this.fire('poll', handle);
    if (rule === null) return r;
    this.pending.set(handle, rule.errno as ErrnoLike);
    return { readable: true, writable: true, hangup: false, error: rule.errno };
  }

  override async wait(interests: readonly Interest[], deadlineNs: bigint | null, signal?: AbortSignal): Promise<void> {
    if (this.fire('wait') !== null) return; // a spurious wake-up
    if (interests.some((i) => this.resets.has(i.handle) || this.pending.has(i.handle))) return; // ready now
    let cap = deadlineNs === null ? null : this.toLowerMonotonic(deadlineNs);
    const lowerInterests: Interest[] = [];
    for (const i of interests) {
      const until = i.read && this.readLatencies.length > 0 ? this.releaseAt(i.handle) : null;
      if (until === null) { lowerInterests.push(i); continue; }
      // Withheld input: wait for the release instead of the (already readable) lower stream.
      if (cap === null || until < cap) cap = until;
      if (i.write) lowerInterests.push({ handle: i.handle, read: false, write: true });
    }
    await this.lower.wait(lowerInterests, cap, signal);
    if (this.waitLatencyNs > 0n && signal?.aborted !== true) {
      await this.lower.wait([], this.lower.now('monotonic') + this.waitLatencyNs, signal);
    }
  }

  override now(clock: ClockName): bigint {
    const chain = this.clocks[clock];
    if (chain.length === 0) return this.lower.now(clock);
    let t = this.lower.now(clock);
    for (const c of chain) t = c.apply(t, true);
    if (clock === 'monotonic') {
      if (this.lastMonotonicNs !== null && t < this.lastMonotonicNs) t = this.lastMonotonicNs;
      this.lastMonotonicNs = t;
    }
    return t;
  }

  override random(dst: Uint8Array): void {
    if (this.fire('random') !== null) dst.fill(0);
    else this.lower.random(dst);
  }

  /** Map a deadline on this layer's monotonic clock to the lower ABI's. */
  private toLowerMonotonic(ns: bigint): bigint {
    const chain = this.clocks.monotonic;
    for (let i = chain.length - 1; i >= 0; i--) ns = chain[i].invert(ns);
    return ns;
  }

  saveState(): unknown {
    const clockStates = new Map<ClockFault, ClockFaultState>();
    for (const name of ['monotonic', 'realtime'] as const) {
      let x = this.lower.now(name);
      for (const c of this.clocks[name]) { clockStates.set(c, c.save(x)); x = c.apply(x, false); }
    }
    const rules: SavedRule[] = this.rules.map((rule, i) => {
      const s = this.perRule[i];
      if (s instanceof FaultTrigger) return { text: rule.text, trigger: s.save() };
      if (s instanceof ClockFault) return { text: rule.text, clock: clockStates.get(s) as ClockFaultState };
      return { text: rule.text };
    });
    return { v: FAULT_STATE_VERSION, rules };
  }

  restoreState(state: unknown): void {
    const s = checkSavedState(state, 'fault', FAULT_STATE_VERSION);
    assertState(Array.isArray(s.rules), 'fault', 'rules is not a list');
    const saved = s.rules as SavedRule[];
    const texts = saved.map((r) => r?.text);
    if (texts.length !== this.rules.length || texts.some((t, i) => t !== this.rules[i].text)) {
      throw new WaterbearError('WB_CONFIG_INVALID',
        `the saved fault rules [${texts.join('; ')}] differ from this launch's [${this.rules.map((r) => r.text).join('; ')}]; restore with the same --fault rules`);
    }
    saved.forEach((r, i) => {
      const st = this.perRule[i];
      if (st instanceof FaultTrigger) {
        const t = r.trigger;
        assertState(t !== undefined && Number.isSafeInteger(t.calls) && Number.isSafeInteger(t.failed) && Number.isSafeInteger(t.prng), 'fault', `rule ${i} has no valid counters`);
      } else if (st instanceof ClockFault) {
        const c = r.clock;
        assertState(c !== undefined && Number.isSafeInteger(c.calls) && (c.elapsedNs === null || /^-?\d+$/.test(String(c.elapsedNs))), 'fault', `rule ${i} has no valid clock state`);
      }
    });
    // Validated: now apply.
    saved.forEach((r, i) => {
      const st = this.perRule[i];
      if (st instanceof FaultTrigger) st.restore(r.trigger as FaultTriggerState);
    });
    for (const name of ['monotonic', 'realtime'] as const) {
      let x = this.lower.now(name);
      for (const c of this.clocks[name]) {
        c.restore(saved[this.perRule.indexOf(c)].clock as ClockFaultState, x);
        x = c.apply(x, false);
      }
    }
    // The clamp is per process: the restored layer's monotonic time is a new process's.
    this.lastMonotonicNs = null;
    this.pending.clear();
    this.resets.clear();
  }
}

function drawSeed(lower: HostAbi): number {
  const bytes = new Uint8Array(4);
  lower.random(bytes);
  return new DataView(bytes.buffer).getUint32(0, true);
}

/** Build a FaultExtension with one rule from a `fault:` spec's options. Throws WB_CONFIG_INVALID. */
export function createFaultExtension(lower: HostAbi, options: Record<string, string>): FaultExtension {
  const text = Object.entries(options).map(([k, v]) => `${k}=${v}`).join(',');
  return new FaultExtension(lower, [faultRuleFromOptions(options, text)]);
}
