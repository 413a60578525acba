/**
 * Tracks what changed in the VFS since the last checkpoint, so a checkpoint carries only the
 * changed 4 KiB blocks of file data and the changed metadata instead of the whole file system.
 */
import { inodeToRecord } from './vfs-checkpoint.js';
import type { VfsChunk, VfsDelta, VfsEntryRecord, VfsInodeRecord } from './vfs-delta.js';
import { VFS_DELTA_VERSION } from './vfs-delta.js';
import type { VfsState } from './vfs-inode.js';
import { VFS_BLOCK_BYTES } from './vfs-inode.js';

export class VfsChangeTracker {
  /** Inodes created or whose metadata changed. */
  private readonly inodes = new Set<number>();
  /** Inodes created this epoch: if they are also removed, the delta need not mention them. */
  private readonly created = new Set<number>();
  private readonly removed = new Set<number>();
  /** File inode → indices of blocks written (or zeroed by a truncation). */
  private readonly blocks = new Map<number, Set<number>>();
  /** Directory inode → names set or removed. */
  private readonly entries = new Map<number, Set<string>>();

  inodeCreated(ino: number): void {
    this.created.add(ino);
    this.inodes.add(ino);
  }

  inodeChanged(ino: number): void {
    this.inodes.add(ino);
  }

  inodeRemoved(ino: number): void {
    this.inodes.delete(ino);
    this.blocks.delete(ino);
    this.entries.delete(ino);
    if (!this.created.delete(ino)) this.removed.add(ino);
  }

  /** Bytes [start, end) of file `ino` changed. */
  dataChanged(ino: number, start: number, end: number): void {
    if (end <= start) return;
    let set = this.blocks.get(ino);
    if (set === undefined) {
      set = new Set();
      this.blocks.set(ino, set);
    }
    const last = Math.floor((end - 1) / VFS_BLOCK_BYTES);
    for (let b = Math.floor(start / VFS_BLOCK_BYTES); b <= last; b++) set.add(b);
  }

  entryChanged(dir: number, name: string): void {
    let set = this.entries.get(dir);
    if (set === undefined) {
      set = new Set();
      this.entries.set(dir, set);
    }
    set.add(name);
  }

  /** Forget everything tracked: the current state is the new baseline. */
  reset(): void {
    this.inodes.clear();
    this.created.clear();
    this.removed.clear();
    this.blocks.clear();
    this.entries.clear();
  }

  /** The changes since the last reset, read from the current state `st`. */
  build(st: VfsState): VfsDelta {
    const inodes: VfsInodeRecord[] = [];
    for (const ino of [...this.inodes].sort((a, b) => a - b)) {
      const inode = st.inodes.get(ino);
      if (inode !== undefined) inodes.push(inodeToRecord(inode));
    }
    const entries: VfsEntryRecord[] = [];
    for (const [dirIno, names] of this.entries) {
      const dir = st.inodes.get(dirIno);
      if (dir === undefined || dir.kind !== 'dir') continue;
      for (const name of names) {
        const e = dir.entries.get(name);
        entries.push({ dir: dirIno, name, ino: e?.ino ?? null, cookie: e?.cookie ?? 0 });
      }
    }
    const chunks: VfsChunk[] = [];
    for (const [ino, set] of this.blocks) {
      const f = st.inodes.get(ino);
      if (f === undefined || f.kind !== 'file') continue;
      const sorted = [...set].sort((a, b) => a - b);
      // Coalesce runs of adjacent blocks into one chunk, clipped to the file's size.
      for (let i = 0; i < sorted.length;) {
        let j = i;
        while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
        const start = sorted[i] * VFS_BLOCK_BYTES;
        const end = Math.min(f.size, (sorted[j] + 1) * VFS_BLOCK_BYTES);
        if (end > start) chunks.push({ ino, offset: start, data: f.data.slice(start, end) });
        i = j + 1;
      }
    }
    return {
      version: VFS_DELTA_VERSION,
      full: false,
      nextIno: st.nextIno,
      dev: st.dev.toString(),
      roots: [...st.roots],
      removed: [...this.removed].sort((a, b) => a - b),
      inodes,
      entries,
      chunks,
    };
  }
}
