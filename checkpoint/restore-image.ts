/**
 * The full state of an LVM at one checkpoint, rebuilt from a chain (a full checkpoint and the
 * incrementals after it) by the store or by `CheckpointChain`: what a restore loads.
 */
import type { SavedStack } from '../libos-host/extensions/stack-state.js';
import type { LvmRestoreState, MemoryContents } from '../libos-host/runtime/lvm.js';
import type { LibOsRestoreState } from '../libos-host/wasi/lib-os.js';
import { WaterbearError } from '../libos-host/errors.js';
import { CHECKPOINT_PAGE_BYTES, sealPages, type CheckpointData } from './checkpoint-data.js';

/**
 * `Memory` is a flat buffer (`loadImage`, `CheckpointChain`) or contents that write themselves
 * into the restored instance (`CheckpointStore.loadImageForRestore`: no second copy of a large
 * image).
 */
export interface RestoreImage<Memory extends Uint8Array | MemoryContents = Uint8Array> {
  epoch: number;
  imageSha256: string;
  lvm: Omit<LvmRestoreState, 'memory'> & { memory: Memory };
  libos: LibOsRestoreState;
  extensions: SavedStack | null;
}

/**
 * Rebuilds the state at the latest checkpoint of a chain in memory (no storage): the reference
 * the store is tested against, and a way to restore from checkpoints received in one process.
 */
export class CheckpointChain {
  private readonly pages = new Map<number, Uint8Array>();
  private vfs: Uint8Array[] = [];
  private last: CheckpointData | null = null;

  /** Epoch of the latest applied checkpoint (0 when empty). */
  get epoch(): number { return this.last?.epoch ?? 0; }

  /**
   * Apply the next checkpoint: a full one (starting over) or epoch `this.epoch + 1`. Throws
   * WB_CHECKPOINT_CORRUPT for an incremental checkpoint that does not follow (nothing applied).
   */
  apply(cp: CheckpointData): void {
    if (!cp.full && cp.epoch !== this.epoch + 1) {
      throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `incremental checkpoint ${cp.epoch} does not follow epoch ${this.epoch}; it was not applied: start from a full checkpoint`);
    }
    if (cp.full !== cp.libos.vfs.full) throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `checkpoint ${cp.epoch}: a full checkpoint needs a full VFS image, an incremental one a delta`);
    sealPages(cp);
    if (cp.full) {
      this.pages.clear();
      this.vfs = [];
    }
    for (const p of cp.pages) this.pages.set(p.index, p.data);
    this.vfs.push(cp.libos.vfs.bytes);
    this.last = cp;
  }

  /** The state at the latest checkpoint. Throws when empty. */
  image(): RestoreImage {
    const cp = this.last;
    if (cp === null) throw new Error('CheckpointChain.image: no checkpoint applied');
    const memory = new Uint8Array(cp.memoryBytes);
    for (const [index, data] of this.pages) {
      if ((index + 1) * CHECKPOINT_PAGE_BYTES <= memory.length) memory.set(data, index * CHECKPOINT_PAGE_BYTES);
    }
    return {
      epoch: cp.epoch, imageSha256: cp.imageSha256,
      lvm: { memory, globals: cp.globals, pending: cp.pending },
      libos: { ...cp.libos, vfs: [...this.vfs] },
      extensions: cp.extensions,
    };
  }
}
