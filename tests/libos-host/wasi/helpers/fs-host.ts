/**
 * A SyscallHost for file-system syscall tests: a fresh WebAssembly.Memory with a bump allocator for
 * strings, iovecs and result slots, a fresh VFS on a fixed fake clock, and one pre-opened directory
 * at fd 3 (after three fake console fds, as the library OS lays them out).
 */
import type { HostAbi, HostTreeEntry } from '../../../../libos-host/abi/host-abi.js';
import { FdTable } from '../../../../libos-host/wasi/fd-table.js';
import type { FdEntry, FileFd } from '../../../../libos-host/wasi/fd-table.js';
import { GuestClock } from '../../../../libos-host/wasi/guest-clock.js';
import { GuestMemory } from '../../../../libos-host/wasi/guest-memory.js';
import type { SyscallHost, SyscallTable } from '../../../../libos-host/wasi/syscall-host.js';
import { fsSyscalls, openPreopen } from '../../../../libos-host/wasi/syscalls-fs.js';
import { Vfs } from '../../../../libos-host/wasi/vfs.js';
import { RIGHTS_STDIO_BASE } from '../../../../libos-host/wasi/wasi-constants.js';

/** Guest memory pages (64 KiB each) of a test host. */
export const TEST_MEMORY_PAGES = 4;
/** First scratch address; low memory stays zero so pointer bugs show. */
const SCRATCH_START = 1024;
/** The fake clock's time when a host is created (ns). */
export const T0_NS = 1_700_000_000_000_000_000n;

/** A HostAbi for unit tests: a clock and nothing else (the file system never uses the rest). */
export function fakeAbi(clock: { ns: bigint }): HostAbi {
  const unused = (name: string) => () => { throw new Error(`fake HostAbi: ${name} is not used by file-system tests`); };
  return {
    listen: unused('listen') as HostAbi['listen'],
    open: () => 0,
    info: () => null,
    accept: unused('accept') as HostAbi['accept'],
    read: unused('read') as HostAbi['read'],
    write: unused('write') as HostAbi['write'],
    shutdown: unused('shutdown') as HostAbi['shutdown'],
    close: () => {},
    poll: unused('poll') as HostAbi['poll'],
    wait: unused('wait') as HostAbi['wait'],
    now: () => clock.ns,
    resolution: () => 1n,
    random: unused('random') as HostAbi['random'],
    readHostTree: unused('readHostTree') as HostAbi['readHostTree'],
  };
}

export interface FsTestHost {
  host: SyscallHost;
  vfs: Vfs;
  fds: FdTable;
  mem: GuestMemory;
  memory: WebAssembly.Memory;
  /** The fake clock; set `ns` to move time. */
  clock: { ns: bigint };
  /** fd of the pre-opened directory ("/sandbox"). */
  root: number;
  /** Inode of the pre-opened directory. */
  rootIno: number;
  /** Call a syscall of fsSyscalls by name; returns its errno. */
  call(name: string, ...args: Array<number | bigint>): number;
  /** Reserve `n` zeroed bytes (8-aligned) and return the address. */
  alloc(n: number): number;
  /** Place a UTF-8 string; returns [ptr, len]. */
  str(s: string): [number, number];
  /** Place bytes; returns the address. */
  bytes(b: Uint8Array): number;
  /** Place an iovec array over the given buffers (placed too); returns [iovsPtr, count]. */
  iovs(bufs: Uint8Array[]): [number, number];
  /** An iovec array of fresh zeroed buffers of these lengths; returns [iovsPtr, count, bufPtrs]. */
  outIovs(lengths: number[]): [number, number, number[]];
  u32(ptr: number): number;
  u64(ptr: number): bigint;
  read(ptr: number, len: number): Uint8Array;
  /** path_open shortcut: returns [errno, fd]. */
  open(path: string, opts?: { oflags?: number; rights?: bigint; inheriting?: bigint; fdflags?: number; dirflags?: number; dirFd?: number }): [number, number];
  /** The fd table entry of a file fd (fails the test if it is not a file). */
  fileEntry(fd: number): FileFd;
  entry(fd: number): FdEntry;
}

