/**
 * The library OS's virtual file system: regular files, directories and symlinks held in memory,
 * with inode numbers, link counts and timestamps, under a byte budget. It never touches the host
 * (host directories arrive as HostTreeEntry trees read by the platform) and never reads a clock
 * itself (timestamps come from the `now` it is given), so it is deterministic and checkpointable:
 * `save`/`load` capture it whole, `takeDelta`/`applyDelta` carry only what changed.
 *
 * Operations take inode numbers (a directory plus a name where an entry is created or removed);
 * path resolution is `resolve`. Errors are WasiErrno with the errno POSIX/WASI specify.
 */
import type { HostTreeEntry } from '../abi/host-abi.js';
import { WaterbearError } from '../errors.js';
import { Errno, WasiErrno } from './errno.js';
import { VfsChangeTracker } from './vfs-changes.js';
import { applyImage, fullImage } from './vfs-checkpoint.js';
import type { VfsDelta } from './vfs-delta.js';
import { decodeVfsDelta, encodeVfsDelta } from './vfs-delta.js';
import type { DirInode, FileInode, Inode, InodeKind, SymlinkInode, TimeChange, VfsState, VfsStat } from './vfs-inode.js';
import {
  FIRST_ENTRY_COOKIE, VFS_DEFAULT_DEV, VFS_DEFAULT_MAX_BYTES, VFS_DEFAULT_MAX_INODES, VFS_DIR_SIZE_BYTES,
  VFS_MAX_FILE_BYTES, VFS_MAX_NAME_BYTES, VFS_MAX_PATH_BYTES, filetypeOfInode, setFileSize, utf8Length,
} from './vfs-inode.js';
import type { ResolvedPath } from './vfs-path.js';
import { resolvePath } from './vfs-path.js';

export type { VfsStat, TimeChange, Inode, InodeKind } from './vfs-inode.js';
export type { ResolvedPath } from './vfs-path.js';
export type { VfsDelta } from './vfs-delta.js';

export interface VfsOptions {
  /** Current time in ns for timestamps (the library OS passes the guest's realtime clock). */
  now: () => bigint;
  /** Budget for the bytes of all regular files; writes past it fail with ENOSPC. */
  maxBytes?: number;
  /** Cap on live inodes; creating more fails with ENOSPC. */
  maxInodes?: number;
  /** Device id reported by filestat. */
  dev?: bigint;
}

/** One entry produced by `readdir`, with the cookie that resumes after it. */
export interface VfsDirent { name: string; ino: number; filetype: number; next: bigint }

export class Vfs {
  readonly maxBytes: number;
  readonly maxInodes: number;
  private readonly now: () => bigint;
  private st: VfsState;
  private readonly changes = new VfsChangeTracker();

