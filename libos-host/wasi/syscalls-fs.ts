/**
 * The file-system part of WASI preview 1: every fd_* call specific to files and directories and
 * every path_* call, over the library OS's virtual file system (vfs.ts). The generic fd calls
 * (fd_read, fd_write, fd_close, fd_filestat_get, …) live in syscalls-fd.ts and use the helpers
 * re-exported here for VFS-backed descriptors.
 */
import { guardSyscalls } from './syscall-guard.js';
import type { SyscallHost, SyscallTable } from './syscall-host.js';
import { fileFdSyscalls } from './syscalls-fs-file.js';
import { pathSyscalls } from './syscalls-fs-path.js';

export { closeFileFd, openPreopen, readAt, readFile, writeAt, writeFile, writeFilestat, FILESTAT_BYTES } from './syscalls-fs-io.js';
export { DIRENT_HEADER_BYTES, PRESTAT_BYTES } from './syscalls-fs-file.js';

/**
 * fd_advise, fd_allocate, fd_datasync, fd_filestat_set_size, fd_filestat_set_times, fd_pread,
 * fd_prestat_get, fd_prestat_dir_name, fd_pwrite, fd_readdir, fd_seek, fd_sync, fd_tell and all
 * path_* calls. Arguments are i32 as number, i64 as bigint, per the witx signatures; each returns
 * its errno (a thrown WasiErrno), and any other exception propagates as a host bug.
 */
export function fsSyscalls(host: SyscallHost): SyscallTable {
  return guardSyscalls({ ...fileFdSyscalls(host), ...pathSyscalls(host) });
}
