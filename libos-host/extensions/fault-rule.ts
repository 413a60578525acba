import type { ClockName, ErrnoLike, StreamKind } from '../abi/host-abi.js';
import { WaterbearError } from '../errors.js';
import { parseDurationNs } from './duration.js';
import { rejectUnknownOptions, splitOptions } from './spec-options.js';

const WHAT = '--fault';
/** Largest clock rate factor accepted by drift=. */
export const MAX_CLOCK_DRIFT = 100;

/** What failing each call means, and which errnos it can fail with (the first is the default). */
const FAIL_CALLS = {
  // The ABI's accept cannot return an error: a failed accept hands out a connection that is already reset.
  accept: ['ECONNRESET', 'EIO'],
  read: ['ECONNRESET', 'ENOTCONN', 'EIO', 'EBADF'],
  write: ['EPIPE', 'ECONNRESET', 'ENOTCONN', 'EIO', 'ENOSPC', 'EBADF'],
  shutdown: ['ENOTCONN', 'EIO', 'EBADF'],
  // A failed poll reports a pending error, which the next read or write on that handle returns.
  poll: ['ECONNRESET', 'EPIPE', 'ENOTCONN', 'EIO'],
  // listen rejects with WB_LISTEN_FAILED naming the errno.
  listen: ['EADDRINUSE', 'EACCES'],
  // No errno: a failed wait is a spurious wake-up (allowed by the ABI); a failed random returns zero bytes.
  wait: [],
  random: [],
} as const satisfies Record<string, readonly ErrnoLike[]>;

export type FailCall = keyof typeof FAIL_CALLS;
/** Every call a rule can name. */
export const FAULT_CALLS = ['accept', 'listen', 'now', 'poll', 'random', 'read', 'shutdown', 'wait', 'write'] as const;
export type FaultCall = (typeof FAULT_CALLS)[number];
/** Calls that name a stream, so `on=` applies. */
const HANDLE_CALLS: readonly string[] = ['accept', 'read', 'write', 'shutdown', 'poll'];
const LATENCY_CALLS: readonly string[] = ['read', 'wait'];
const STREAM_KINDS: readonly StreamKind[] = ['listener', 'connection', 'stdin', 'stdout', 'stderr'];
const WHY_NOT: Record<string, string> = {
  open: "the host ABI's open cannot report an error",
  info: "the host ABI's info has no error result",
  close: "the host ABI's close returns nothing, so it cannot fail",
  resolution: 'it is a constant of the clock',
  readHostTree: 'it runs only at launch',
};
const OPTION_KEYS = ['call', 'errno', 'p', 'after', 'count', 'seed', 'on', 'latency', 'clock', 'jump', 'drift'] as const;

/** Fail matching calls: every call, after `after` calls, with probability `p`, at most `count` times. */
export interface FailRule {
  kind: 'fail';
  text: string;
  call: FailCall;
  /** null for wait (spurious wake-up) and random (zero bytes). */
  errno: ErrnoLike | null;
  /** Probability in (0, 1] that an eligible call fails. */
  p: number;
  /** The first `after` matching calls never fail. */
  after: number;
  /** At most this many failures; null: unlimited. */
  count: number | null;
  /** PRNG seed; null: drawn from the lower ABI's random once at construction. */
  seed: number | null;
  on: StreamKind | null;
}

/** Delay reads (data withheld) or wait wake-ups by `latencyNs`. */
export interface LatencyRule {
  kind: 'latency';
  text: string;
  call: 'read' | 'wait';
  latencyNs: number;
  on: StreamKind | null;
}

/** Change what `now(clock)` returns once `after` calls of it have passed: a jump and/or a rate. */
export interface ClockRule {
  kind: 'clock';
  text: string;
  call: 'now';
  clock: ClockName;
  /** Signed offset added at activation (ns). */
  jumpNs: number;
  /** Rate of the faulted clock relative to the real one (1 = unchanged). */
  drift: number;
  after: number;
}

export type FaultRule = FailRule | LatencyRule | ClockRule;

function bad(message: string): never {
  throw new WaterbearError('WB_CONFIG_INVALID', `${WHAT}: ${message}`);
}

function parseCount(text: string, key: string, min: number): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min) bad(`${key} must be an integer ≥ ${min}: got "${text}"`);
  return Number(text);
}

function parseCall(text: string | undefined): FaultCall {
  if (text === undefined || text === '') bad(`a rule needs call=NAME; calls are: ${FAULT_CALLS.join(', ')}`);
  if (Object.hasOwn(WHY_NOT, text)) bad(`call '${text}' cannot be faulted: ${WHY_NOT[text]}; calls are: ${FAULT_CALLS.join(', ')}`);
  if (!(FAULT_CALLS as readonly string[]).includes(text)) bad(`unknown call '${text}'; calls are: ${FAULT_CALLS.join(', ')}`);
  return text as FaultCall;
}

