/**
 * Inodes of the virtual file system and the limits that keep a guest from exhausting the host.
 * Everything here is plain data so the whole file system can be saved and restored exactly.
 */
import { Filetype } from './wasi-constants.js';

/** Default budget for all regular-file data (bytes): a "full disk" gives the guest ENOSPC. */
export const VFS_DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
/** Default cap on live inodes, so creating millions of empty files also ends in ENOSPC. */
export const VFS_DEFAULT_MAX_INODES = 1 << 20;
/** Longest name of one path component (bytes of UTF-8), as NAME_MAX on Linux. */
export const VFS_MAX_NAME_BYTES = 255;
/** Longest path accepted by a path_* call or stored in a symlink (bytes), as PATH_MAX. */
export const VFS_MAX_PATH_BYTES = 4096;
/** Symlinks followed during one resolution before ELOOP, as Linux's MAXSYMLINKS. */
export const VFS_MAX_SYMLINK_FOLLOWS = 40;
/** Largest regular file (bytes): one contiguous Uint8Array per file must stay allocatable. */
export const VFS_MAX_FILE_BYTES = 2 ** 32 - 1;
/** Granularity of change tracking for file data (bytes). */
export const VFS_BLOCK_BYTES = 4096;
/** Size reported for directories in filestat (bytes), as a typical block file system does. */
export const VFS_DIR_SIZE_BYTES = 4096;
/** Device id reported in filestat unless the VFS is configured otherwise. */
export const VFS_DEFAULT_DEV = 1n;

/** First directory-entry cookie: 0 and 1 belong to `.` and `..` (see fd_readdir). */
export const FIRST_ENTRY_COOKIE = 2;

interface InodeCommon {
  ino: number;
  /** Hard links (names) to this inode; directories count 2 + subdirectories, as POSIX. */
  nlink: number;
  /** Open descriptors referring to the inode: it lives on after its last unlink until this is 0. */
  openRefs: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export interface FileInode extends InodeCommon {
  kind: 'file';
  /** Backing store; bytes from `size` to `data.length` are always zero. */
  data: Uint8Array;
  size: number;
}

/** One name in a directory. `cookie` orders entries (insertion order) and resumes fd_readdir. */
export interface DirEntry { ino: number; cookie: number }

export interface DirInode extends InodeCommon {
  kind: 'dir';
  /** Names in ascending cookie order (a Map keeps insertion order; every insert takes a new cookie). */
  entries: Map<string, DirEntry>;
  /** The directory holding this one; a root (pre-opened directory) is its own parent. */
  parent: number;
  nextCookie: number;
}

export interface SymlinkInode extends InodeCommon {
  kind: 'symlink';
  target: string;
}

export type Inode = FileInode | DirInode | SymlinkInode;
export type InodeKind = Inode['kind'];

/** WASI filetype of an inode. */
export function filetypeOfInode(inode: Inode): number {
  switch (inode.kind) {
    case 'file': return Filetype.REGULAR_FILE;
    case 'dir': return Filetype.DIRECTORY;
    case 'symlink': return Filetype.SYMBOLIC_LINK;
  }
}

const encoder = new TextEncoder();

/** Length of `s` in UTF-8 bytes (names and paths are limited in bytes, not characters). */
export function utf8Length(s: string): number {
  // Fast path for ASCII, which nearly every name is.
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) { ascii = false; break; }
  }
  return ascii ? s.length : encoder.encode(s).length;
}

/** Attributes of an inode as fd_filestat_get/path_filestat_get report them. */
export interface VfsStat {
  dev: bigint;
  ino: number;
  filetype: number;
  nlink: number;
  size: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** A timestamp change for setTimes: keep, set to the VFS clock's now, or set to a value (ns). */
export type TimeChange = { kind: 'keep' } | { kind: 'now' } | { kind: 'set'; ns: bigint };

/** Everything a VFS holds; saving this (plus nothing else) captures the file system. */
export interface VfsState {
  inodes: Map<number, Inode>;
  /** Next inode number; numbers are never reused, so a delta can name inodes unambiguously. */
  nextIno: number;
  /** Pre-opened directories, in the order they were added. */
  roots: number[];
  dev: bigint;
  /** Sum of the sizes of all regular files (the quantity `maxBytes` limits). */
  usedBytes: number;
}

/** Files at least this large grow their backing store by at most this much at a time (bytes). */
const MAX_GROWTH_STEP_BYTES = 64 * 1024 * 1024;

/**
 * Set a file's size, growing its backing store (amortised) or zeroing the cut-off tail so the
 * invariant "bytes past `size` are zero" holds. The caller accounts for the budget.
 */
export function setFileSize(f: FileInode, size: number): void {
  if (size > f.data.length) {
    const grown = Math.min(VFS_MAX_FILE_BYTES, f.data.length + Math.min(f.data.length, MAX_GROWTH_STEP_BYTES));
    const data = new Uint8Array(Math.max(size, grown));
    data.set(f.data.subarray(0, f.size));
    f.data = data;
  } else if (size < f.size) {
    f.data.fill(0, size, f.size);
    // Give memory back when a large file shrank a lot.
    if (f.data.length > 4 * Math.max(size, VFS_BLOCK_BYTES)) f.data = f.data.slice(0, size);
  }
  f.size = size;
}
