import { WOULD_BLOCK } from '../abi/host-abi.js';
import { Errno, WasiErrno, errnoFromAbi } from './errno.js';
import type { SocketFd } from './fd-table.js';
import { Fdflags, Riflags, Rights, RIGHTS_SOCKET_BASE, Sdflags } from './wasi-constants.js';
import { guardSyscalls } from './syscall-guard.js';
import type { SyscallHost, SyscallTable } from './syscall-host.js';
import { readStream, writeStream } from './stream-io.js';

/** A connected socket fd, or the errno POSIX gives for other kinds. */
function connectedSocket(host: SyscallHost, fd: number): SocketFd {
  const e = host.fds.get(fd);
  if (e.kind === 'socket') return e;
  if (e.kind === 'listener') throw new WasiErrno(Errno.NOTCONN);
  throw new WasiErrno(Errno.NOTSOCK);
}

/** sock_accept, sock_recv, sock_send, sock_shutdown over pre-opened listeners. */
export function sockSyscalls(host: SyscallHost): SyscallTable {
  const { mem, fds, abi } = host;
  return guardSyscalls({
    sock_accept(fd: number, flags: number, resultPtr: number) {
      const e = fds.get(fd);
      if (e.kind === 'socket') throw new WasiErrno(Errno.INVAL);
      if (e.kind !== 'listener') throw new WasiErrno(Errno.NOTSOCK);
      if ((e.rightsBase & Rights.SOCK_ACCEPT) === 0n) throw new WasiErrno(Errno.NOTCAPABLE);
      if ((flags & ~Fdflags.NONBLOCK) !== 0) throw new WasiErrno(Errno.INVAL);
      mem.check(resultPtr, 4);
      const h = abi.accept(e.handle);
      if (h === WOULD_BLOCK) {
        if ((e.fdflags & Fdflags.NONBLOCK) !== 0) throw new WasiErrno(Errno.AGAIN);
        return host.block([{ handle: e.handle, read: true, write: false }], null);
      }
      const info = abi.info(h);
      const newFd = fds.allocate({
        kind: 'socket', handle: h, peer: info?.address ?? '', readShut: false, writeShut: false, held: null,
        fdflags: flags & Fdflags.NONBLOCK, rightsBase: RIGHTS_SOCKET_BASE, rightsInheriting: 0n,
      });
      mem.setU32(resultPtr, newFd);
    },
    sock_recv(fd: number, riData: number, riDataLen: number, riFlags: number, roDatalenPtr: number, roFlagsPtr: number) {
      const s = connectedSocket(host, fd);
      if ((s.rightsBase & Rights.FD_READ) === 0n) throw new WasiErrno(Errno.NOTCAPABLE);
      if ((riFlags & ~(Riflags.RECV_PEEK | Riflags.RECV_WAITALL)) !== 0) throw new WasiErrno(Errno.INVAL);
      mem.check(roDatalenPtr, 4);
      mem.check(roFlagsPtr, 2);
      const n = mem.fillIovecs(riData, riDataLen, (views) => readStream(host, s, views, {
        peek: (riFlags & Riflags.RECV_PEEK) !== 0,
        waitAll: (riFlags & Riflags.RECV_WAITALL) !== 0,
      }));
      mem.setU32(roDatalenPtr, n);
      mem.setU16(roFlagsPtr, 0);
    },
    sock_send(fd: number, siData: number, siDataLen: number, _siFlags: number, soDatalenPtr: number) {
      const s = connectedSocket(host, fd);
      if ((s.rightsBase & Rights.FD_WRITE) === 0n) throw new WasiErrno(Errno.NOTCAPABLE);
      const views = mem.iovecs(siData, siDataLen);
      mem.check(soDatalenPtr, 4);
      mem.setU32(soDatalenPtr, writeStream(host, s, views));
    },
    sock_shutdown(fd: number, how: number) {
      const s = connectedSocket(host, fd);
      if ((s.rightsBase & Rights.SOCK_SHUTDOWN) === 0n) throw new WasiErrno(Errno.NOTCAPABLE);
      if (how === 0 || (how & ~(Sdflags.RD | Sdflags.WR)) !== 0) throw new WasiErrno(Errno.INVAL);
      if (s.handle === null) throw new WasiErrno(Errno.NOTCONN);
      const r = abi.shutdown(s.handle, { read: (how & Sdflags.RD) !== 0, write: (how & Sdflags.WR) !== 0 });
      if (typeof r === 'string') throw new WasiErrno(errnoFromAbi(r));
      if ((how & Sdflags.RD) !== 0) { s.readShut = true; s.held = null; }
      if ((how & Sdflags.WR) !== 0) s.writeShut = true;
    },
  });
}
