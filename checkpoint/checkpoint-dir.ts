/**
 * A checkpoint directory: everything `waterbear restore DIR` needs, and nothing else needed.
 *
 *   DIR/guest.wasm     the guest module, as given to `waterbear run`
 *   DIR/launch.json    how it was launched (LaunchRecord): memory limit, image choices, tracker,
 *                      extension flags, the guest's sha256
 *   DIR/store/         the checkpoint store (LMDB, see store/checkpoint-store.ts)
 *
 * guest.wasm and launch.json are written once, before the first checkpoint, each through a
 * temporary file and a rename, so a crash never leaves a half-written one.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WaterbearError } from '../libos-host/errors.js';
import type { ImageChoices } from '../libos-host/runtime/launch.js';
import { CheckpointStore, type CheckpointStoreOptions } from './store/checkpoint-store.js';

export const LAUNCH_RECORD_VERSION = 1;
const GUEST_FILE = 'guest.wasm';
const LAUNCH_FILE = 'launch.json';
const STORE_DIR = 'store';

/** How the checkpointed LVM was launched (DIR/launch.json). */
export interface LaunchRecord {
  version: number;
  /** The guest file name as given (argv[0] is in the library OS state). */
  programName: string;
  guestSha256: string;
  memoryLimitBytes: number;
  imageChoices: Required<ImageChoices>;
  /** The tracker kind chosen at launch. */
  tracker: string;
  /** Extension flags of `waterbear run`, so restore composes the same stack. */
  extensionFlags: { trace: string | null; faults: string[]; extensions: string[] };
  /** Checkpoint interval in milliseconds (restore continues with it unless told otherwise). */
  checkpointIntervalMs: number;
  createdAt: string;
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function writeAtomically(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Path of the store inside a checkpoint directory. */
export function storePath(dir: string): string { return join(dir, STORE_DIR); }

/**
 * Prepare `dir` for a new run: write the guest and the launch record. Throws WB_CONFIG_INVALID
 * when `dir` already holds checkpoints (restore it, or choose another directory).
 */
export function initCheckpointDir(dir: string, guest: Uint8Array, record: Omit<LaunchRecord, 'version' | 'guestSha256' | 'createdAt'>): LaunchRecord {
  if (existsSync(join(dir, LAUNCH_FILE)) || existsSync(storePath(dir))) {
    throw new WaterbearError('WB_CONFIG_INVALID',
      `--checkpoint-dir ${dir} already holds the checkpoints of a run: resume it with \`waterbear restore ${dir}\`, or choose an empty directory`);
  }
  try {
    mkdirSync(dir, { recursive: true });
    const full: LaunchRecord = { version: LAUNCH_RECORD_VERSION, guestSha256: sha256Hex(guest), createdAt: new Date().toISOString(), ...record };
    writeAtomically(join(dir, GUEST_FILE), guest);
    writeAtomically(join(dir, LAUNCH_FILE), JSON.stringify(full, null, 2) + '\n');
    return full;
  } catch (err) {
    throw new WaterbearError('WB_STORE_IO', `cannot write the checkpoint directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * Read a checkpoint directory's guest and launch record. Throws WB_CONFIG_INVALID when `dir` is
 * not a checkpoint directory, WB_CHECKPOINT_VERSION for a record of another version,
 * WB_CHECKPOINT_CORRUPT when the guest does not match its recorded hash.
 */
export function readCheckpointDir(dir: string): { record: LaunchRecord; guest: Uint8Array } {
  let text: string;
  try {
    text = readFileSync(join(dir, LAUNCH_FILE), 'utf8');
  } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `${dir} is not a checkpoint directory (no ${LAUNCH_FILE}: ${(err as NodeJS.ErrnoException).code}); give the directory passed to \`waterbear run --checkpoint-dir\``);
  }
  let record: LaunchRecord;
  try {
    record = JSON.parse(text) as LaunchRecord;
  } catch (err) {
    throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `${join(dir, LAUNCH_FILE)} is not valid JSON`, { cause: err });
  }
  if (record.version !== LAUNCH_RECORD_VERSION) {
    throw new WaterbearError('WB_CHECKPOINT_VERSION', `${join(dir, LAUNCH_FILE)} has version ${String(record.version)}, this waterbear reads ${LAUNCH_RECORD_VERSION}`);
  }
  const guest = new Uint8Array(readFileSync(join(dir, GUEST_FILE)));
  if (sha256Hex(guest) !== record.guestSha256) {
    throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `${join(dir, GUEST_FILE)} does not match the sha256 recorded in ${LAUNCH_FILE}`);
  }
  return { record, guest };
}

/** Open the store of a checkpoint directory. */
export function openDirStore(dir: string, options: CheckpointStoreOptions = {}): CheckpointStore {
  return CheckpointStore.open(storePath(dir), options);
}
