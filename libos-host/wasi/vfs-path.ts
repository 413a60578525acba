/**
 * Path resolution under WASI's capability model: a path is resolved relative to the directory an
 * fd refers to, and may never leave it — not by an absolute path, not by `..`, not through a
 * symlink. The rules follow wasmtime (cap-std) and the wasi-filesystem path-resolution notes.
 */
import { Errno, WasiErrno } from './errno.js';
import type { DirInode, Inode } from './vfs-inode.js';
import { utf8Length, VFS_MAX_NAME_BYTES, VFS_MAX_PATH_BYTES, VFS_MAX_SYMLINK_FOLLOWS } from './vfs-inode.js';

/**
 * Errno for a path that is absolute or climbs out of its base directory. wasmtime returns PERM
 * (wasi-filesystem's `not-permitted`); older runtimes returned NOTCAPABLE. wasi-libc itself maps
 * absolute paths onto pre-opens, so a well-behaved guest rarely sees it.
 */
export const PATH_ESCAPE_ERRNO = Errno.PERM;

/** What a path names once resolved. */
export interface ResolvedPath {
  /** Directory in which the final component was looked up. */
  parent: number;
  /** Final component; `.` or `..` when the path ends in one (then `ino` is that directory). */
  name: string;
  /** Inode the final component names, or null when it does not exist (yet). */
  ino: number | null;
  /** The path ended in `/` (or a followed symlink's target did): the result must be a directory. */
  trailingSlash: boolean;
  /** True when `name` is `.` or `..`: there is no (parent, name) entry to create or remove. */
  dot: boolean;
}

/** The inode table the resolver reads. */
export interface InodeLookup {
  inode(ino: number): Inode;
}

/** Check a path's encoding-independent limits; returns nothing, throws the spec's errno. */
export function checkPathString(path: string): void {
  if (path.length === 0) throw new WasiErrno(Errno.NOENT);
  if (path.includes('\0')) throw new WasiErrno(Errno.INVAL);
  if (utf8Length(path) > VFS_MAX_PATH_BYTES) throw new WasiErrno(Errno.NAMETOOLONG);
  if (path.startsWith('/')) throw new WasiErrno(PATH_ESCAPE_ERRNO);
}

/**
 * Resolve `path` relative to directory `base`. Intermediate symlinks are always followed; the
 * final one only when `followFinal`, or when the path ends in `/` and `slashFollows` (calls that
 * create or remove the final name pass false, so `link/` names the link itself). Errors: NOENT (missing
 * intermediate or empty path), NOTDIR (a non-directory used as one, or `file/`), LOOP (more than
 * VFS_MAX_SYMLINK_FOLLOWS symlinks), NAMETOOLONG (a component over 255 bytes or a path over 4096),
 * INVAL (NUL byte), PATH_ESCAPE_ERRNO (absolute path or escape via `..`).
 * A missing final component is not an error: `ino` is null.
 */
export function resolvePath(fs: InodeLookup, base: number, path: string, followFinal: boolean, slashFollows = true): ResolvedPath {
  checkPathString(path);
  let trailingSlash = path.endsWith('/');
  // Components still to walk, last one first so pop() yields the next.
  const pending = splitComponents(path).reverse();
  // The directories walked from `base`: `..` pops, and popping `base` itself is an escape.
  const stack: number[] = [base];
  let follows = 0;
  for (;;) {
    const comp = pending.pop();
    const cur = stack[stack.length - 1];
    if (comp === undefined) {
      // A path made only of `.`/`/` (e.g. "./") or a symlink to "." names the current directory.
      return { parent: cur, name: '.', ino: cur, trailingSlash, dot: true };
    }
    const isLast = pending.length === 0;
    if (utf8Length(comp) > VFS_MAX_NAME_BYTES) throw new WasiErrno(Errno.NAMETOOLONG);
    if (comp === '.') {
      if (isLast) return { parent: cur, name: '.', ino: cur, trailingSlash, dot: true };
      continue;
    }
    if (comp === '..') {
      if (stack.length === 1) throw new WasiErrno(PATH_ESCAPE_ERRNO);
      stack.pop();
      const up = stack[stack.length - 1];
      if (isLast) return { parent: up, name: '..', ino: up, trailingSlash, dot: true };
      continue;
    }
    const dir = fs.inode(cur) as DirInode;
    const entry = dir.entries.get(comp);
    if (entry === undefined) {
      if (isLast) return { parent: cur, name: comp, ino: null, trailingSlash, dot: false };
      throw new WasiErrno(Errno.NOENT);
    }
    const child = fs.inode(entry.ino);
    if (child.kind === 'symlink' && (!isLast || followFinal || (trailingSlash && slashFollows))) {
      if (++follows > VFS_MAX_SYMLINK_FOLLOWS) throw new WasiErrno(Errno.LOOP);
      const target = child.target;
      if (target.length === 0) throw new WasiErrno(Errno.NOENT);
      if (target.startsWith('/')) throw new WasiErrno(PATH_ESCAPE_ERRNO);
      if (isLast && target.endsWith('/')) trailingSlash = true;
      // The target is walked from the directory holding the link (still the top of the stack).
      const parts = splitComponents(target);
      for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i]);
      if (parts.length === 0) pending.push('.');
      continue;
    }
    if (isLast) {
      if (trailingSlash && child.kind !== 'dir') throw new WasiErrno(Errno.NOTDIR);
      return { parent: cur, name: comp, ino: entry.ino, trailingSlash, dot: false };
    }
    if (child.kind !== 'dir') throw new WasiErrno(Errno.NOTDIR);
    stack.push(entry.ino);
  }
}

/** Split on `/`, dropping empty components (repeated and trailing slashes). */
function splitComponents(path: string): string[] {
  return path.split('/').filter((c) => c.length > 0);
}
