/** The WASI preview 1 module name. */
export const WASI_MODULE = 'wasi_snapshot_preview1';

/** Every function of wasi_snapshot_preview1; the library OS implements all of them. */
export const WASI_FUNCTIONS = [
  'args_get', 'args_sizes_get', 'environ_get', 'environ_sizes_get',
  'clock_res_get', 'clock_time_get',
  'fd_advise', 'fd_allocate', 'fd_close', 'fd_datasync', 'fd_fdstat_get', 'fd_fdstat_set_flags',
  'fd_fdstat_set_rights', 'fd_filestat_get', 'fd_filestat_set_size', 'fd_filestat_set_times',
  'fd_pread', 'fd_prestat_get', 'fd_prestat_dir_name', 'fd_pwrite', 'fd_read', 'fd_readdir',
  'fd_renumber', 'fd_seek', 'fd_sync', 'fd_tell', 'fd_write',
  'path_create_directory', 'path_filestat_get', 'path_filestat_set_times', 'path_link', 'path_open',
  'path_readlink', 'path_remove_directory', 'path_rename', 'path_symlink', 'path_unlink_file',
  'poll_oneoff', 'proc_exit', 'proc_raise', 'sched_yield', 'random_get',
  'sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown',
] as const;

export type WasiFunctionName = (typeof WASI_FUNCTIONS)[number];

/**
 * The core WebAssembly parameter types of every WASI preview 1 function, as
 * wasi_snapshot_preview1.witx lowers them (and wasi-libc declares them): `i` is i32, `I` is i64.
 * Each returns its errno as one i32, except proc_exit, which returns nothing.
 */
const WASI_PARAMS: Readonly<Record<WasiFunctionName, string>> = {
  args_get: 'ii', args_sizes_get: 'ii', environ_get: 'ii', environ_sizes_get: 'ii',
  clock_res_get: 'ii', clock_time_get: 'iIi',
  fd_advise: 'iIIi', fd_allocate: 'iII', fd_close: 'i', fd_datasync: 'i', fd_fdstat_get: 'ii', fd_fdstat_set_flags: 'ii',
  fd_fdstat_set_rights: 'iII', fd_filestat_get: 'ii', fd_filestat_set_size: 'iI', fd_filestat_set_times: 'iIIi',
  fd_pread: 'iiiIi', fd_prestat_get: 'ii', fd_prestat_dir_name: 'iii', fd_pwrite: 'iiiIi', fd_read: 'iiii', fd_readdir: 'iiiIi',
  fd_renumber: 'ii', fd_seek: 'iIii', fd_sync: 'i', fd_tell: 'ii', fd_write: 'iiii',
  path_create_directory: 'iii', path_filestat_get: 'iiiii', path_filestat_set_times: 'iiiiIIi', path_link: 'iiiiiii',
  path_open: 'iiiiiIIii', path_readlink: 'iiiiii', path_remove_directory: 'iii', path_rename: 'iiiiii', path_symlink: 'iiiii',
  path_unlink_file: 'iii',
  poll_oneoff: 'iiii', proc_exit: 'i', proc_raise: 'i', sched_yield: '', random_get: 'ii',
  sock_accept: 'iii', sock_recv: 'iiiiii', sock_send: 'iiiii', sock_shutdown: 'ii',
};

/** The core WebAssembly type of a WASI preview 1 function: what a guest must import it as. */
export function wasiSignature(name: WasiFunctionName): { params: string[]; results: string[] } {
  return {
    params: Array.from(WASI_PARAMS[name], (c) => (c === 'I' ? 'i64' : 'i32')),
    results: name === 'proc_exit' ? [] : ['i32'],
  };
}

/**
 * Imports during which the guest may be suspended: they can block (waiting for input, for a
 * timeout, or for room in a full output buffer), or they are points where the checkpointer may
 * stop the guest. Asyncify instruments exactly the code that can reach these.
 */
export const SUSPENDING_WASI_FUNCTIONS: readonly WasiFunctionName[] = [
  'poll_oneoff', 'sock_accept', 'sock_recv', 'sock_send', 'fd_read', 'fd_write', 'sched_yield',
];

/** waterbear's own import module, added by image preparation (never present in a raw guest). */
export const WATERBEAR_MODULE = 'waterbear';
