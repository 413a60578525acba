/**
 * The host ABI: the narrow, Drawbridge-style interface under the library OS.
 *
 * Everything the guest can observe of the outside world crosses this interface: byte streams
 * named by URI, a wait-any on readiness, clocks and random bits. The platform implements it on
 * Node; extensions implement it on top of another HostAbi (Bascule-style), so a stack of them
 * can be composed at launch without the library OS knowing.
 *
 * All calls except `wait` are synchronous and non-blocking: the library OS runs inside a guest
 * import and must answer at once. Blocking is expressed by returning WOULD_BLOCK and then
 * awaiting `wait`, which the LVM runtime does while the guest is unwound (Asyncify).
 */

/** A stream handle issued by the ABI implementation. Never reused within one process. */
export type Handle = number;

/** Stream URIs the ABI understands. */
export type StreamUri =
  | `tcp.srv:${string}` // listening TCP socket, e.g. tcp.srv:127.0.0.1:7000 or tcp.srv:[::1]:0
  | `tcp:${string}` // an accepted connection, named by its peer
  | `stdin:`
  | `stdout:`
  | `stderr:`;

/** Result of a read that cannot complete now. */
export const WOULD_BLOCK = -1 as const;
/** Result of a read at end of stream (peer shut down its write side, or stream closed). */
export const END_OF_STREAM = 0 as const;

export type StreamKind = 'listener' | 'connection' | 'stdin' | 'stdout' | 'stderr';

/** Readiness of one stream, level-triggered. */
export interface Readiness {
  readable: boolean; // read/accept would not return WOULD_BLOCK (data, EOF or an error is pending)
  writable: boolean; // write would accept at least one byte
  hangup: boolean; // peer closed or reset: no more input will come
  error: ErrnoLike | null; // a pending error (e.g. ECONNRESET), reported by the next read/write
}

/** A POSIX-ish error name that the library OS maps to a WASI errno. */
export type ErrnoLike = 'ECONNRESET' | 'EPIPE' | 'ENOTCONN' | 'EBADF' | 'EIO' | 'EINVAL' | 'EADDRINUSE' | 'EACCES' | 'ENOSPC';

/** Information about an open stream, for fdstat and for the dashboard. */
export interface StreamInfo {
  kind: StreamKind;
  uri: string;
  /** For connections: the peer as host:port. For listeners: the bound local address. */
  address?: string;
}

/** What a waiter waits for on one handle. */
export interface Interest {
  handle: Handle;
  read: boolean;
  write: boolean;
}

export type ClockName = 'realtime' | 'monotonic';

/** The interface itself. Handles are opaque to callers. */
export interface HostAbi {
  /**
   * Bind a listening TCP socket (`tcp.srv:host:port`, port 0 for any). Used at launch and on
   * restore, never from inside a guest call. Rejects with WB_LISTEN_FAILED.
   */
  listen(uri: `tcp.srv:${string}`): Promise<Handle>;
  /** Open a console stream (`stdin:`, `stdout:`, `stderr:`). */
  open(uri: 'stdin:' | 'stdout:' | 'stderr:'): Handle;
  /** Describe an open stream. Throws EBADF-like errors via return of null for unknown handles. */
  info(handle: Handle): StreamInfo | null;
  /** Accept one pending connection on a listener: its handle, or WOULD_BLOCK. */
  accept(listener: Handle): Handle | typeof WOULD_BLOCK;
  /**
   * Read up to `dst.length` bytes into `dst`: the number of bytes read (> 0), END_OF_STREAM,
   * WOULD_BLOCK, or an ErrnoLike string for a pending error (reported once).
   */
  read(handle: Handle, dst: Uint8Array): number | ErrnoLike;
  /** Write bytes: the number accepted (0 means the stream is full: wait for writable), or an error. */
  write(handle: Handle, src: Uint8Array): number | ErrnoLike;
  /** Shut down one or both directions of a connection. */
  shutdown(handle: Handle, how: { read: boolean; write: boolean }): void | ErrnoLike;
  /** Close a stream. Closing stdout/stderr is allowed and only stops further writes. */
  close(handle: Handle): void;
  /** Level-triggered readiness of a stream. Unknown handles report an EBADF error. */
  poll(handle: Handle): Readiness;
  /**
   * Resolve when any interest may have become ready, when `deadlineNs` (monotonic, same clock as
   * `now('monotonic')`) has passed, or when `signal` aborts. Spurious wake-ups are allowed: the
   * caller re-checks with `poll`. Never rejects.
   */
  wait(interests: readonly Interest[], deadlineNs: bigint | null, signal?: AbortSignal): Promise<void>;
  /** Current time in nanoseconds. Monotonic never goes backwards within one ABI instance. */
  now(clock: ClockName): bigint;
  /** Clock resolution in nanoseconds. */
  resolution(clock: ClockName): bigint;
  /** Fill `dst` with cryptographically strong random bytes. */
  random(dst: Uint8Array): void;
  /** Read a host directory tree (for `--dir guest=host` at launch). */
  readHostTree(hostPath: string): HostTreeEntry;
}

/** A host directory tree read at launch; copied into the library OS's virtual file system. */
export type HostTreeEntry =
  | { kind: 'file'; data: Uint8Array; mtimeNs: bigint }
  | { kind: 'dir'; entries: Map<string, HostTreeEntry>; mtimeNs: bigint }
  | { kind: 'symlink'; target: string; mtimeNs: bigint };

/**
 * An extension over the ABI: wraps a lower HostAbi and is itself a HostAbi. Its state must be
 * serializable so the checkpointer can save and restore it with the LVM.
 */
export interface Extension extends HostAbi {
  readonly name: string;
  /** JSON-serializable state to checkpoint. */
  saveState(): unknown;
  /** Restore state saved by `saveState` (possibly in another process). */
  restoreState(state: unknown): void;
}

/** Builds an extension over `lower` from its option string (e.g. a fault rule). */
export type ExtensionFactory = (lower: HostAbi, options: Record<string, string>) => Extension;
