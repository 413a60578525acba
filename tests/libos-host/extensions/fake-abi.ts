import {
  END_OF_STREAM, WOULD_BLOCK,
  type ClockName, type ErrnoLike, type Handle, type HostAbi, type HostTreeEntry, type Interest, type Readiness,
  type StreamInfo, type StreamKind,
} from '../../../libos-host/abi/host-abi.js';

interface FakeStream {
  kind: StreamKind;
  input: number[];
  eof: boolean;
  written: number[];
  writable: boolean;
  pendingConns: number;
  closed: boolean;
}

interface Waiter { interests: readonly Interest[]; deadlineNs: bigint | null; wake: () => void }

/** Realtime starts here (ns) so it is visibly distinct from monotonic. */
const FAKE_REALTIME_EPOCH_NS = 1_700_000_000_000_000_000n;

/**
 * A unit-test HostAbi: in-memory streams and a virtual clock that moves only with `advance`.
 * `wait` resolves when an interest is ready, at its deadline (virtual), or on abort.
 */
export class FakeAbi implements HostAbi {
  timeNs = 1_000_000n;
  private next = 1;
  private readonly streams = new Map<Handle, FakeStream>();
  private readonly waiters = new Set<Waiter>();
  private randomCounter = 0;

  private add(kind: StreamKind): Handle {
    const h = this.next++;
    this.streams.set(h, { kind, input: [], eof: false, written: [], writable: true, pendingConns: 0, closed: false });
    return h;
  }

  /** A new connection handle (as if accepted). */
  connection(): Handle { return this.add('connection'); }
  /** A new listener handle. */
  listener(): Handle { return this.add('listener'); }
  /** Bytes arriving on a connection. */
  push(h: Handle, data: string | Uint8Array): void {
    const s = this.streams.get(h) as FakeStream;
    s.input.push(...(typeof data === 'string' ? Buffer.from(data) : data));
    this.notify();
  }
  /** A client connecting to a listener. */
  incoming(listener: Handle): void { (this.streams.get(listener) as FakeStream).pendingConns++; this.notify(); }
  /** Everything written to `h`, as a string. */
  output(h: Handle): string { return Buffer.from((this.streams.get(h) as FakeStream).written).toString(); }
  /** Advance virtual time, waking waiters whose deadline passed. */
  advance(ns: bigint): void { this.timeNs += ns; this.notify(); }
  /** Number of pending waiters (to check a wait is really parked). */
  get waiting(): number { return this.waiters.size; }

  private ready(i: Interest): boolean {
    const r = this.poll(i.handle);
    return (i.read && r.readable) || (i.write && r.writable);
  }

  private notify(): void {
    for (const w of [...this.waiters]) {
      if (w.interests.some((i) => this.ready(i)) || (w.deadlineNs !== null && this.timeNs >= w.deadlineNs)) w.wake();
    }
  }

  async listen(): Promise<Handle> { return this.listener(); }
  open(uri: 'stdin:' | 'stdout:' | 'stderr:'): Handle { return this.add(uri.slice(0, -1) as StreamKind); }
  info(handle: Handle): StreamInfo | null {
    const s = this.streams.get(handle);
    return s === undefined ? null : { kind: s.kind, uri: `${s.kind}:` };
  }
  accept(listener: Handle): Handle | typeof WOULD_BLOCK {
    const s = this.streams.get(listener);
    if (s === undefined || s.pendingConns === 0) return WOULD_BLOCK;
    s.pendingConns--;
    return this.connection();
  }
  read(handle: Handle, dst: Uint8Array): number | ErrnoLike {
    const s = this.streams.get(handle);
    if (s === undefined) return 'EBADF';
    if (s.input.length === 0) return s.eof ? END_OF_STREAM : WOULD_BLOCK;
    const n = Math.min(dst.length, s.input.length);
    dst.set(s.input.splice(0, n));
    return n;
  }
  write(handle: Handle, src: Uint8Array): number | ErrnoLike {
    const s = this.streams.get(handle);
    if (s === undefined) return 'EBADF';
    if (!s.writable) return 0;
    s.written.push(...src);
    return src.length;
  }
  shutdown(handle: Handle): void | ErrnoLike { return this.streams.has(handle) ? undefined : 'EBADF'; }
  close(handle: Handle): void { this.streams.delete(handle); this.notify(); }
  poll(handle: Handle): Readiness {
    const s = this.streams.get(handle);
    if (s === undefined) return { readable: true, writable: true, hangup: false, error: 'EBADF' };
    if (s.kind === 'listener') return { readable: s.pendingConns > 0, writable: false, hangup: false, error: null };
    return { readable: s.input.length > 0 || s.eof, writable: s.writable, hangup: s.eof && s.input.length === 0, error: null };
  }
  wait(interests: readonly Interest[], deadlineNs: bigint | null, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const w: Waiter = { interests, deadlineNs, wake: () => { this.waiters.delete(w); resolve(); } };
      if (signal?.aborted === true) { resolve(); return; }
      signal?.addEventListener('abort', () => w.wake());
      this.waiters.add(w);
      this.notify();
    });
  }
  now(clock: ClockName): bigint { return clock === 'monotonic' ? this.timeNs : FAKE_REALTIME_EPOCH_NS + this.timeNs; }
  resolution(): bigint { return 1n; }
  random(dst: Uint8Array): void { for (let i = 0; i < dst.length; i++) dst[i] = (this.randomCounter++ * 37 + 11) & 0xff; }
  readHostTree(): HostTreeEntry { return { kind: 'dir', entries: new Map(), mtimeNs: 0n }; }
}

/** Resolve after pending microtasks and one macrotask turn, so settled promises have run. */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
