import type { HostAbi, Interest } from '../abi/host-abi.js';
import { WaterbearError } from '../errors.js';
import { FdTable, type FdEntry } from './fd-table.js';
import { GuestClock, type GuestClockState } from './guest-clock.js';
import { GuestMemory } from './guest-memory.js';
import type { SyscallHost, SyscallTable } from './syscall-host.js';
import { fdSyscalls } from './syscalls-fd.js';
import { fsSyscalls, openPreopen } from './syscalls-fs.js';
import { miscSyscalls } from './syscalls-misc.js';
import { pollSyscalls } from './syscalls-poll.js';
import { sockSyscalls } from './syscalls-sock.js';
import { Vfs } from './vfs.js';
import { decodeVfsDelta, encodeVfsDelta } from './vfs-delta.js';
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

function saveFd(abi: HostAbi, fd: number, e: FdEntry): SavedFd {
  // Flat literals, not `{ ...common, … }`: V8 copied the spread at ~1.3 µs per fd (measured,
  // docs/replication.md), and every checkpoint saves every open fd.
  const { fdflags, rightsBase, rightsInheriting } = e;
  switch (e.kind) {
    case 'stdio': return { fd, fdflags, rightsBase, rightsInheriting, kind: 'stdio', which: e.which };
    case 'file': return { fd, fdflags, rightsBase, rightsInheriting, kind: 'file', ino: e.ino, offset: e.offset };
    case 'dir': return { fd, fdflags, rightsBase, rightsInheriting, kind: 'dir', ino: e.ino, preopen: e.preopen };
    case 'listener': return { fd, fdflags, rightsBase, rightsInheriting, kind: 'listener', uri: e.uri, name: e.name, address: abi.info(e.handle)?.address ?? null };
    case 'socket': return { fd, fdflags, rightsBase, rightsInheriting, kind: 'socket', peer: e.peer, readShut: e.readShut, writeShut: e.writeShut, held: e.held === null ? null : e.held.slice() };
  }
}

/** Default budget for virtual file data: a full "disk" gives the guest ENOSPC, never a host crash. */
export const DEFAULT_VFS_MAX_BYTES = 256 * 1024 * 1024;

/** Fields every saved fd has (rights are WASI 64-bit masks). */
interface SavedFdCommon { fd: number; fdflags: number; rightsBase: bigint; rightsInheriting: bigint }

/**
 * One open fd as saved in a checkpoint. Stream handles are not saved: the console is re-opened,
 * listeners are re-bound to the address they had (`address`, the bound host:port), and
 * connections come back dead (reads give ECONNRESET, poll reports hangup), keeping input the
 * guest had not consumed yet (`held`).
 */
export type SavedFd =
  | SavedFdCommon & { kind: 'stdio'; which: 'stdin' | 'stdout' | 'stderr' }
  | SavedFdCommon & { kind: 'file'; ino: number; offset: bigint }
  | SavedFdCommon & { kind: 'dir'; ino: number; preopen: string | null }
  | SavedFdCommon & { kind: 'listener'; uri: `tcp.srv:${string}`; name: string | null; address: string | null }
  | SavedFdCommon & { kind: 'socket'; peer: string; readShut: boolean; writeShut: boolean; held: Uint8Array | null };

/** The library OS's part of a checkpoint (plain data). */
export interface LibOsState {
  args: string[];
  env: string[];
  fds: SavedFd[];
  /** The VFS: a full image (first checkpoint of a chain) or the delta since the previous checkpoint. */
  vfs: { full: boolean; bytes: Uint8Array };
  vfsMaxBytes: number;
  clock: GuestClockState;
}

