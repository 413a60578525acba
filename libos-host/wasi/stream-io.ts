import { END_OF_STREAM, WOULD_BLOCK, type Handle } from '../abi/host-abi.js';
import { Errno, WasiErrno, errnoFromAbi } from './errno.js';
import type { SocketFd, StdioFd } from './fd-table.js';
import { Fdflags } from './wasi-constants.js';
import type { SyscallHost } from './syscall-host.js';

/** A stream-backed fd: console or connection. */
export type StreamFd = StdioFd | SocketFd;

function handleOf(fd: StreamFd): Handle {
  if (fd.handle === null) throw new WasiErrno(Errno.CONNRESET); // did not survive a restore
  return fd.handle;
}

/** Copy from the fd's held input into `iovs`; returns bytes copied. */
function takeHeld(fd: SocketFd, iovs: Uint8Array[], peek: boolean): number {
  const held = fd.held;
  if (held === null) return 0;
  let n = 0;
  for (const iov of iovs) {
    const take = Math.min(iov.length, held.length - n);
    iov.set(held.subarray(n, n + take));
    n += take;
    if (n === held.length) break;
  }
  if (!peek) fd.held = n === held.length ? null : held.slice(n);
  return n;
}

/**
 * Read into `iovs` from a stream fd: bytes read (0 at end of stream). Suspends the guest when
 * nothing is available and the fd is blocking; EAGAIN when non-blocking.
 */
export function readStream(host: SyscallHost, fd: StreamFd, iovs: Uint8Array[], opts: { peek?: boolean; waitAll?: boolean } = {}): number {
  const total = iovs.reduce((n, v) => n + v.length, 0);
  if (total === 0) return 0;
  if (fd.kind === 'socket' && fd.readShut) return 0;
  const handle = handleOf(fd);
  // With peek or waitAll, read through the held buffer so unconsumed bytes stay in the LVM.
  if (fd.kind === 'socket' && (opts.peek === true || opts.waitAll === true)) {
    const want = opts.waitAll === true ? total : 1;
    let eof = false;
    while ((fd.held?.length ?? 0) < total) {
      const buf = new Uint8Array(total - (fd.held?.length ?? 0));
      const r = host.abi.read(handle, buf);
      if (typeof r === 'string') {
        if ((fd.held?.length ?? 0) > 0) break;
        throw new WasiErrno(errnoFromAbi(r));
      }
      if (r === WOULD_BLOCK) break;
      if (r === END_OF_STREAM) { eof = true; break; }
      fd.held = fd.held === null ? buf.slice(0, r) : concat(fd.held, buf.subarray(0, r));
    }
    const have = fd.held?.length ?? 0;
    if (have >= want || eof) return takeHeld(fd, iovs, opts.peek === true);
    return wouldBlock(host, fd, handle, 'read');
  }
  let n = fd.kind === 'socket' ? takeHeld(fd, iovs, false) : 0;
  let iovIndex = 0;
  let iovOffset = 0;
  if (n > 0) {
    // Skip what takeHeld filled.
    let skip = n;
    while (iovIndex < iovs.length && skip >= iovs[iovIndex].length - iovOffset) { skip -= iovs[iovIndex].length - iovOffset; iovIndex++; iovOffset = 0; }
    iovOffset += skip;
  }
  for (; iovIndex < iovs.length; iovIndex++, iovOffset = 0) {
    const iov = iovs[iovIndex].subarray(iovOffset);
    if (iov.length === 0) continue;
    const r = host.abi.read(handle, iov);
    if (typeof r === 'string') {
      if (n > 0) return n; // report the error on the next read
      throw new WasiErrno(errnoFromAbi(r));
    }
    if (r === WOULD_BLOCK) {
      if (n > 0) return n;
      return wouldBlock(host, fd, handle, 'read');
    }
    if (r === END_OF_STREAM) return n;
    n += r;
    if (r < iov.length) return n;
  }
  return n;
}

/** Write `iovs` to a stream fd: bytes accepted. Suspends (or EAGAIN) when the stream is full. */
export function writeStream(host: SyscallHost, fd: StreamFd, iovs: Uint8Array[]): number {
  if (fd.kind === 'socket' && fd.writeShut) throw new WasiErrno(Errno.PIPE);
  const handle = handleOf(fd);
  let n = 0;
  for (const iov of iovs) {
    if (iov.length === 0) continue;
    const r = host.abi.write(handle, iov);
    if (typeof r === 'string') {
      if (n > 0) return n;
      throw new WasiErrno(errnoFromAbi(r));
    }
    n += r;
    if (r < iov.length) break;
  }
  if (n === 0 && iovs.some((v) => v.length > 0)) return wouldBlock(host, fd, handle, 'write');
  return n;
}

function wouldBlock(host: SyscallHost, fd: StreamFd, handle: Handle, dir: 'read' | 'write'): number {
  if ((fd.fdflags & Fdflags.NONBLOCK) !== 0) throw new WasiErrno(Errno.AGAIN);
  return host.block([{ handle, read: dir === 'read', write: dir === 'write' }], null);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
