import type { ErrnoLike } from '../abi/host-abi.js';

/** WASI preview 1 errno values (wasi_snapshot_preview1 `errno`). */
export const Errno = {
  SUCCESS: 0, TOOBIG: 1, ACCES: 2, ADDRINUSE: 3, ADDRNOTAVAIL: 4, AFNOSUPPORT: 5, AGAIN: 6, ALREADY: 7,
  BADF: 8, BADMSG: 9, BUSY: 10, CANCELED: 11, CHILD: 12, CONNABORTED: 13, CONNREFUSED: 14, CONNRESET: 15,
  DEADLK: 16, DESTADDRREQ: 17, DOM: 18, DQUOT: 19, EXIST: 20, FAULT: 21, FBIG: 22, HOSTUNREACH: 23,
  IDRM: 24, ILSEQ: 25, INPROGRESS: 26, INTR: 27, INVAL: 28, IO: 29, ISCONN: 30, ISDIR: 31, LOOP: 32,
  MFILE: 33, MLINK: 34, MSGSIZE: 35, MULTIHOP: 36, NAMETOOLONG: 37, NETDOWN: 38, NETRESET: 39,
  NETUNREACH: 40, NFILE: 41, NOBUFS: 42, NODEV: 43, NOENT: 44, NOEXEC: 45, NOLCK: 46, NOLINK: 47,
  NOMEM: 48, NOMSG: 49, NOPROTOOPT: 50, NOSPC: 51, NOSYS: 52, NOTCONN: 53, NOTDIR: 54, NOTEMPTY: 55,
  NOTRECOVERABLE: 56, NOTSOCK: 57, NOTSUP: 58, NOTTY: 59, NXIO: 60, OVERFLOW: 61, OWNERDEAD: 62,
  PERM: 63, PIPE: 64, PROTO: 65, PROTONOSUPPORT: 66, PROTOTYPE: 67, RANGE: 68, ROFS: 69, SPIPE: 70,
  SRCH: 71, STALE: 72, TIMEDOUT: 73, TXTBSY: 74, XDEV: 75, NOTCAPABLE: 76,
} as const;

export type ErrnoValue = (typeof Errno)[keyof typeof Errno];

/** Thrown inside the library OS to return an errno from the current call. */
export class WasiErrno extends Error {
  constructor(readonly errno: number) {
    super(`wasi errno ${errno}`);
  }
}

/** Map an ABI error name to the WASI errno the guest sees. */
export function errnoFromAbi(e: ErrnoLike): number {
  switch (e) {
    case 'ECONNRESET': return Errno.CONNRESET;
    case 'EPIPE': return Errno.PIPE;
    case 'ENOTCONN': return Errno.NOTCONN;
    case 'EBADF': return Errno.BADF;
    case 'EINVAL': return Errno.INVAL;
    case 'EADDRINUSE': return Errno.ADDRINUSE;
    case 'EACCES': return Errno.ACCES;
    case 'ENOSPC': return Errno.NOSPC;
    case 'EIO': return Errno.IO;
  }
}