/** What `LibOs.restore` needs: the saved state with the VFS as a full image followed by deltas, in order. */
export interface LibOsRestoreState extends Omit<LibOsState, 'vfs'> {
  vfs: readonly Uint8Array[];
}

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
   * in order (like `wasmtime --tcplisten`), then the pre-opened directories. Throws
   * WB_LISTEN_FAILED for a listener that cannot be bound, WB_CONFIG_INVALID / WB_HOST_IO for a
   * directory that cannot be copied in; no listener stays bound then.
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
      for (const d of options.dirs) {
        const tree = d.hostPath === null ? null : abi.readHostTree(d.hostPath);
        if (tree !== null && tree.kind !== 'dir') {
          throw new WaterbearError('WB_CONFIG_INVALID', `${d.hostPath} is a ${tree.kind}, not a directory: only a host directory can be pre-opened (as ${d.guestPath})`);
        }
        openPreopen(os, d.guestPath, tree);
      }
    } catch (err) {
      // Nothing stays bound after a failed launch (a bad --dir after a --listen kept the process alive).
      for (const h of bound) abi.close(h);
      throw err;
    }
    return os;
  }

  /**
   * Capture the library OS's state while the guest is suspended: fd table, socket input held
   * for the guest, clock, and the VFS — whole when `full` (the first checkpoint of a chain),
   * else only what changed since the previous capture. Either way change tracking restarts here.
   */
  saveState(options: { full: boolean }): LibOsState {
    const fds = this.fds.list().map(([fd, e]) => saveFd(this.abi, fd, e));
    let vfs: LibOsState['vfs'];
    if (options.full) {
      vfs = { full: true, bytes: this.vfs.save() };
      this.vfs.markClean();
    } else {
      vfs = { full: false, bytes: encodeVfsDelta(this.vfs.takeDelta()) };
    }
    return { args: [...this.args], env: [...this.env], fds, vfs, vfsMaxBytes: this.vfs.maxBytes, clock: this.clock.save() };
  }

  /**
   * Rebuild a library OS from a saved state (possibly captured in another process): load the
   * VFS, restore the fd table, re-open the console, re-bind every listener to the address it
   * had, and continue the guest's monotonic clock. Connections that were open come back dead.
   * Throws WB_LISTEN_FAILED when a listener cannot be bound again (nothing stays bound then),
   * WB_CHECKPOINT_CORRUPT for a VFS that does not load.
   */
  static async restore(abi: HostAbi, state: LibOsRestoreState): Promise<LibOs> {
    const os = new LibOs(abi, [...state.args], [...state.env], state.vfsMaxBytes);
    if (state.vfs.length === 0) throw new WaterbearError('WB_CHECKPOINT_CORRUPT', 'the checkpoint has no VFS image');
    os.vfs.load(state.vfs[0]);
    for (const d of state.vfs.slice(1)) os.vfs.applyDelta(decodeVfsDelta(d));
    os.vfs.markClean();
    const bound: number[] = [];
    try {
      for (const f of state.fds) {
        const common = { fdflags: f.fdflags, rightsBase: f.rightsBase, rightsInheriting: f.rightsInheriting };
        let entry: FdEntry;
        switch (f.kind) {
          case 'stdio': entry = { kind: 'stdio', which: f.which, handle: abi.open(`${f.which}:`), ...common }; break;
          case 'file': entry = { kind: 'file', ino: f.ino, offset: f.offset, ...common }; break;
          case 'dir': entry = { kind: 'dir', ino: f.ino, preopen: f.preopen, ...common }; break;
          case 'listener': {
            const handle = await abi.listen(f.address !== null ? `tcp.srv:${f.address}` : f.uri);
            bound.push(handle);
            entry = { kind: 'listener', handle, uri: f.uri, name: f.name, ...common };
            break;
          }
          case 'socket':
            entry = { kind: 'socket', handle: null, peer: f.peer, readShut: f.readShut, writeShut: f.writeShut, held: f.held, ...common };
            break;
        }
        os.fds.set(f.fd, entry);
      }
    } catch (err) {
      for (const h of bound) abi.close(h);
      throw err;
    }
    os.clock.restore(state.clock);
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