function onlyWith(o: Record<string, string>, keys: readonly string[], context: string): void {
  for (const k of keys) if (o[k] !== undefined) bad(`${k}= does not apply ${context}`);
}

function parseClockRule(o: Record<string, string>, text: string): ClockRule {
  onlyWith(o, ['errno', 'p', 'count', 'seed', 'on', 'latency'], 'to call=now (use clock=, jump=, drift= and after=)');
  if (o.clock !== 'monotonic' && o.clock !== 'realtime') bad(`call=now needs clock=monotonic or clock=realtime: got ${o.clock === undefined ? 'none' : `"${o.clock}"`}`);
  if (o.jump === undefined && o.drift === undefined) bad('call=now needs jump= (e.g. jump=+5s) and/or drift= (e.g. drift=1.001)');
  const jumpNs = o.jump === undefined ? 0 : parseDurationNs(o.jump, `${WHAT}: jump`, { signed: true });
  let drift = 1;
  if (o.drift !== undefined) {
    drift = Number(o.drift);
    if (!/^\d+(\.\d+)?$/.test(o.drift) || !(drift > 0 && drift <= MAX_CLOCK_DRIFT)) bad(`drift must be a rate in (0, ${MAX_CLOCK_DRIFT}] such as 1.001: got "${o.drift}"`);
  }
  const after = o.after === undefined ? 0 : parseCount(o.after, 'after', 0);
  return { kind: 'clock', text, call: 'now', clock: o.clock, jumpNs, drift, after };
}

function parseOn(o: Record<string, string>, call: FaultCall): StreamKind | null {
  if (o.on === undefined) return null;
  if (!HANDLE_CALLS.includes(call)) bad(`on= applies only to calls on a stream (${HANDLE_CALLS.join(', ')}), not to ${call}`);
  if (!(STREAM_KINDS as readonly string[]).includes(o.on)) bad(`on= must be one of ${STREAM_KINDS.join(', ')}: got "${o.on}"`);
  return o.on as StreamKind;
}

/**
 * Build a fault rule from its options (the `fault:` spec or `--fault RULE`). `text` is kept for
 * error messages and to match saved state. Throws WB_CONFIG_INVALID with the exact problem.
 */
export function faultRuleFromOptions(o: Record<string, string>, text: string): FaultRule {
  rejectUnknownOptions(o, OPTION_KEYS, WHAT);
  const call = parseCall(o.call);
  if (call === 'now') return parseClockRule(o, text);
  onlyWith(o, ['clock', 'jump', 'drift'], `to call=${call} (only to call=now)`);
  const on = parseOn(o, call);
  if (o.latency !== undefined) {
    if (!LATENCY_CALLS.includes(call)) bad(`latency= applies only to ${LATENCY_CALLS.join(' and ')}, not to ${call}`);
    onlyWith(o, ['errno', 'p', 'after', 'count', 'seed'], 'to a latency rule (it delays every call); write a second rule to also fail calls');
    const latencyNs = parseDurationNs(o.latency, `${WHAT}: latency`);
    if (latencyNs <= 0) bad(`latency must be positive: got "${o.latency}"`);
    return { kind: 'latency', text, call: call as 'read' | 'wait', latencyNs, on };
  }
  const errnos: readonly ErrnoLike[] = FAIL_CALLS[call];
  let errno: ErrnoLike | null = errnos[0] ?? null;
  if (o.errno !== undefined) {
    if (errnos.length === 0) bad(`call '${call}' takes no errno (${call === 'wait' ? 'a failed wait is a spurious wake-up' : 'a failed random returns zero bytes'})`);
    if (!errnos.includes(o.errno as ErrnoLike)) bad(`call '${call}' cannot fail with '${o.errno}'; errnos for ${call} are: ${errnos.join(', ')}`);
    errno = o.errno as ErrnoLike;
  }
  let p = 1;
  if (o.p !== undefined) {
    p = Number(o.p);
    if (!/^\d*\.?\d+$/.test(o.p) || !(p > 0 && p <= 1)) bad(`p must be a probability in (0, 1] such as 0.1: got "${o.p}"`);
  }
  const after = o.after === undefined ? 0 : parseCount(o.after, 'after', 0);
  const count = o.count === undefined ? null : parseCount(o.count, 'count', 1);
  let seed: number | null = null;
  if (o.seed !== undefined) {
    seed = parseCount(o.seed, 'seed', 0);
    if (seed > 0xffffffff) bad(`seed must be an integer in [0, 4294967295]: got "${o.seed}"`);
  }
  return { kind: 'fail', text, call: call as FailCall, errno, p, after, count, seed, on };
}

/**
 * Parse a `--fault RULE` text (the `fault:` spec grammar without the prefix), e.g.
 * `call=read,errno=ECONNRESET,p=0.1,seed=7`. Throws WB_CONFIG_INVALID.
 */
export function parseFaultRule(text: string): FaultRule {
  const t = text.trim();
  return faultRuleFromOptions(splitOptions(t, WHAT), t);
}
