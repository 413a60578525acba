import type { HostAbi, Interest } from '../abi/host-abi.js';
import { FdTable } from './fd-table.js';
import { GuestClock } from './guest-clock.js';
import { GuestMemory } from './guest-memory.js';
import type { SyscallHost, SyscallTable } from './syscall-host.js';
import { fdSyscalls } from './syscalls-fd.js';
import { fsSyscalls, openPreopen } from './syscalls-fs.js';
import { miscSyscalls } from './syscalls-misc.js';
import { pollSyscalls } from './syscalls-poll.js';
import { sockSyscalls } from './syscalls-sock.js';
import { Vfs } from './vfs.js';
import { RIGHTS_LISTENER_BASE, RIGHTS_STDIO_BASE } from './wasi-constants.js';
import { WASI_FUNCTIONS } from './wasi-imports.js';

/** A listener the operator pre-opens for the guest (`--listen [name=]host:port`). */
export interface ListenSpec { uri: `tcp.srv:${string}`; name: string | null }
/** A host directory copied into the guest's file system at launch (`--dir guest=host`). */
export interface DirSpec { guestPath: string; hostPath: string | null }

export interface LibOsOptions {
  args: readonly string[];
  env: readonly string[];
  listeners: readonly ListenSpec[];
  dirs: readonly DirSpec[];
  /** Budget for all file data in the virtual file system (bytes). */
  vfsMaxBytes?: number;
}

/** Default budget for virtual file data: a full "disk" gives the guest ENOSPC, never a host crash. */
export const DEFAULT_VFS_MAX_BYTES = 256 * 1024 * 1024;

/** What the runtime supplies so blocking calls can suspend the guest. */
export interface Suspender {
  block(interests: readonly Interest[], deadlineNs: bigint | null): number;
  readonly resumed: { deadlineNs: bigint | null; blockedAtNs: bigint } | null;
}

/**
 * The library OS: WASI preview 1 over the host ABI. Its state (fd table, virtual files, socket
 * buffers, clock offset) belongs to the LVM; it never touches the OS itself.
 */
export class LibOs implements SyscallHost {
  readonly mem = new GuestMemory();
  readonly fds = new FdTable();
  readonly vfs: Vfs;
  readonly clock: GuestClock;
  private suspender: Suspender | null = null;

  private constructor(
    readonly abi: HostAbi,
    readonly args: readonly string[],
    readonly env: readonly string[],
    vfsMaxBytes: number,
  ) {
    this.clock = new GuestClock(abi);
    this.vfs = new Vfs({ now: () => this.clock.realtime(), maxBytes: vfsMaxBytes });
  }

  /**
   * Build the library OS for a fresh launch: fds 0–2 are the console, listeners take fd 3, 4, …
   * in order (like `wasmtime --tcplisten`), then the pre-opened directories.
   */
  static async create(abi: HostAbi, options: LibOsOptions): Promise<LibOs> {
    const os = new LibOs(abi, [...options.args], [...options.env], options.vfsMaxBytes ?? DEFAULT_VFS_MAX_BYTES);
    for (const which of ['stdin', 'stdout', 'stderr'] as const) {
      os.fds.allocate({ kind: 'stdio', which, handle: abi.open(`${which}:`), fdflags: 0, rightsBase: RIGHTS_STDIO_BASE, rightsInheriting: 0n });
    }
    const bound: number[] = [];
    try {
      for (const l of options.listeners) {
        const handle = await abi.listen(l.uri);
        bound.push(handle);
        os.fds.allocate({ kind: 'listener', handle, uri: l.uri, name: l.name, fdflags: 0, rightsBase: RIGHTS_LISTENER_BASE, rightsInheriting: 0n });
      }
    } catch (err) {
      for (const h of bound) abi.close(h);
      throw err;
    }
    for (const d of options.dirs) {
      openPreopen(os, d.guestPath, d.hostPath === null ? null : abi.readHostTree(d.hostPath));
    }
    return os;
  }

  /** Called by the runtime once per instantiation. */
  attach(memory: WebAssembly.Memory, suspender: Suspender): void {
    this.mem.attach(memory);
    this.suspender = suspender;
  }

  block(interests: readonly Interest[], deadlineNs: bigint | null): number {
    if (this.suspender === null) throw new Error('library OS used before attach');
    return this.suspender.block(interests, deadlineNs);
  }

  get resumed(): { deadlineNs: bigint | null; blockedAtNs: bigint } | null {
    return this.suspender?.resumed ?? null;
  }

  /** The `wasi_snapshot_preview1` import object: every function of the spec. */
  imports(): SyscallTable {
    const table: SyscallTable = {
      ...miscSyscalls(this), ...fsSyscalls(this), ...fdSyscalls(this), ...sockSyscalls(this), ...pollSyscalls(this),
    };
    for (const name of WASI_FUNCTIONS) {
      if (typeof table[name] !== 'function') throw new Error(`library OS is missing ${name}`);
    }
    return table;
  }

  /** Listener fds with their bound addresses (for `waterbear run` to print, and the dashboard). */
  listeners(): Array<{ fd: number; uri: string; name: string | null; address: string | null }> {
    return this.fds.list().flatMap(([fd, e]) =>
      e.kind === 'listener' ? [{ fd, uri: e.uri, name: e.name, address: this.abi.info(e.handle)?.address ?? null }] : []);
  }

  /** Close every stream the guest holds (after exit or a trap). */
  closeAll(): void {
    for (const [, e] of this.fds.list()) {
      if (e.kind === 'listener' || (e.kind === 'socket' && e.handle !== null)) this.abi.close(e.handle as number);
    }
  }
}
