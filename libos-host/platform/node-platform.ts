import { randomFillSync } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { WaterbearError } from '../errors.js';
import {
  END_OF_STREAM, WOULD_BLOCK,
  type ClockName, type ErrnoLike, type Handle, type HostAbi, type HostTreeEntry, type Interest,
  type Readiness, type StreamInfo,
} from '../abi/host-abi.js';
import { parseListenUri } from './listen-address.js';

/** Input buffered per connection before the socket is paused (TCP backpressure to the client). */
export const INPUT_HIGH_WATER_BYTES = 1024 * 1024;
/** How long a closed connection may take to deliver its last bytes before it is destroyed. */
export const CLOSE_LINGER_MS = 30_000;
/** Output the platform accepts per connection before `write` returns 0 (the guest must wait). */
export const OUTPUT_HIGH_WATER_BYTES = 1024 * 1024;

interface ListenerStream {
  kind: 'listener';
  uri: string;
  /** Null while parked (parkService): the address is free and nothing is accepted. */
  server: net.Server | null;
  pending: net.Socket[];
  address: string;
  error: ErrnoLike | null;
  /** Wakes the guest's waits on this listener. */
  wake: () => void;
  /** Closed by the guest or closeAll: a bind that completes afterwards must not keep the address. */
  closed: boolean;
}

interface ConnectionStream {
  kind: 'connection';
  uri: string;
  socket: net.Socket;
  chunks: Buffer[];
  chunkOffset: number;
  buffered: number;
  eof: boolean;
  error: ErrnoLike | null;
  closed: boolean;
  writeShut: boolean;
  paused: boolean;
}

interface ConsoleStream {
  kind: 'stdin' | 'stdout' | 'stderr';
  uri: string;
  out: Writable | null;
  in: Readable | null;
  chunks: Buffer[];
  chunkOffset: number;
  eof: boolean;
  closed: boolean;
  /** stdin: stop listening (a flowing process.stdin would keep the process alive). */
  detach: (() => void) | null;
}

type Stream = ListenerStream | ConnectionStream | ConsoleStream;

interface Waiter {
  interests: readonly Interest[];
  wake: () => void;
}

/** Counters of the guest's connections since this platform was created (for the dashboard). */
export interface PlatformIoStats {
  connectionsAccepted: number;
  /** Bytes the guest read from its connections. */
  bytesReceived: number;
  /** Bytes handed to the sockets of its connections (after the network buffer released them). */
  bytesSent: number;
}

export interface NodePlatformOptions {
  stdout?: Writable;
  stderr?: Writable;
  stdin?: Readable | null;
}

function errnoOf(err: NodeJS.ErrnoException): ErrnoLike {
  switch (err.code) {
    case 'ECONNRESET': return 'ECONNRESET';
    case 'EPIPE': return 'EPIPE';
    case 'EADDRINUSE': return 'EADDRINUSE';
    case 'EACCES': return 'EACCES';
    default: return 'EIO';
  }
}

/** Why a listener could not bind, by errno, and what to do about it. */
function listenAdvice(code: string | undefined): string {
  switch (code) {
    case 'EADDRINUSE': return 'the address is in use: choose another address or stop the process using it';
    case 'EADDRNOTAVAIL': return 'it is not an address of this machine: listen on one of its addresses (127.0.0.1, or 0.0.0.0 for all of them)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN': return 'the host name does not resolve: give an IP address of this machine, or a name that resolves to one';
    case 'EACCES': return 'permission denied (ports below 1024 need privileges): choose a port from 1024 up';
    default: return 'choose another address';
  }
}

/**
 * The host ABI on Node: real TCP sockets, the process's console, hrtime and crypto randomness.
 * The only code in libos-host that touches the OS (rule 4 in DESIGN.md).
 */
export class NodePlatform implements HostAbi {
  private readonly streams = new Map<Handle, Stream>();
  private nextHandle = 1;
  private readonly io: PlatformIoStats = { connectionsAccepted: 0, bytesReceived: 0, bytesSent: 0 };
  private readonly waiters = new Set<Waiter>();
  private readonly options: NodePlatformOptions;
  /** Counts parkService calls: a rebinding that straddles one is abandoned (see bind). */
  private parks = 0;

  constructor(options: NodePlatformOptions = {}) {
    this.options = options;
  }

  private add(stream: Stream): Handle {
    const h = this.nextHandle++;
    this.streams.set(h, stream);
    return h;
  }

  /** Wake every waiter interested in `handle` (or all, when handle is null). */
  private notify(handle: Handle | null): void {
    for (const w of this.waiters) {
      if (handle === null || w.interests.some((i) => i.handle === handle)) w.wake();
    }
  }

