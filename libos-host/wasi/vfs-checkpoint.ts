/**
 * Full images of the VFS state and the application of images and deltas to a state. The format
 * itself is described in vfs-delta.ts.
 */
import { WaterbearError } from '../errors.js';
import type { VfsChunk, VfsDelta, VfsEntryRecord, VfsInodeRecord } from './vfs-delta.js';
import { VFS_DELTA_VERSION } from './vfs-delta.js';
import type { DirInode, Inode, VfsState } from './vfs-inode.js';
import { setFileSize } from './vfs-inode.js';

/** An inode's metadata as a JSON-able record. */
export function inodeToRecord(inode: Inode): VfsInodeRecord {
  const r: VfsInodeRecord = {
    ino: inode.ino,
    kind: inode.kind,
    nlink: inode.nlink,
    openRefs: inode.openRefs,
    atimeNs: inode.atimeNs.toString(),
    mtimeNs: inode.mtimeNs.toString(),
    ctimeNs: inode.ctimeNs.toString(),
  };
  switch (inode.kind) {
    case 'file': r.size = inode.size; break;
    case 'symlink': r.target = inode.target; break;
    case 'dir': r.parent = inode.parent; r.nextCookie = inode.nextCookie; break;
  }
  return r;
}

/** Everything in `st` as a full image (file data is copied, so later writes do not alter it). */
export function fullImage(st: VfsState): VfsDelta {
  const inodes: VfsInodeRecord[] = [];
  const entries: VfsEntryRecord[] = [];
  const chunks: VfsChunk[] = [];
  for (const ino of [...st.inodes.keys()].sort((a, b) => a - b)) {
    const inode = st.inodes.get(ino) as Inode;
    inodes.push(inodeToRecord(inode));
    if (inode.kind === 'dir') {
      for (const [name, e] of inode.entries) entries.push({ dir: ino, name, ino: e.ino, cookie: e.cookie });
    } else if (inode.kind === 'file' && inode.size > 0) {
      chunks.push({ ino, offset: 0, data: inode.data.slice(0, inode.size) });
    }
  }
  return {
    version: VFS_DELTA_VERSION,
    full: true,
    nextIno: st.nextIno,
    dev: st.dev.toString(),
    roots: [...st.roots],
    removed: [],
    inodes,
    entries,
    chunks,
  };
}

function corrupt(why: string): WaterbearError {
  return new WaterbearError('WB_CHECKPOINT_CORRUPT', `VFS checkpoint does not apply: ${why}`);
}

/**
 * Apply a full image (to an empty state) or a delta (to the state of the previous checkpoint).
 * Throws WB_CHECKPOINT_CORRUPT when the delta does not fit the state it is applied to.
 */
export function applyImage(st: VfsState, d: VfsDelta): void {
  if (d.version !== VFS_DELTA_VERSION) {
    throw new WaterbearError('WB_CHECKPOINT_VERSION', `VFS delta has format version ${d.version}; this waterbear reads version ${VFS_DELTA_VERSION}`);
  }
  if (d.full && st.inodes.size > 0) throw corrupt('a full image can only be applied to an empty file system');
  for (const ino of d.removed) {
    const gone = st.inodes.get(ino);
    if (gone?.kind === 'file') st.usedBytes -= gone.size;
    st.inodes.delete(ino);
  }
  for (const r of d.inodes) applyInodeRecord(st, r);
  applyEntries(st, d.entries);
  for (const c of d.chunks) {
    const f = st.inodes.get(c.ino);
    if (f?.kind !== 'file') throw corrupt(`data for inode ${c.ino}, which is not a regular file`);
    if (c.offset + c.data.length > f.size) throw corrupt(`data past the end of inode ${c.ino}`);
    f.data.set(c.data, c.offset);
  }
  st.nextIno = d.nextIno;
  st.roots = [...d.roots];
  st.dev = BigInt(d.dev);
  for (const root of st.roots) {
    if (st.inodes.get(root)?.kind !== 'dir') throw corrupt(`root ${root} is not a directory`);
  }
}

function applyInodeRecord(st: VfsState, r: VfsInodeRecord): void {
  const times = { atimeNs: BigInt(r.atimeNs), mtimeNs: BigInt(r.mtimeNs), ctimeNs: BigInt(r.ctimeNs) };
  const existing = st.inodes.get(r.ino);
  if (existing !== undefined && existing.kind !== r.kind) throw corrupt(`inode ${r.ino} changes kind`);
  const common = { ino: r.ino, nlink: r.nlink, openRefs: r.openRefs, ...times };
  switch (r.kind) {
    case 'file': {
      const f = existing?.kind === 'file' ? existing : { ...common, kind: 'file' as const, data: new Uint8Array(0), size: 0 };
      Object.assign(f, common);
      st.usedBytes += (r.size as number) - f.size;
      setFileSize(f, r.size as number);
      st.inodes.set(r.ino, f);
      break;
    }
    case 'dir': {
      const d = existing?.kind === 'dir' ? existing : { ...common, kind: 'dir' as const, entries: new Map(), parent: 0, nextCookie: 0 };
      Object.assign(d, common, { parent: r.parent as number, nextCookie: r.nextCookie as number });
      st.inodes.set(r.ino, d);
      break;
    }
    case 'symlink': {
      const s = existing?.kind === 'symlink' ? existing : { ...common, kind: 'symlink' as const, target: '' };
      Object.assign(s, common, { target: r.target as string });
      st.inodes.set(r.ino, s);
      break;
    }
  }
}

/**
 * Entries are applied so every directory keeps ascending cookie order: removals first, then the
 * set entries by cookie. Entries set since the last checkpoint took fresh cookies, larger than any
 * entry that stayed, so appending them keeps the order the live directory has.
 */
function applyEntries(st: VfsState, records: VfsEntryRecord[]): void {
  const dirOf = (ino: number): DirInode => {
    const d = st.inodes.get(ino);
    if (d?.kind !== 'dir') throw corrupt(`entry in inode ${ino}, which is not a directory`);
    return d;
  };
  for (const r of records) dirOf(r.dir).entries.delete(r.name);
  const sets = records.filter((r) => r.ino !== null).sort((a, b) => a.dir - b.dir || a.cookie - b.cookie);
  for (const r of sets) {
    if (!st.inodes.has(r.ino as number)) throw corrupt(`entry ${JSON.stringify(r.name)} names missing inode ${r.ino}`);
    dirOf(r.dir).entries.set(r.name, { ino: r.ino as number, cookie: r.cookie });
  }
}
