import { ForwardingAbi } from '../abi/forwarding-abi.js';
import {
  WOULD_BLOCK,
  type ClockName, type ErrnoLike, type Handle, type HostAbi, type HostTreeEntry, type Interest, type Readiness, type StreamInfo,
} from '../abi/host-abi.js';
import { isWaterbearError } from '../errors.js';
import type { AbiCallName } from './abi-calls.js';

/** A small JSON value for trace arguments and results. */
export type TraceValue = string | number | boolean | null | TraceValue[];

/** One completed ABI call, as seen by an observing extension (trace, metrics). */
export interface CallEvent {
  call: AbiCallName;
  /** Lower-ABI monotonic time at the start and end of the call (ns). */
  startNs: bigint;
  endNs: bigint;
  handle?: Handle;
  /** Small arguments: sizes, URIs, flags; never payload bytes. */
  args?: Record<string, TraceValue>;
  /** The result in trace form: a count or handle, "WOULD_BLOCK", an errno name, a readiness string, or null. */
  result: TraceValue;
  /** Set when the call failed: the ErrnoLike it returned or the code of the error it threw. */
  error?: string;
  /** Bytes moved by read (> 0) or accepted by write. */
  bytes?: number;
  /** The moved bytes: a view valid only during `onCall`. */
  payload?: Uint8Array;
}

/** Compact readiness: `r`, `w`, `h` for readable, writable, hangup (`-` if none), then `:ERRNO` if an error is pending. */
export function readinessString(r: Readiness): string {
  const flags = `${r.readable ? 'r' : ''}${r.writable ? 'w' : ''}${r.hangup ? 'h' : ''}` || '-';
  return r.error === null ? flags : `${flags}:${r.error}`;
}

function errorCode(err: unknown): string {
  return isWaterbearError(err) ? err.code : err instanceof Error ? err.name : 'Error';
}

function ioResult(r: number | ErrnoLike): TraceValue {
  return r === WOULD_BLOCK ? 'WOULD_BLOCK' : r;
}

/** A monotonic clock in nanoseconds, used to time calls. */
export type TimingClock = () => bigint;

/**
 * A forwarding extension that reports every ABI call to `onCall`. Calls are timed with
 * `clockNs`, by default the lower ABI's monotonic clock; in a composed stack it is the
 * platform's, so timing reads neither pass through nor show up in other extensions. Trace and
 * metrics extend it; calls are forwarded unchanged.
 */
export abstract class ObservingAbi extends ForwardingAbi {
  protected readonly clockNs: TimingClock;

  constructor(lower: HostAbi, clockNs?: TimingClock) {
    super(lower);
    this.clockNs = clockNs ?? (() => lower.now('monotonic'));
  }

  /** Called once per completed call (for `wait` and `listen`, when the promise settles). */
  protected abstract onCall(ev: CallEvent): void;

  private observe<T>(call: AbiCallName, handle: Handle | undefined, args: Record<string, TraceValue> | undefined,
    run: () => T, describe: (r: T) => Pick<CallEvent, 'result' | 'error' | 'bytes' | 'payload'>): T {
    const startNs = this.clockNs();
    let r: T;
    try {
      r = run();
    } catch (err) {
      const code = errorCode(err);
      this.onCall({ call, startNs, endNs: this.clockNs(), handle, args, result: code, error: code });
      throw err;
    }
    this.onCall({ call, startNs, endNs: this.clockNs(), handle, args, ...describe(r) });
    return r;
  }

  override async listen(uri: `tcp.srv:${string}`): Promise<Handle> {
    const startNs = this.clockNs();
    try {
      const h = await this.lower.listen(uri);
      this.onCall({ call: 'listen', startNs, endNs: this.clockNs(), args: { uri }, result: h });
      return h;
    } catch (err) {
      const code = errorCode(err);
      this.onCall({ call: 'listen', startNs, endNs: this.clockNs(), args: { uri }, result: code, error: code });
      throw err;
    }
  }

  override open(uri: 'stdin:' | 'stdout:' | 'stderr:'): Handle {
    return this.observe('open', undefined, { uri }, () => this.lower.open(uri), (h) => ({ result: h }));
  }

  override info(handle: Handle): StreamInfo | null {
    return this.observe('info', handle, undefined, () => this.lower.info(handle), (i) => ({ result: i?.kind ?? null }));
  }

  override accept(listener: Handle): Handle | typeof WOULD_BLOCK {
    return this.observe('accept', listener, undefined, () => this.lower.accept(listener), (h) => ({ result: ioResult(h) }));
  }

  override read(handle: Handle, dst: Uint8Array): number | ErrnoLike {
    return this.observe('read', handle, { len: dst.length }, () => this.lower.read(handle, dst), (r) =>
      typeof r === 'string' ? { result: r, error: r }
        : r > 0 ? { result: r, bytes: r, payload: dst.subarray(0, r) } : { result: ioResult(r) });
  }

  override write(handle: Handle, src: Uint8Array): number | ErrnoLike {
    return this.observe('write', handle, { bytes: src.length }, () => this.lower.write(handle, src), (r) =>
      typeof r === 'string' ? { result: r, error: r }
        : r > 0 ? { result: r, bytes: r, payload: src.subarray(0, r) } : { result: r });
  }

  override shutdown(handle: Handle, how: { read: boolean; write: boolean }): void | ErrnoLike {
    return this.observe('shutdown', handle, { read: how.read, write: how.write }, () => this.lower.shutdown(handle, how),
      (r) => (typeof r === 'string' ? { result: r, error: r } : { result: null }));
  }

  override close(handle: Handle): void {
    this.observe('close', handle, undefined, () => this.lower.close(handle), () => ({ result: null }));
  }

  override poll(handle: Handle): Readiness {
    return this.observe('poll', handle, undefined, () => this.lower.poll(handle), (r) => ({ result: readinessString(r) }));
  }

  override async wait(interests: readonly Interest[], deadlineNs: bigint | null, signal?: AbortSignal): Promise<void> {
    const startNs = this.clockNs();
    await this.lower.wait(interests, deadlineNs, signal);
    const args = {
      interests: interests.map((i) => `${i.handle}${i.read ? 'r' : ''}${i.write ? 'w' : ''}`),
      deadline: deadlineNs === null ? null : deadlineNs.toString(),
    };
    this.onCall({ call: 'wait', startNs, endNs: this.clockNs(), args, result: signal?.aborted === true ? 'aborted' : null });
  }

  override now(clock: ClockName): bigint {
    return this.observe('now', undefined, { clock }, () => this.lower.now(clock), (t) => ({ result: t.toString() }));
  }

  override resolution(clock: ClockName): bigint {
    return this.observe('resolution', undefined, { clock }, () => this.lower.resolution(clock), (t) => ({ result: t.toString() }));
  }

  override random(dst: Uint8Array): void {
    // Random bytes are never exposed as payload: they may be key material.
    this.observe('random', undefined, { bytes: dst.length }, () => this.lower.random(dst), () => ({ result: null }));
  }

  override readHostTree(hostPath: string): HostTreeEntry {
    return this.observe('readHostTree', undefined, { path: hostPath }, () => this.lower.readHostTree(hostPath), (e) => ({ result: e.kind }));
  }
}