export function makeFsHost(opts: { maxBytes?: number; maxInodes?: number; tree?: HostTreeEntry | null } = {}): FsTestHost {
  const clock = { ns: T0_NS };
  const memory = new WebAssembly.Memory({ initial: TEST_MEMORY_PAGES });
  const mem = new GuestMemory(memory);
  const fds = new FdTable();
  const vfs = new Vfs({ now: () => clock.ns, maxBytes: opts.maxBytes, maxInodes: opts.maxInodes });
  const abi = fakeAbi(clock);
  const host: SyscallHost = {
    mem, fds, vfs, abi, clock: new GuestClock(abi), args: [], env: [],
    block: () => { throw new Error('file-system syscalls never block'); },
    resumed: null,
  };
  for (const which of ['stdin', 'stdout', 'stderr'] as const) {
    fds.allocate({ kind: 'stdio', which, handle: 0, fdflags: 0, rightsBase: RIGHTS_STDIO_BASE, rightsInheriting: 0n });
  }
  const root = openPreopen(host, '/sandbox', opts.tree ?? null);
  const table: SyscallTable = fsSyscalls(host);
  let next = SCRATCH_START;
  const t: FsTestHost = {
    host, vfs, fds, mem, memory, clock, root, rootIno: vfs.roots[0],
    call(name, ...args) {
      const fn = table[name] as unknown as ((...a: Array<number | bigint>) => number) | undefined;
      if (fn === undefined) throw new Error(`no syscall ${name}`);
      return fn(...args);
    },
    alloc(n) {
      const p = next;
      next += (n + 7) & ~7;
      if (next > memory.buffer.byteLength) throw new Error('test scratch memory exhausted');
      return p;
    },
    str(s) {
      const b = new TextEncoder().encode(s);
      return [t.bytes(b), b.length];
    },
    bytes(b) {
      const p = t.alloc(b.length);
      new Uint8Array(memory.buffer).set(b, p);
      return p;
    },
    iovs(bufs) {
      const arr = t.alloc(bufs.length * 8);
      const dv = new DataView(memory.buffer);
      bufs.forEach((b, i) => {
        dv.setUint32(arr + i * 8, t.bytes(b), true);
        dv.setUint32(arr + i * 8 + 4, b.length, true);
      });
      return [arr, bufs.length];
    },
    outIovs(lengths) {
      const arr = t.alloc(lengths.length * 8);
      const dv = new DataView(memory.buffer);
      const ptrs = lengths.map((len, i) => {
        const p = t.alloc(len);
        dv.setUint32(arr + i * 8, p, true);
        dv.setUint32(arr + i * 8 + 4, len, true);
        return p;
      });
      return [arr, lengths.length, ptrs];
    },
    u32: (ptr) => new DataView(memory.buffer).getUint32(ptr, true),
    u64: (ptr) => new DataView(memory.buffer).getBigUint64(ptr, true),
    read: (ptr, len) => new Uint8Array(memory.buffer).slice(ptr, ptr + len),
    open(path, o = {}) {
      const [p, l] = t.str(path);
      const out = t.alloc(4);
      const errno = t.call('path_open', o.dirFd ?? root, o.dirflags ?? 0, p, l, o.oflags ?? 0,
        o.rights ?? (1n << 30n) - 1n, o.inheriting ?? 0n, o.fdflags ?? 0, out);
      return [errno, errno === 0 ? t.u32(out) : -1];
    },
    fileEntry(fd) {
      const e = fds.get(fd);
      if (e.kind !== 'file') throw new Error(`fd ${fd} is a ${e.kind}, not a file`);
      return e;
    },
    entry: (fd) => fds.get(fd),
  };
  return t;
}

/** Bytes of a string (for expected file contents). */
export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** A host tree directory from a nested object: strings are files, objects are directories, {link} symlinks. */
export type TreeSpec = { [name: string]: string | TreeSpec | { link: string } };
export function tree(spec: TreeSpec, mtimeNs = 1_000_000_000n): HostTreeEntry {
  const entries = new Map<string, HostTreeEntry>();
  for (const [name, v] of Object.entries(spec)) {
    if (typeof v === 'string') entries.set(name, { kind: 'file', data: utf8(v), mtimeNs });
    else if ('link' in v && typeof v.link === 'string') entries.set(name, { kind: 'symlink', target: v.link, mtimeNs });
    else entries.set(name, tree(v as TreeSpec, mtimeNs));
  }
  return { kind: 'dir', entries, mtimeNs };
}