  async listen(uri: `tcp.srv:${string}`): Promise<Handle> {
    const handleRef = { h: 0 };
    const stream: ListenerStream = { kind: 'listener', uri, server: null, pending: [], address: '', error: null, wake: () => this.notify(handleRef.h), closed: false };
    await this.bind(stream, uri, false);
    handleRef.h = this.add(stream);
    return handleRef.h;
  }

  /**
   * Bind `stream` to `uri` (its first address, or the one it had before parking). A bind that
   * completes after the stream was closed, or after the service was parked again meanwhile,
   * lets the address go at once: the stream stays unbound.
   */
  private async bind(stream: ListenerStream, uri: `tcp.srv:${string}`, rebind: boolean): Promise<void> {
    const parks = this.parks;
    const { host, port } = parseListenUri(uri);
    const server = net.createServer({ pauseOnConnect: false, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(new WaterbearError('WB_LISTEN_FAILED', `cannot listen on ${host}:${port}: ${err.code ?? err.message}, ${listenAdvice(err.code)}`, { cause: err }));
      });
      server.listen({ host, port, backlog: 511 }, () => resolve());
    });
    if (stream.closed || (rebind && this.parks !== parks)) { server.close(); return; }
    const addr = server.address() as net.AddressInfo;
    stream.address = addr.family === 'IPv6' ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
    stream.server = server;
    stream.error = null;
    server.on('error', (err: NodeJS.ErrnoException) => { stream.error = errnoOf(err); stream.wake(); });
    server.on('connection', (socket) => {
      socket.setNoDelay(true);
      // Errors before the guest accepts must not crash the host; they resurface on read.
      socket.on('error', () => {});
      stream.pending.push(socket);
      stream.wake();
    });
  }

  /**
   * Free the service addresses while keeping the guest's state: every listener stops accepting
   * and unbinds (connections not yet accepted are dropped), and every connection is cut, as a
   * crash would cut it. The guest sees its connections end and its listeners stay quiet. For a
   * primary that cannot tell whether it is still primary: a backup may take over the addresses
   * meanwhile. `resumeListening` binds them again. Returns how many connections it cut.
   */
  parkService(): number {
    this.parks++;
    let cut = 0;
    for (const [h, s] of this.streams) {
      if (s.kind === 'listener' && s.server !== null) {
        for (const p of s.pending) p.destroy();
        s.pending = [];
        s.server.close();
        s.server = null;
      } else if (s.kind === 'connection' && !s.socket.destroyed) {
        s.socket.destroy();
        s.eof = true;
        cut++;
        this.notify(h);
      }
    }
    return cut;
  }

  /** True while parkService holds the listeners unbound. */
  get serviceParked(): boolean {
    for (const s of this.streams.values()) if (s.kind === 'listener' && s.server === null) return true;
    return false;
  }

  /**
   * Bind every parked listener again, at the address it had. Throws WB_LISTEN_FAILED when one
   * is taken (another replica serves it); the listeners bound so far stay bound, and a later
   * call retries the rest.
   */
  async resumeListening(): Promise<void> {
    for (const s of this.streams.values()) {
      if (s.kind === 'listener' && s.server === null) await this.bind(s, `tcp.srv:${s.address}`, true);
    }
  }

  /** A copy of the connection counters. */
  ioStats(): PlatformIoStats { return { ...this.io }; }

  /** The bound address of a listener (host:port), e.g. to learn the port after binding port 0. */
  listenerAddress(handle: Handle): string | null {
    const s = this.streams.get(handle);
    return s?.kind === 'listener' ? s.address : null;
  }

  open(uri: 'stdin:' | 'stdout:' | 'stderr:'): Handle {
    const kind = uri.slice(0, -1) as 'stdin' | 'stdout' | 'stderr';
    const stream: ConsoleStream = { kind, uri, out: null, in: null, chunks: [], chunkOffset: 0, eof: false, closed: false, detach: null };
    if (kind === 'stdout') stream.out = this.options.stdout ?? process.stdout;
    else if (kind === 'stderr') stream.out = this.options.stderr ?? process.stderr;
    else {
      const input = this.options.stdin === undefined ? process.stdin : this.options.stdin;
      if (input === null) stream.eof = true;
      else {
        stream.in = input;
        const handleRef = { h: 0 };
        const onData = (d: Buffer | string): void => { stream.chunks.push(typeof d === 'string' ? Buffer.from(d) : d); this.notify(handleRef.h); };
        const onEnd = (): void => { stream.eof = true; this.notify(handleRef.h); };
        input.on('data', onData);
        input.on('end', onEnd);
        input.on('error', onEnd);
        stream.detach = () => {
          input.off('data', onData);
          input.off('end', onEnd);
          input.off('error', onEnd);
          if (input.listenerCount('data') === 0) input.pause();
        };
        const h = this.add(stream);
        handleRef.h = h;
        return h;
      }
    }
    return this.add(stream);
  }

  info(handle: Handle): StreamInfo | null {
    const s = this.streams.get(handle);
    if (s === undefined) return null;
    if (s.kind === 'listener') return { kind: 'listener', uri: s.uri, address: s.address };
    if (s.kind === 'connection') return { kind: 'connection', uri: s.uri, address: s.uri.slice(4) };
    return { kind: s.kind, uri: s.uri };
  }

  accept(listener: Handle): Handle | typeof WOULD_BLOCK {
    const s = this.streams.get(listener);
    if (s?.kind !== 'listener') return WOULD_BLOCK;
    const socket = s.pending.shift();
    if (socket === undefined) return WOULD_BLOCK;
    const peer = socket.remoteFamily === 'IPv6' ? `[${socket.remoteAddress}]:${socket.remotePort}` : `${socket.remoteAddress}:${socket.remotePort}`;
    const conn: ConnectionStream = {
      kind: 'connection', uri: `tcp:${peer}`, socket, chunks: [], chunkOffset: 0, buffered: 0,
      eof: false, error: null, closed: false, writeShut: false, paused: false,
    };
    const h = this.add(conn);
    this.io.connectionsAccepted++;
    socket.on('data', (d: Buffer) => {
      conn.chunks.push(d);
      conn.buffered += d.length;
      if (conn.buffered >= INPUT_HIGH_WATER_BYTES && !conn.paused) { conn.paused = true; socket.pause(); }
      this.notify(h);
    });
    socket.on('end', () => { conn.eof = true; this.notify(h); });
    socket.on('error', (err: NodeJS.ErrnoException) => { conn.error = errnoOf(err); conn.eof = true; this.notify(h); });
    socket.on('close', () => { conn.eof = true; this.notify(h); });
    socket.on('drain', () => this.notify(h));
    // A socket that died before accept: surface it at once.
    if (socket.destroyed) { conn.eof = true; }
    return h;
  }

  read(handle: Handle, dst: Uint8Array): number | ErrnoLike {
    const s = this.streams.get(handle);
    if (s === undefined || s.kind === 'listener' || s.kind === 'stdout' || s.kind === 'stderr') return 'EBADF';
    if (s.kind === 'connection' && s.chunks.length === 0 && s.error !== null) {
      const e = s.error;
      s.error = null; // reported once; afterwards reads see end of stream
      return e;
    }
    if (s.chunks.length === 0) return s.eof || s.closed ? END_OF_STREAM : WOULD_BLOCK;
    let n = 0;
    while (n < dst.length && s.chunks.length > 0) {
      const chunk = s.chunks[0];
      const avail = chunk.length - s.chunkOffset;
      const take = Math.min(avail, dst.length - n);
      dst.set(chunk.subarray(s.chunkOffset, s.chunkOffset + take), n);
      n += take;
      if (take === avail) { s.chunks.shift(); s.chunkOffset = 0; } else s.chunkOffset += take;
    }
    if (s.kind === 'connection') {
      s.buffered -= n;
      this.io.bytesReceived += n;
      if (s.paused && s.buffered < INPUT_HIGH_WATER_BYTES / 2) { s.paused = false; s.socket.resume(); }
    }
    return n;
  }

  write(handle: Handle, src: Uint8Array): number | ErrnoLike {
    const s = this.streams.get(handle);
    if (s === undefined || s.kind === 'listener' || s.kind === 'stdin') return 'EBADF';
    if (s.kind === 'connection') {
      if (s.closed || s.writeShut) return 'EPIPE';
      if (s.socket.destroyed || s.error !== null) return s.error ?? 'EPIPE';
      if (s.socket.writableLength >= OUTPUT_HIGH_WATER_BYTES) return 0;
      s.socket.write(Buffer.from(src)); // copy: guest memory is reused
      this.io.bytesSent += src.length;
      return src.length;
    }
    if (s.closed || s.out === null) return 'EPIPE';
    s.out.write(Buffer.from(src));
    return src.length;
  }

  shutdown(handle: Handle, how: { read: boolean; write: boolean }): void | ErrnoLike {
    const s = this.streams.get(handle);
    if (s === undefined || s.kind !== 'connection') return 'EBADF';
    if (s.socket.destroyed) return 'ENOTCONN';
    if (how.write && !s.writeShut) { s.writeShut = true; s.socket.end(); }
    if (how.read) { s.chunks = []; s.buffered = 0; s.eof = true; }
    return undefined;
  }

  close(handle: Handle): void {
    const s = this.streams.get(handle);
    if (s === undefined) return;
    this.streams.delete(handle);
    if (s.kind === 'listener') {
      s.closed = true;
      for (const p of s.pending) p.destroy();
      s.server?.close();
    } else if (s.kind === 'connection') {
      s.closed = true;
      // end() flushes queued output first (graceful close, as close(2) on a blocking socket);
      // a peer that never reads or closes is cut off later, without keeping the process alive.
      if (!s.socket.destroyed) s.socket.end();
      const cutoff = setTimeout(() => s.socket.destroy(), CLOSE_LINGER_MS);
      cutoff.unref();
      s.socket.once('close', () => clearTimeout(cutoff));
    } else {
      s.closed = true;
      s.detach?.();
    }
    this.notify(handle);
  }

  poll(handle: Handle): Readiness {
    const s = this.streams.get(handle);
    if (s === undefined) return { readable: true, writable: true, hangup: false, error: 'EBADF' };
    switch (s.kind) {
      case 'listener':
        return { readable: s.pending.length > 0 || s.error !== null, writable: false, hangup: false, error: s.error };
      case 'connection': {
        const dead = s.socket.destroyed || s.error !== null;
        return {
          readable: s.chunks.length > 0 || s.eof || s.error !== null,
          writable: dead || s.writeShut || s.socket.writableLength < OUTPUT_HIGH_WATER_BYTES,
          hangup: s.eof && s.chunks.length === 0,
          error: s.error,
        };
      }
      case 'stdin':
        return { readable: s.chunks.length > 0 || s.eof, writable: false, hangup: s.eof, error: null };
      default:
        return { readable: false, writable: true, hangup: false, error: null };
    }
  }

  wait(interests: readonly Interest[], deadlineNs: bigint | null, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      let woken = false;
      // Wake in the check phase, after every I/O callback of this loop turn has run: the guest
      // then finds all ready sockets in one poll instead of being rewound once per socket.
      const waiter: Waiter = { interests, wake: () => { if (!woken) { woken = true; setImmediate(finish); } } };
      const onAbort = (): void => finish();
      const finish = (): void => {
        if (!this.waiters.delete(waiter)) return;
        if (timer !== null) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.add(waiter);
      // Level-triggered: readiness that arrived before this call (while the caller was busy
      // elsewhere) must wake it too, or the notification would be lost.
      if (interests.some((i) => this.isReady(i))) waiter.wake();
      if (signal !== undefined) {
        if (signal.aborted) { finish(); return; }
        signal.addEventListener('abort', onAbort);
      }
      if (deadlineNs !== null) {
        const ms = Number(deadlineNs - this.now('monotonic')) / 1e6;
        // Round up: waking before the deadline only makes the guest ask again.
        timer = setTimeout(finish, Math.max(0, Math.ceil(ms)));
      }
    });
  }

  private isReady(i: Interest): boolean {
    const r = this.poll(i.handle);
    return r.error !== null || (i.read && r.readable) || (i.write && r.writable);
  }

  now(clock: ClockName): bigint {
    if (clock === 'monotonic') return process.hrtime.bigint();
    return BigInt(Date.now()) * 1_000_000n;
  }

  resolution(clock: ClockName): bigint {
    return clock === 'monotonic' ? 1n : 1_000_000n;
  }

  random(dst: Uint8Array): void {
    // randomFillSync is limited to 2^31-1 bytes per call; fill in pieces.
    const MAX = 65536;
    for (let off = 0; off < dst.length; off += MAX) randomFillSync(dst.subarray(off, Math.min(dst.length, off + MAX)));
  }

  readHostTree(hostPath: string): HostTreeEntry {
    const readEntry = (p: string): HostTreeEntry => {
      let st;
      try {
        st = lstatSync(p, { bigint: true });
      } catch (err) {
        throw new WaterbearError('WB_HOST_IO', `cannot read ${p}: ${(err as Error).message}`, { cause: err });
      }
      if (st.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(p), mtimeNs: st.mtimeNs };
      if (st.isDirectory()) {
        const entries = new Map<string, HostTreeEntry>();
        for (const name of readdirSync(p).sort()) entries.set(name, readEntry(join(p, name)));
        return { kind: 'dir', entries, mtimeNs: st.mtimeNs };
      }
      if (st.isFile()) return { kind: 'file', data: new Uint8Array(readFileSync(p)), mtimeNs: st.mtimeNs };
      throw new WaterbearError('WB_HOST_IO', `${p} is neither a file, a directory nor a symlink; --dir copies only those`);
    };
    return readEntry(hostPath);
  }

  /** Close every stream (listeners stop accepting; connections end). */
  closeAll(): void {
    for (const h of [...this.streams.keys()]) this.close(h);
    this.notify(null);
  }
}