  /** Throws WB_CONFIG_INVALID for a non-positive or non-integer limit. */
  constructor(options: VfsOptions) {
    const maxBytes = options.maxBytes ?? VFS_DEFAULT_MAX_BYTES;
    const maxInodes = options.maxInodes ?? VFS_DEFAULT_MAX_INODES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new WaterbearError('WB_CONFIG_INVALID', `VFS maxBytes must be a whole number of bytes >= 0: got ${maxBytes}`);
    }
    if (!Number.isSafeInteger(maxInodes) || maxInodes < 1) {
      throw new WaterbearError('WB_CONFIG_INVALID', `VFS maxInodes must be a whole number >= 1: got ${maxInodes}`);
    }
    this.maxBytes = maxBytes;
    this.maxInodes = maxInodes;
    this.now = options.now;
    this.st = { inodes: new Map(), nextIno: 1, roots: [], dev: options.dev ?? VFS_DEFAULT_DEV, usedBytes: 0 };
  }

  /** A VFS holding one pre-opened directory copied from `tree`; its inode is `roots[0]`. */
  static fromHostTree(tree: HostTreeEntry, options: VfsOptions): Vfs {
    const vfs = new Vfs(options);
    vfs.addPreopen(tree);
    return vfs;
  }

  get dev(): bigint { return this.st.dev; }
  /** Bytes of regular-file data held (what `maxBytes` limits). */
  get usedBytes(): number { return this.st.usedBytes; }
  get inodeCount(): number { return this.st.inodes.size; }
  /** Inodes of the pre-opened directories, in the order they were added. */
  get roots(): readonly number[] { return this.st.roots; }

  // ---- pre-opened directories -------------------------------------------------------------

  /**
   * Add a pre-opened directory: a copy of `tree` (read from the host by the platform), or an
   * empty directory when `tree` is null. Returns its inode. Throws WB_CONFIG_INVALID when the tree
   * is not a directory, has a name WASI cannot carry, or exceeds the byte or inode budget.
   */
  addPreopen(tree: HostTreeEntry | null): number {
    if (tree !== null && tree.kind !== 'dir') {
      throw new WaterbearError('WB_CONFIG_INVALID', `a pre-opened directory must be a directory on the host: got a ${tree.kind}`);
    }
    const budget = { bytes: 0, inodes: 0 };
    if (tree !== null) measureTree(tree, budget, '');
    if (this.st.usedBytes + budget.bytes > this.maxBytes) {
      throw new WaterbearError('WB_CONFIG_INVALID', `the directory holds ${budget.bytes} bytes of files, more than the ${this.maxBytes - this.st.usedBytes} bytes left in the VFS budget: raise the VFS size limit`);
    }
    if (this.st.inodes.size + budget.inodes + 1 > this.maxInodes) {
      throw new WaterbearError('WB_CONFIG_INVALID', `the directory holds ${budget.inodes} entries, more than the VFS inode limit allows: raise it or pre-open less`);
    }
    const t = tree?.mtimeNs ?? this.now();
    const root = this.newDir(0, t);
    root.parent = root.ino;
    if (tree !== null) this.importEntries(root, tree);
    this.st.roots.push(root.ino);
    return root.ino;
  }

  private importEntries(dir: DirInode, tree: HostTreeEntry & { kind: 'dir' }): void {
    for (const [name, child] of tree.entries) {
      let inode: Inode;
      switch (child.kind) {
        case 'file': {
          const f = this.newFile(child.mtimeNs);
          setFileSize(f, child.data.length);
          f.data.set(child.data);
          this.st.usedBytes += child.data.length;
          this.changes.dataChanged(f.ino, 0, f.size);
          inode = f;
          break;
        }
        case 'symlink':
          inode = this.newSymlink(child.target, child.mtimeNs);
          break;
        case 'dir': {
          const d = this.newDir(dir.ino, child.mtimeNs);
          dir.nlink++;
          this.importEntries(d, child);
          inode = d;
          break;
        }
      }
      this.addEntry(dir, name, inode.ino);
    }
  }

  // ---- inspection ---------------------------------------------------------------------------

  has(ino: number): boolean { return this.st.inodes.has(ino); }

  /** The inode itself. A missing inode is a library-OS bug, so this throws a plain Error. */
  inode(ino: number): Inode {
    const i = this.st.inodes.get(ino);
    if (i === undefined) throw new Error(`VFS inode ${ino} does not exist`);
    return i;
  }

  kindOf(ino: number): InodeKind { return this.inode(ino).kind; }

  /** Size in bytes as filestat reports it. */
  sizeOf(ino: number): number {
    const i = this.inode(ino);
    switch (i.kind) {
      case 'file': return i.size;
      case 'dir': return VFS_DIR_SIZE_BYTES;
      case 'symlink': return utf8Length(i.target);
    }
  }

  stat(ino: number): VfsStat {
    const i = this.inode(ino);
    return {
      dev: this.st.dev, ino, filetype: filetypeOfInode(i), nlink: i.nlink, size: this.sizeOf(ino),
      atimeNs: i.atimeNs, mtimeNs: i.mtimeNs, ctimeNs: i.ctimeNs,
    };
  }

  /** Resolve `path` relative to directory `base` (see resolvePath for the rules and errnos). */
  resolve(base: number, path: string, followFinal: boolean, slashFollows = true): ResolvedPath {
    return resolvePath(this, base, path, followFinal, slashFollows);
  }

  /** Target of symlink `ino`; EINVAL when it is not a symlink (readlink). */
  readlink(ino: number): string {
    const i = this.inode(ino);
    if (i.kind !== 'symlink') throw new WasiErrno(Errno.INVAL);
    return i.target;
  }

  /**
   * Entries of directory `ino` from `cookie` on: `.` (cookie 0), `..` (cookie 1), then the names
   * in creation order. Each carries the cookie that resumes after it.
   */
  *readdir(ino: number, cookie: bigint): Generator<VfsDirent> {
    const dir = this.dirInode(ino);
    if (cookie <= 0n) yield { name: '.', ino, filetype: filetypeOfInode(dir), next: 1n };
    if (cookie <= 1n) yield { name: '..', ino: dir.parent, filetype: filetypeOfInode(dir), next: 2n };
    for (const [name, e] of dir.entries) {
      if (BigInt(e.cookie) < cookie) continue;
      yield { name, ino: e.ino, filetype: filetypeOfInode(this.inode(e.ino)), next: BigInt(e.cookie + 1) };
    }
  }

  // ---- creating and removing names ----------------------------------------------------------

  /** Create an empty regular file `name` in `parent`. EEXIST, ENOENT (parent removed), ENOSPC. */
  createFile(parent: number, name: string): number {
    const dir = this.dirForCreate(parent, name);
    const f = this.newFile(this.now());
    this.addEntry(dir, name, f.ino);
    this.touchDir(dir, f.ctimeNs);
    return f.ino;
  }

  /** Create directory `name` in `parent`. EEXIST, ENOENT (parent removed), ENOSPC. */
  mkdir(parent: number, name: string): number {
    const dir = this.dirForCreate(parent, name);
    const d = this.newDir(parent, this.now());
    this.addEntry(dir, name, d.ino);
    dir.nlink++;
    this.touchDir(dir, d.ctimeNs);
    return d.ino;
  }

  /** Create symlink `name` → `target` in `parent`. ENOENT (empty target), ENAMETOOLONG, EEXIST. */
  symlink(parent: number, name: string, target: string): number {
    if (target.length === 0) throw new WasiErrno(Errno.NOENT);
    if (target.includes('\0')) throw new WasiErrno(Errno.INVAL);
    if (utf8Length(target) > VFS_MAX_PATH_BYTES) throw new WasiErrno(Errno.NAMETOOLONG);
    const dir = this.dirForCreate(parent, name);
    const s = this.newSymlink(target, this.now());
    this.addEntry(dir, name, s.ino);
    this.touchDir(dir, s.ctimeNs);
    return s.ino;
  }

  /** Add hard link `name` in `parent` to `ino`. EPERM for a directory, EEXIST, ENOENT. */
  link(parent: number, name: string, ino: number): void {
    const target = this.inode(ino);
    if (target.kind === 'dir') throw new WasiErrno(Errno.PERM);
    const dir = this.dirForCreate(parent, name);
    if (target.nlink === 0) throw new WasiErrno(Errno.NOENT);
    const t = this.now();
    this.addEntry(dir, name, ino);
    target.nlink++;
    target.ctimeNs = t;
    this.changes.inodeChanged(ino);
    this.touchDir(dir, t);
  }

  /** Remove name `name` (not a directory) from `parent`. ENOENT, EISDIR. */
  unlink(parent: number, name: string): void {
    const dir = this.dirInode(parent);
    const e = dir.entries.get(name);
    if (e === undefined) throw new WasiErrno(Errno.NOENT);
    const victim = this.inode(e.ino);
    if (victim.kind === 'dir') throw new WasiErrno(Errno.ISDIR);
    const t = this.now();
    this.removeEntry(dir, name);
    this.touchDir(dir, t);
    this.dropLink(victim, t);
  }

  /** Remove empty directory `name` from `parent`. ENOENT, ENOTDIR, ENOTEMPTY. */
  rmdir(parent: number, name: string): void {
    const dir = this.dirInode(parent);
    const e = dir.entries.get(name);
    if (e === undefined) throw new WasiErrno(Errno.NOENT);
    const victim = this.inode(e.ino);
    if (victim.kind !== 'dir') throw new WasiErrno(Errno.NOTDIR);
    if (victim.entries.size > 0) throw new WasiErrno(Errno.NOTEMPTY);
    const t = this.now();
    this.removeEntry(dir, name);
    dir.nlink--;
    this.touchDir(dir, t);
    this.dropLink(victim, t);
  }

  /**
   * Rename with POSIX semantics: an existing destination is replaced atomically (a file by a
   * non-directory, an empty directory by a directory). ENOENT (no source, or destination
   * directory removed), ENOTDIR (directory over a non-directory), EISDIR (non-directory over a
   * directory), ENOTEMPTY, EINVAL (a directory into itself). Renaming onto the same inode does
   * nothing.
   */
  rename(srcParent: number, srcName: string, dstParent: number, dstName: string): void {
    const sdir = this.dirInode(srcParent);
    const ddir = this.dirInode(dstParent);
    const se = sdir.entries.get(srcName);
    if (se === undefined) throw new WasiErrno(Errno.NOENT);
    checkName(dstName);
    const moving = this.inode(se.ino);
    const de = ddir.entries.get(dstName);
    if (de !== undefined && de.ino === se.ino) return;
    const replaced = de === undefined ? null : this.inode(de.ino);
    if (replaced !== null) {
      if (moving.kind === 'dir' && replaced.kind !== 'dir') throw new WasiErrno(Errno.NOTDIR);
      if (moving.kind !== 'dir' && replaced.kind === 'dir') throw new WasiErrno(Errno.ISDIR);
      if (replaced.kind === 'dir' && replaced.entries.size > 0) throw new WasiErrno(Errno.NOTEMPTY);
    }
    if (ddir.nlink === 0) throw new WasiErrno(Errno.NOENT);
    if (moving.kind === 'dir' && this.isSelfOrDescendant(dstParent, moving.ino)) throw new WasiErrno(Errno.INVAL);
    const t = this.now();
    if (replaced !== null) {
      this.removeEntry(ddir, dstName);
      if (replaced.kind === 'dir') ddir.nlink--;
      this.dropLink(replaced, t);
    }
    this.removeEntry(sdir, srcName);
    this.addEntry(ddir, dstName, moving.ino);
    if (moving.kind === 'dir') {
      moving.parent = dstParent;
      sdir.nlink--;
      ddir.nlink++;
    }
    moving.ctimeNs = t;
    this.changes.inodeChanged(moving.ino);
    this.touchDir(sdir, t);
    this.touchDir(ddir, t);
  }

  // ---- file data ----------------------------------------------------------------------------

  /** Copy bytes of file `ino` from `offset` into `dst`; returns the count (0 at or past the end). */
  read(ino: number, offset: number, dst: Uint8Array): number {
    const f = this.fileInode(ino);
    if (offset >= f.size) return 0;
    const n = Math.min(dst.length, f.size - offset);
    dst.set(f.data.subarray(offset, offset + n));
    return n;
  }

  /**
   * Write `src` into file `ino` at `offset`, growing it (a gap reads as zeros). When the byte
   * budget or the file-size limit leaves room for only part of `src`, writes that part and returns
   * its length; with no room at all throws ENOSPC (budget) or EFBIG (file-size limit).
   */
  write(ino: number, offset: number, src: Uint8Array): number {
    const f = this.fileInode(ino);
    if (src.length === 0) return 0;
    let n = src.length;
    if (offset + n > f.size) {
      const budgetEnd = f.size + (this.maxBytes - this.st.usedBytes);
      const limitEnd = Math.min(budgetEnd, VFS_MAX_FILE_BYTES);
      if (offset >= limitEnd) throw new WasiErrno(limitEnd === budgetEnd ? Errno.NOSPC : Errno.FBIG);
      n = Math.min(n, limitEnd - offset);
      const newSize = Math.max(f.size, offset + n);
      this.st.usedBytes += newSize - f.size;
      setFileSize(f, newSize);
    }
    f.data.set(n === src.length ? src : src.subarray(0, n), offset);
    this.changes.dataChanged(ino, offset, offset + n);
    this.touchData(f);
    return n;
  }

  /** Set file `ino`'s size (ftruncate): zero-filled when it grows. ENOSPC, EFBIG. */
  truncate(ino: number, size: number): void {
    const f = this.fileInode(ino);
    this.resizeFile(f, size);
    this.touchData(f);
  }

  /** Make sure bytes [offset, offset+len) exist (posix_fallocate): grows the file if needed. */
  allocate(ino: number, offset: number, len: number): void {
    const f = this.fileInode(ino);
    if (offset + len > f.size) {
      this.resizeFile(f, offset + len);
      this.touchData(f);
    }
  }

  private resizeFile(f: FileInode, size: number): void {
    if (size > VFS_MAX_FILE_BYTES) throw new WasiErrno(Errno.FBIG);
    if (size === f.size) return;
    if (size > f.size && this.st.usedBytes + (size - f.size) > this.maxBytes) throw new WasiErrno(Errno.NOSPC);
    // Shrinking zeroes the cut-off tail: a restored copy must see zeros if the file regrows.
    if (size < f.size) this.changes.dataChanged(f.ino, size, f.size);
    this.st.usedBytes += size - f.size;
    setFileSize(f, size);
  }

  /** Change atime/mtime of any inode (futimens/utimensat); ctime becomes now. */
  setTimes(ino: number, atime: TimeChange, mtime: TimeChange): void {
    const i = this.inode(ino);
    const t = this.now();
    const pick = (c: TimeChange, old: bigint): bigint => (c.kind === 'keep' ? old : c.kind === 'now' ? t : c.ns);
    i.atimeNs = pick(atime, i.atimeNs);
    i.mtimeNs = pick(mtime, i.mtimeNs);
    i.ctimeNs = t;
    this.changes.inodeChanged(ino);
  }

  // ---- open references ----------------------------------------------------------------------

  /** An fd now refers to `ino`: it stays alive (readable) after its last name is removed. */
  retain(ino: number): void {
    this.inode(ino).openRefs++;
    this.changes.inodeChanged(ino);
  }

  /** An fd referring to `ino` was closed; frees the inode when it has no name and no fd left. */
  release(ino: number): void {
    const i = this.inode(ino);
    if (i.openRefs <= 0) throw new Error(`VFS inode ${ino} released more often than retained`);
    i.openRefs--;
    this.changes.inodeChanged(ino);
    this.freeIfUnused(i);
  }

  // ---- checkpoints --------------------------------------------------------------------------

  /** The whole file system as bytes (format in vfs-delta.ts). Does not reset change tracking. */
  save(): Uint8Array {
    return encodeVfsDelta(fullImage(this.st));
  }

  /**
   * Replace the whole state by one saved with `save` (possibly in another process) and start
   * tracking changes from it. Throws WB_CHECKPOINT_* for bytes that are not a valid image; the
   * VFS is then left unchanged.
   */
  load(bytes: Uint8Array): void {
    const image = decodeVfsDelta(bytes);
    if (!image.full) throw new WaterbearError('WB_CHECKPOINT_CORRUPT', 'VFS load was given a delta, not a full image: apply deltas with applyDelta');
    const st: VfsState = { inodes: new Map(), nextIno: 1, roots: [], dev: this.st.dev, usedBytes: 0 };
    applyImage(st, image);
    this.st = st;
    this.changes.reset();
  }

  /** What changed since the last checkpoint (`takeDelta`, `markClean` or `load`); resets tracking. */
  takeDelta(): VfsDelta {
    const d = this.changes.build(this.st);
    this.changes.reset();
    return d;
  }

  /** Treat the current state as checkpointed: the next delta starts from here. */
  markClean(): void {
    this.changes.reset();
  }

  /**
   * Apply a delta taken from the live VFS at the checkpoint after the one this VFS holds (or a
   * full image when this VFS is empty). Throws WB_CHECKPOINT_CORRUPT when it does not fit; the
   * VFS may then be partly updated and must be rebuilt from a full image.
   */
  applyDelta(delta: VfsDelta): void {
    applyImage(this.st, delta);
    this.changes.reset();
  }

  /**
   * Verify internal invariants (link counts, entry targets, byte accounting, cookie order);
   * throws an Error naming the first violation. Cheap enough for tests and debug checks.
   */
  checkInvariants(): void {
    const names = new Map<number, number>();
    let bytes = 0;
    for (const [ino, i] of this.st.inodes) {
      if (i.ino !== ino) throw new Error(`inode ${ino} carries number ${i.ino}`);
      if (i.kind === 'file') {
        bytes += i.size;
        if (i.data.length < i.size) throw new Error(`file ${ino} backing store is shorter than its size`);
      }
      if (i.kind !== 'dir') continue;
      let last = -1;
      let subdirs = 0;
      for (const [name, e] of i.entries) {
        const child = this.st.inodes.get(e.ino);
        if (child === undefined) throw new Error(`entry ${name} in ${ino} names missing inode ${e.ino}`);
        if (e.cookie <= last || e.cookie >= i.nextCookie) throw new Error(`entry ${name} in ${ino} is out of cookie order`);
        last = e.cookie;
        names.set(e.ino, (names.get(e.ino) ?? 0) + 1);
        if (child.kind === 'dir') {
          subdirs++;
          if (child.parent !== ino) throw new Error(`directory ${e.ino} has parent ${child.parent}, but is in ${ino}`);
        }
      }
      if (i.nlink !== 0 && i.nlink !== 2 + subdirs) throw new Error(`directory ${ino} has nlink ${i.nlink}, expected ${2 + subdirs}`);
    }
    for (const [ino, i] of this.st.inodes) {
      const n = names.get(ino) ?? 0;
      if (i.kind !== 'dir' && i.nlink !== n) throw new Error(`inode ${ino} has nlink ${i.nlink} but ${n} names`);
      if (i.kind === 'dir' && !this.st.roots.includes(ino) && i.nlink !== 0 && n !== 1) throw new Error(`directory ${ino} has ${n} names`);
      if (i.nlink === 0 && i.openRefs === 0) throw new Error(`inode ${ino} is unreachable but not freed`);
    }
    if (bytes !== this.st.usedBytes) throw new Error(`usedBytes is ${this.st.usedBytes}, files hold ${bytes}`);
  }

  // ---- internals ----------------------------------------------------------------------------

  private dirInode(ino: number): DirInode {
    const i = this.inode(ino);
    if (i.kind !== 'dir') throw new WasiErrno(Errno.NOTDIR);
    return i;
  }

  private fileInode(ino: number): FileInode {
    const i = this.inode(ino);
    if (i.kind === 'dir') throw new WasiErrno(Errno.ISDIR);
    if (i.kind !== 'file') throw new WasiErrno(Errno.INVAL);
    return i;
  }

  /** The directory a new entry goes in: it must still exist and not hold `name`. */
  private dirForCreate(parent: number, name: string): DirInode {
    const dir = this.dirInode(parent);
    checkName(name);
    if (dir.nlink === 0) throw new WasiErrno(Errno.NOENT);
    if (dir.entries.has(name)) throw new WasiErrno(Errno.EXIST);
    return dir;
  }

  private allocIno(): number {
    if (this.st.inodes.size >= this.maxInodes) throw new WasiErrno(Errno.NOSPC);
    return this.st.nextIno++;
  }

  private register<T extends Inode>(inode: T): T {
    this.st.inodes.set(inode.ino, inode);
    this.changes.inodeCreated(inode.ino);
    return inode;
  }

  private newFile(t: bigint): FileInode {
    return this.register({ kind: 'file', ino: this.allocIno(), nlink: 1, openRefs: 0, atimeNs: t, mtimeNs: t, ctimeNs: t, data: new Uint8Array(0), size: 0 });
  }

  private newDir(parent: number, t: bigint): DirInode {
    return this.register({
      kind: 'dir', ino: this.allocIno(), nlink: 2, openRefs: 0, atimeNs: t, mtimeNs: t, ctimeNs: t,
      entries: new Map(), parent, nextCookie: FIRST_ENTRY_COOKIE,
    });
  }

  private newSymlink(target: string, t: bigint): SymlinkInode {
    return this.register({ kind: 'symlink', ino: this.allocIno(), nlink: 1, openRefs: 0, atimeNs: t, mtimeNs: t, ctimeNs: t, target });
  }

  /**
   * Insert `name` → `ino` with a fresh cookie (keeps entries in ascending cookie order). Link
   * counts are the caller's: new files and symlinks start at 1, directories at 2.
   */
  private addEntry(dir: DirInode, name: string, ino: number): void {
    dir.entries.set(name, { ino, cookie: dir.nextCookie++ });
    this.changes.entryChanged(dir.ino, name);
    this.changes.inodeChanged(dir.ino);
  }

  private removeEntry(dir: DirInode, name: string): void {
    dir.entries.delete(name);
    this.changes.entryChanged(dir.ino, name);
    this.changes.inodeChanged(dir.ino);
  }

  /** A name of `i` was removed at time `t`. */
  private dropLink(i: Inode, t: bigint): void {
    i.nlink = i.kind === 'dir' ? 0 : i.nlink - 1;
    i.ctimeNs = t;
    if (i.kind === 'dir') i.entries.clear();
    this.changes.inodeChanged(i.ino);
    this.freeIfUnused(i);
  }

  private freeIfUnused(i: Inode): void {
    if (i.nlink > 0 || i.openRefs > 0) return;
    if (i.kind === 'file') this.st.usedBytes -= i.size;
    this.st.inodes.delete(i.ino);
    this.changes.inodeRemoved(i.ino);
  }

  private touchDir(dir: DirInode, t: bigint): void {
    dir.mtimeNs = t;
    dir.ctimeNs = t;
    this.changes.inodeChanged(dir.ino);
  }

  private touchData(f: FileInode): void {
    const t = this.now();
    f.mtimeNs = t;
    f.ctimeNs = t;
    this.changes.inodeChanged(f.ino);
  }

  /** True when directory `ino` is `ancestor` or lies below it. */
  private isSelfOrDescendant(ino: number, ancestor: number): boolean {
    for (let cur = ino; ;) {
      if (cur === ancestor) return true;
      const d = this.st.inodes.get(cur);
      if (d?.kind !== 'dir' || d.parent === cur) return false;
      cur = d.parent;
    }
  }
}

