import type { Interest } from '../abi/host-abi.js';
import { Errno, WasiErrno, errnoFromAbi } from './errno.js';
import { Clockid, Eventrwflags, Eventtype, Subclockflags } from './wasi-constants.js';
import { guardSyscalls } from './syscall-guard.js';
import type { SyscallHost, SyscallTable } from './syscall-host.js';

const SUBSCRIPTION_BYTES = 48;
const EVENT_BYTES = 32;

interface ReadyEvent { userdata: bigint; type: number; error: number; nbytes: bigint; flags: number }

/** Deadline of a clock subscription in guest monotonic ns. */
function clockDeadline(host: SyscallHost, id: number, timeout: bigint, flags: number, startNs: bigint): bigint {
  const abs = (flags & Subclockflags.SUBSCRIPTION_CLOCK_ABSTIME) !== 0;
  if (id === Clockid.REALTIME) {
    if (!abs) return startNs + timeout;
    return host.clock.monotonic() + (timeout - host.clock.realtime());
  }
  if (id === Clockid.MONOTONIC || id === Clockid.PROCESS_CPUTIME_ID || id === Clockid.THREAD_CPUTIME_ID) {
    return abs ? timeout : startNs + timeout;
  }
  throw new WasiErrno(Errno.INVAL);
}

/**
 * poll_oneoff: report every subscription that is ready now; if none is, suspend the guest until
 * an fd may be ready or the earliest clock deadline passes.
 */
export function pollSyscalls(host: SyscallHost): SyscallTable {
  const { mem, fds, abi } = host;
  return guardSyscalls({
    poll_oneoff(inPtr: number, outPtr: number, nsubs: number, neventsPtr: number) {
      if (nsubs === 0) throw new WasiErrno(Errno.INVAL);
      mem.check(inPtr, nsubs * SUBSCRIPTION_BYTES);
      mem.check(outPtr, nsubs * EVENT_BYTES);
      mem.check(neventsPtr, 4);
      const now = host.clock.monotonic();
      const startNs = host.resumed?.blockedAtNs ?? now;
      const ready: ReadyEvent[] = [];
      const interests: Interest[] = [];
      let deadline: bigint | null = null;
      const dv = mem.view;
      for (let i = 0; i < nsubs; i++) {
        const s = inPtr + i * SUBSCRIPTION_BYTES;
        const userdata = dv.getBigUint64(s, true);
        const tag = dv.getUint8(s + 8);
        if (tag === Eventtype.CLOCK) {
          const id = dv.getUint32(s + 16, true);
          const timeout = dv.getBigUint64(s + 24, true);
          const flags = dv.getUint16(s + 40, true);
          let d: bigint;
          try {
            d = clockDeadline(host, id, timeout, flags, startNs);
          } catch (err) {
            if (!(err instanceof WasiErrno)) throw err;
            ready.push({ userdata, type: tag, error: err.errno, nbytes: 0n, flags: 0 });
            continue;
          }
          if (d <= now) ready.push({ userdata, type: tag, error: 0, nbytes: 0n, flags: 0 });
          else if (deadline === null || d < deadline) deadline = d;
        } else if (tag === Eventtype.FD_READ || tag === Eventtype.FD_WRITE) {
          const fd = dv.getUint32(s + 16, true);
          const isRead = tag === Eventtype.FD_READ;
          if (!fds.has(fd)) { ready.push({ userdata, type: tag, error: Errno.BADF, nbytes: 0n, flags: 0 }); continue; }
          const e = fds.get(fd);
          switch (e.kind) {
            case 'file': {
              const size = BigInt(host.vfs.sizeOf(e.ino));
              const left = isRead ? (size > e.offset ? size - e.offset : 0n) : 0n;
              ready.push({ userdata, type: tag, error: 0, nbytes: left, flags: 0 });
              break;
            }
            case 'dir':
              ready.push({ userdata, type: tag, error: Errno.ISDIR, nbytes: 0n, flags: 0 });
              break;
            default: {
              const handle = e.handle;
              if (handle === null) { // a connection that did not survive a restore
                ready.push({ userdata, type: tag, error: 0, nbytes: 0n, flags: Eventrwflags.FD_READWRITE_HANGUP });
                break;
              }
              if (e.kind === 'socket' && isRead && e.held !== null) {
                ready.push({ userdata, type: tag, error: 0, nbytes: BigInt(e.held.length), flags: 0 });
                break;
              }
              const r = abi.poll(handle);
              if (r.error === 'EBADF') { ready.push({ userdata, type: tag, error: errnoFromAbi(r.error), nbytes: 0n, flags: 0 }); break; }
              if (isRead ? r.readable : r.writable) {
                ready.push({ userdata, type: tag, error: 0, nbytes: 1n, flags: r.hangup ? Eventrwflags.FD_READWRITE_HANGUP : 0 });
              } else {
                interests.push({ handle, read: isRead, write: !isRead });
              }
            }
          }
        } else {
          throw new WasiErrno(Errno.INVAL);
        }
      }
      if (ready.length > 0) {
        ready.forEach((ev, i) => {
          const o = outPtr + i * EVENT_BYTES;
          dv.setBigUint64(o, ev.userdata, true);
          dv.setUint16(o + 8, ev.error, true);
          dv.setUint8(o + 10, ev.type);
          for (let b = 11; b < 16; b++) dv.setUint8(o + b, 0);
          dv.setBigUint64(o + 16, ev.nbytes, true);
          dv.setUint16(o + 24, ev.flags, true);
          for (let b = 26; b < 32; b++) dv.setUint8(o + b, 0);
        });
        mem.setU32(neventsPtr, ready.length);
        return;
      }
      return host.block(interests, deadline);
    },
  });
}
