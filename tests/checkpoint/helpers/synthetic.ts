/** Synthetic checkpoints (no guest needed) for format and store tests. */
import type { CheckpointData, CheckpointPage } from '../../../checkpoint/checkpoint-data.js';
import { crc32c } from '../../../checkpoint/format/crc32c.js';
import type { CheckpointStore } from '../../../checkpoint/store/checkpoint-store.js';
import { Vfs } from '../../../libos-host/wasi/vfs.js';
import { decodeVfsDelta, encodeVfsDelta } from '../../../libos-host/wasi/vfs-delta.js';

export const SYNTH_MEMORY_BYTES = 4 * 65536;
const PAGES = SYNTH_MEMORY_BYTES / 4096;

/** The deterministic content of page `index` as written at `epoch`. */
export function pageContent(epoch: number, index: number): Uint8Array {
  const out = new Uint8Array(4096);
  let x = (epoch * 2654435761 + index * 40503 + 1) >>> 0;
  for (let i = 0; i < out.length; i++) {
    x = (x ^ (x << 13)) >>> 0; x = (x ^ (x >>> 17)) >>> 0; x = (x ^ (x << 5)) >>> 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Pages written at `epoch`: all at epoch 1, then a deterministic subset. */
export function pagesOf(epoch: number): number[] {
  if (epoch === 1) return Array.from({ length: PAGES }, (_, i) => i);
  return Array.from({ length: PAGES }, (_, i) => i).filter((i) => (i * 7 + epoch * 3) % 5 === 0);
}

/** The expected memory after epochs 1..epoch. */
export function expectedMemory(epoch: number): Uint8Array {
  const mem = new Uint8Array(SYNTH_MEMORY_BYTES);
  for (let e = 1; e <= epoch; e++) for (const i of pagesOf(e)) mem.set(pageContent(e, i), i * 4096);
  return mem;
}

/** A VFS that changes a little every epoch, to produce full images and deltas. */
export class SyntheticVfs {
  readonly vfs = new Vfs({ now: () => 1n, maxBytes: 1 << 20 });
  private readonly root = this.vfs.addPreopen(null);
  private file = -1;

  /** The VFS part of checkpoint `epoch` (full at epoch 1). */
  step(epoch: number): { full: boolean; bytes: Uint8Array } {
    if (this.file < 0) this.file = this.vfs.createFile(this.root, 'log');
    this.vfs.write(this.file, (epoch - 1) * 8, new TextEncoder().encode(`epoch${String(epoch).padStart(3, '0')}`));
    if (epoch === 1) {
      const bytes = this.vfs.save();
      this.vfs.markClean();
      return { full: true, bytes };
    }
    return { full: false, bytes: encodeVfsDelta(this.vfs.takeDelta()) };
  }

  /** The VFS part of a FULL checkpoint at `epoch` (a new chain, e.g. completing a staging area). */
  stepFull(epoch: number): { full: boolean; bytes: Uint8Array } {
    this.step(epoch);
    return { full: true, bytes: this.vfs.save() };
  }
}

/** Pages `indices` of `memory`, sealed (with their CRC-32C), as a sender stages them. */
export function imagePages(memory: Uint8Array, indices: readonly number[]): CheckpointPage[] {
  return indices.map((index) => {
    const data = memory.slice(index * 4096, (index + 1) * 4096);
    return { index, data, crc32c: crc32c(data) };
  });
}

/** Checkpoint `epoch` of the synthetic chain. */
export function syntheticCheckpoint(epoch: number, vfs: { full: boolean; bytes: Uint8Array }): CheckpointData {
  return {
    epoch, full: epoch === 1, imageSha256: 'ab'.repeat(32), memoryBytes: SYNTH_MEMORY_BYTES,
    pages: pagesOf(epoch).map((index) => ({ index, data: pageContent(epoch, index) })),
    globals: [
      { name: 'wb_global_0', type: 'i32', value: epoch * 16 },
      { name: 'wb_global_1', type: 'i64', value: -BigInt(epoch) * 10_000_000_000n },
      { name: 'wb_global_2', type: 'f64', value: epoch + 0.5 },
      { name: 'wb_global_3', type: 'f32', value: 1.5 },
    ],
    pending: { deadlineNs: epoch % 2 === 0 ? BigInt(epoch) * 1_000_000n : null, blockedAtNs: BigInt(epoch) * 999n, forced: epoch % 3 === 0 },
    libos: {
      args: ['guest.wasm', 'a b'], env: ['K=V'],
      fds: [
        { fd: 0, kind: 'stdio', which: 'stdin', fdflags: 0, rightsBase: 0xffn, rightsInheriting: 0n },
        { fd: 3, kind: 'listener', uri: 'tcp.srv:127.0.0.1:0', name: 'main', address: '127.0.0.1:41234', fdflags: 0, rightsBase: 1n << 40n, rightsInheriting: 0n },
        { fd: 4, kind: 'dir', ino: 1, preopen: '/data', fdflags: 0, rightsBase: 3n, rightsInheriting: 7n },
        { fd: 5, kind: 'file', ino: 2, offset: 12345678901n, fdflags: 1, rightsBase: 3n, rightsInheriting: 0n },
        { fd: 6, kind: 'socket', peer: '127.0.0.1:5555', readShut: false, writeShut: true, held: new Uint8Array([1, 2, 3]), fdflags: 4, rightsBase: 9n, rightsInheriting: 0n },
      ],
      vfs, vfsMaxBytes: 1 << 20, clock: { monotonicNs: String(epoch * 1_000_000_123) },
    },
    extensions: epoch % 2 === 0 ? { v: 1, extensions: [{ name: 'metrics', state: { v: 1, n: epoch } }] } : null,
    stats: { pauseUs: 12, capturedAtMs: 1_700_000_000_000 + epoch, trackerPages: pagesOf(epoch).length, tracker: epoch === 1 ? 'full' : 'shadow' },
  };
}

/** Commit epochs from..to of the synthetic chain into `store`. */
export function commitChain(store: CheckpointStore, from: number, to: number, vfs: SyntheticVfs): void {
  for (let e = from; e <= to; e++) store.commit(syntheticCheckpoint(e, vfs.step(e)));
}

/** The VFS a RestoreImage describes (base image, then deltas), saved as one full image for comparison. */
export function vfsOf(images: readonly Uint8Array[]): Uint8Array {
  const v = new Vfs({ now: () => 1n, maxBytes: 1 << 20 });
  v.load(images[0]);
  for (const d of images.slice(1)) v.applyDelta(decodeVfsDelta(d));
  return v.save();
}

/** Synthetic checkpoints 1..n. */
export function syntheticChain(n: number): CheckpointData[] {
  const vfs = new SyntheticVfs();
  return Array.from({ length: n }, (_, i) => syntheticCheckpoint(i + 1, vfs.step(i + 1)));
}