/** A single name WASI can create: not empty, no `/` or NUL, not `.`/`..`, at most 255 bytes. */
function checkName(name: string): void {
  if (name.length === 0 || name === '.' || name === '..') throw new WasiErrno(Errno.INVAL);
  if (name.includes('/') || name.includes('\0')) throw new WasiErrno(Errno.INVAL);
  if (utf8Length(name) > VFS_MAX_NAME_BYTES) throw new WasiErrno(Errno.NAMETOOLONG);
}

/** Count bytes and inodes of a host tree and reject names the guest could not address. */
function measureTree(tree: HostTreeEntry & { kind: 'dir' }, acc: { bytes: number; inodes: number }, at: string): void {
  for (const [name, child] of tree.entries) {
    const path = `${at}/${name}`;
    try {
      checkName(name);
    } catch {
      throw new WaterbearError('WB_CONFIG_INVALID', `host file ${JSON.stringify(path)} has a name WASI cannot carry (empty, '.', '..', a '/' or NUL, or over ${VFS_MAX_NAME_BYTES} bytes): rename it`);
    }
    acc.inodes++;
    if (child.kind === 'file') acc.bytes += child.data.length;
    else if (child.kind === 'dir') measureTree(child, acc, path);
    else if (child.target.length === 0 || utf8Length(child.target) > VFS_MAX_PATH_BYTES || child.target.includes('\0')) {
      throw new WaterbearError('WB_CONFIG_INVALID', `host symlink ${JSON.stringify(path)} has a target WASI cannot carry: remove it`);
    }
  }
}
