import { Errno, WasiErrno } from './errno.js';
import { encodeUtf8 } from './guest-memory.js';
import { Clockid } from './wasi-constants.js';
import { guardSyscalls } from './syscall-guard.js';
import { ProcExit, type SyscallHost, type SyscallTable } from './syscall-host.js';

/** Write a list of NUL-terminated strings (argv or environ) as WASI's *_get expects. */
function writeStringList(host: SyscallHost, list: readonly string[], ptrsPtr: number, bufPtr: number): void {
  let at = bufPtr;
  list.forEach((s, i) => {
    const bytes = encodeUtf8(s);
    host.mem.setU32(ptrsPtr + i * 4, at);
    host.mem.write(at, bytes);
    host.mem.setU8(at + bytes.length, 0);
    at += bytes.length + 1;
  });
}

function sizesOf(list: readonly string[]): number {
  return list.reduce((n, s) => n + encodeUtf8(s).length + 1, 0);
}

/** The guest clock for a WASI clock id. CPU-time clocks report the monotonic clock. */
function clockNow(host: SyscallHost, id: number): bigint {
  switch (id) {
    case Clockid.REALTIME: return host.clock.realtime();
    case Clockid.MONOTONIC:
    case Clockid.PROCESS_CPUTIME_ID:
    case Clockid.THREAD_CPUTIME_ID: return host.clock.monotonic();
    default: throw new WasiErrno(Errno.INVAL);
  }
}

/** args, environ, clocks, random, proc_exit, proc_raise, sched_yield. */
export function miscSyscalls(host: SyscallHost): SyscallTable {
  return guardSyscalls({
    args_sizes_get(argcPtr: number, sizePtr: number) {
      host.mem.setU32(argcPtr, host.args.length);
      host.mem.setU32(sizePtr, sizesOf(host.args));
    },
    args_get(argvPtr: number, bufPtr: number) {
      writeStringList(host, host.args, argvPtr, bufPtr);
    },
    environ_sizes_get(countPtr: number, sizePtr: number) {
      host.mem.setU32(countPtr, host.env.length);
      host.mem.setU32(sizePtr, sizesOf(host.env));
    },
    environ_get(envPtr: number, bufPtr: number) {
      writeStringList(host, host.env, envPtr, bufPtr);
    },
    clock_res_get(id: number, resPtr: number) {
      const res = id === Clockid.REALTIME ? host.abi.resolution('realtime')
        : id === Clockid.MONOTONIC || id === Clockid.PROCESS_CPUTIME_ID || id === Clockid.THREAD_CPUTIME_ID
          ? host.abi.resolution('monotonic') : null;
      if (res === null) throw new WasiErrno(Errno.INVAL);
      host.mem.setU64(resPtr, res);
    },
    clock_time_get(id: number, _precision: bigint, timePtr: number) {
      host.mem.setU64(timePtr, clockNow(host, id));
    },
    random_get(bufPtr: number, len: number) {
      host.abi.random(host.mem.bytes(bufPtr, len));
    },
    proc_exit(code: number): number {
      throw new ProcExit(code >>> 0);
    },
    proc_raise(_sig: number) {
      // Signals are not part of the LVM model; wasi-libc's raise() never reaches here for SIGABRT.
      throw new WasiErrno(Errno.NOSYS);
    },
    sched_yield() {
      // Let the host's event loop run once (I/O, timers, checkpoints), then continue.
      if (host.resumed !== null) return Errno.SUCCESS;
      return host.block([], host.clock.monotonic());
    },
  });
}

export { clockNow };
