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
import { MAX_MEMORY_LIMIT_BYTES, MIN_MEMORY_LIMIT_BYTES } from '../libos-host/image/memory-limit.js';
import type { ImageChoices } from '../libos-host/runtime/launch.js';
import { MAX_CHECKPOINT_INTERVAL_MS, MIN_CHECKPOINT_INTERVAL_MS } from './checkpoint-runner.js';
import { CheckpointStore, type CheckpointStoreOptions } from './store/checkpoint-store.js';
import { TRACKER_KINDS, type TrackerKind } from './trackers/dirty-tracker.js';

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
  tracker: TrackerKind;
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
 * WB_CHECKPOINT_CORRUPT when the record is not valid (naming the field) or the guest is missing,
 * unreadable or does not match its recorded hash.
 */
export function readCheckpointDir(dir: string): { record: LaunchRecord; guest: Uint8Array } {
  let text: string;
  try {
    text = readFileSync(join(dir, LAUNCH_FILE), 'utf8');
  } catch (err) {
    throw new WaterbearError('WB_CONFIG_INVALID', `${dir} is not a checkpoint directory (no ${LAUNCH_FILE}: ${(err as NodeJS.ErrnoException).code}); give the directory passed to \`waterbear run --checkpoint-dir\``);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `${join(dir, LAUNCH_FILE)} is not valid JSON`, { cause: err });
  }
  const record = parseLaunchRecord(parsed, join(dir, LAUNCH_FILE));
  const guestPath = join(dir, GUEST_FILE);
  let guest: Uint8Array;
  try {
    guest = new Uint8Array(readFileSync(guestPath));
  } catch (err) {
    throw new WaterbearError('WB_CHECKPOINT_CORRUPT',
      `cannot read the checkpointed guest ${guestPath} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): the directory is incomplete; ` +
      `put the module the run was started with (${record.programName}, sha256 ${record.guestSha256}) back there`, { cause: err });
  }
  if (sha256Hex(guest) !== record.guestSha256) {
    throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `${guestPath} does not match the sha256 recorded in ${LAUNCH_FILE}`);
  }
  return { record, guest };
}

/**
 * Check every field of a parsed launch.json (`file` names it in messages). Throws
 * WB_CHECKPOINT_VERSION for another version, WB_CHECKPOINT_CORRUPT naming the first field that is
 * missing or of the wrong type or range.
 */
export function parseLaunchRecord(value: unknown, file: string): LaunchRecord {
  const bad = (field: string, want: string, got: unknown): never => {
    throw new WaterbearError('WB_CHECKPOINT_CORRUPT',
      `${file}: ${field} must be ${want}: got ${got === undefined ? 'nothing' : JSON.stringify(got)}. The launch record is damaged: ` +
      'restore it from a copy of the checkpoint directory (waterbear writes it once, when the run starts)', { details: { field } });
  };
  const object = (v: unknown, field: string): Record<string, unknown> =>
    (typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : bad(field, 'an object', v));
  const string = (v: unknown, field: string, pattern = /./): string => (typeof v === 'string' && pattern.test(v) ? v : bad(field, 'a non-empty string', v));
  const number = (v: unknown, field: string, min: number, max: number, unit: string): number =>
    (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? v : bad(field, `a number of ${unit} from ${min} to ${max}`, v));
  const strings = (v: unknown, field: string): string[] =>
    (Array.isArray(v) && v.every((x) => typeof x === 'string') ? v as string[] : bad(field, 'a list of strings', v));
  const oneOf = <T extends string>(v: unknown, field: string, allowed: readonly T[]): T =>
    (allowed.includes(v as T) ? v as T : bad(field, `one of ${allowed.join(', ')}`, v));

  const r = object(value, 'the file');
  if (typeof r.version !== 'number') bad('version', 'a number', r.version);
  if (r.version !== LAUNCH_RECORD_VERSION) {
    throw new WaterbearError('WB_CHECKPOINT_VERSION', `${file} has version ${String(r.version)}, this waterbear reads ${LAUNCH_RECORD_VERSION}`);
  }
  const choices = object(r.imageChoices, 'imageChoices');
  const flags = object(r.extensionFlags, 'extensionFlags');
  return {
    version: LAUNCH_RECORD_VERSION,
    programName: string(r.programName, 'programName'),
    guestSha256: string(r.guestSha256, 'guestSha256', /^[0-9a-f]{64}$/),
    memoryLimitBytes: number(r.memoryLimitBytes, 'memoryLimitBytes', MIN_MEMORY_LIMIT_BYTES, MAX_MEMORY_LIMIT_BYTES, 'bytes'),
    imageChoices: {
      dirtyTracking: oneOf(choices.dirtyTracking, 'imageChoices.dirtyTracking', ['instrument', 'none'] as const),
      yieldPoints: typeof choices.yieldPoints === 'boolean' ? choices.yieldPoints : bad('imageChoices.yieldPoints', 'true or false', choices.yieldPoints),
    },
    tracker: oneOf(r.tracker, 'tracker', TRACKER_KINDS),
    extensionFlags: {
      trace: flags.trace === null ? null : string(flags.trace, 'extensionFlags.trace'),
      faults: strings(flags.faults, 'extensionFlags.faults'),
      extensions: strings(flags.extensions, 'extensionFlags.extensions'),
    },
    checkpointIntervalMs: number(r.checkpointIntervalMs, 'checkpointIntervalMs', MIN_CHECKPOINT_INTERVAL_MS, MAX_CHECKPOINT_INTERVAL_MS, 'milliseconds'),
    createdAt: string(r.createdAt, 'createdAt'),
  };
}

/**
 * Open the store of a checkpoint directory (see CheckpointStore.open). Read-only (`checkpoint
 * inspect`, `restore --no-checkpoint`), a directory without a store is a WB_CONFIG_INVALID naming
 * it and what a checkpoint directory holds, and nothing is created there.
 */
export function openDirStore(dir: string, options: CheckpointStoreOptions = {}): CheckpointStore {
  if (options.readOnly === true && !CheckpointStore.exists(storePath(dir))) {
    throw new WaterbearError('WB_CONFIG_INVALID',
      `${dir} is not a complete checkpoint directory: it has no checkpoint store (${storePath(dir)} is missing or empty). ` +
      `A checkpoint directory holds ${GUEST_FILE}, ${LAUNCH_FILE} and ${STORE_DIR}/, as \`waterbear run --checkpoint-dir\` writes them: give that directory`);
  }
  return CheckpointStore.open(storePath(dir), options);
}
