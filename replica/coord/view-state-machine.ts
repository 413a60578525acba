/**
 * The state machine replicated by the coordinator's Raft group: a tiny key/value map with a version
 * per key and compare-and-set. The coordinator keeps the view `{view, primary, backups}` under the key
 * "view" with the invariant version === view number, so "install view v+1 only if the current view is
 * v" is exactly `cas("view", v, …)`.
 *
 * Applying is deterministic and never throws on command content: every replica applies the same
 * committed bytes, so a malformed command must turn into the same "malformed" result everywhere.
 */
import { WaterbearError } from '../../libos-host/errors.js';
import { decodeView, encodeView, validateViewProposal, type View } from './coordinator.js';
import type { Entry } from './raft/raft-types.js';

/** The key the coordinator keeps its view under; its version always equals the view number. */
export const VIEW_KEY = 'view';

/** Version of the command and snapshot encodings; readers refuse other versions. */
export const VIEW_SM_FORMAT_VERSION = 1;

export type ViewCommand =
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  /** Writes only if the key's current version is `expectedVersion` (0 = the key must be absent). */
  | { readonly op: 'cas'; readonly key: string; readonly expectedVersion: number; readonly value: string };

/** A stored value; versions start at 1 and grow by one on every write. */
export interface KvRecord {
  readonly value: string;
  readonly version: number;
}

export type ApplyResult =
  | { readonly ok: true; readonly requestId: string; readonly key: string; readonly version: number; readonly value: string }
  | {
      readonly ok: false;
      readonly reason: 'conflict';
      readonly requestId: string;
      readonly key: string;
      readonly currentVersion: number;
      readonly currentValue: string | null;
    }
  | { readonly ok: false; readonly reason: 'malformed'; readonly requestId: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a command for `RaftNode.propose`. `requestId` lets the proposer match the apply result.
 * @throws WaterbearError WB_PROTOCOL on an invalid command.
 */
export function encodeViewCommand(cmd: ViewCommand, requestId = ''): Uint8Array {
  validateCommand(cmd);
  return encoder.encode(JSON.stringify({ v: VIEW_SM_FORMAT_VERSION, id: requestId, ...cmd }));
}

function validateCommand(cmd: ViewCommand): void {
  if (cmd === null || typeof cmd !== 'object') throw new WaterbearError('WB_PROTOCOL', 'a view command must be an object');
  if (typeof cmd.key !== 'string' || cmd.key.length === 0) throw new WaterbearError('WB_PROTOCOL', `view command key must be a non-empty string: got ${JSON.stringify(cmd.key)}`);
  if (typeof cmd.value !== 'string') throw new WaterbearError('WB_PROTOCOL', 'view command value must be a string');
  if (cmd.op === 'cas') {
    if (!Number.isInteger(cmd.expectedVersion) || cmd.expectedVersion < 0) {
      throw new WaterbearError('WB_PROTOCOL', `cas expectedVersion must be a non-negative integer: got ${String(cmd.expectedVersion)}`);
    }
  } else if (cmd.op !== 'put') {
    throw new WaterbearError('WB_PROTOCOL', `view command op must be put or cas: got ${JSON.stringify((cmd as { op?: unknown }).op)}`);
  }
}

/** Decodes a command; undefined when malformed or of an unknown version (never throws). */
export function decodeViewCommand(data: Uint8Array): { requestId: string; cmd: ViewCommand } | undefined {
  try {
    const raw = JSON.parse(decoder.decode(data)) as Record<string, unknown>;
    if (raw === null || typeof raw !== 'object' || raw.v !== VIEW_SM_FORMAT_VERSION || typeof raw.id !== 'string') return undefined;
    const cmd =
      raw.op === 'cas'
        ? { op: 'cas' as const, key: raw.key as string, expectedVersion: raw.expectedVersion as number, value: raw.value as string }
        : { op: raw.op as 'put', key: raw.key as string, value: raw.value as string };
    validateCommand(cmd);
    return { requestId: raw.id, cmd };
  } catch {
    return undefined;
  }
}

export class ViewStateMachine {
  private readonly map = new Map<string, KvRecord>();
  private applied = 0;

  /** Index of the last log entry applied (or restored from a snapshot). */
  get appliedIndex(): number {
    return this.applied;
  }

  get(key: string): KvRecord | undefined {
    return this.map.get(key);
  }

  /** Number of keys. */
  get size(): number {
    return this.map.size;
  }

  /**
   * Applies one committed log entry. Membership entries and the leader's empty no-op change nothing and
   * return null. Entries must come in log order, each exactly once.
   * @throws WaterbearError WB_PROTOCOL when `entry.index` is not the next index (a driver bug).
   */
  applyEntry(entry: Entry): ApplyResult | null {
    if (entry.index !== this.applied + 1) {
      throw new WaterbearError('WB_PROTOCOL', `view state machine expected entry ${this.applied + 1}, got ${entry.index}`);
    }
    this.applied = entry.index;
    if (entry.type !== 'normal' || entry.data.length === 0) return null;
    return this.applyCommand(entry.data);
  }

  private applyCommand(data: Uint8Array): ApplyResult {
    const decoded = decodeViewCommand(data);
    if (decoded === undefined) return { ok: false, reason: 'malformed', requestId: '' };
    const { requestId, cmd } = decoded;
    const current = this.map.get(cmd.key);
    const currentVersion = current?.version ?? 0;
    if (cmd.op === 'cas' && cmd.expectedVersion !== currentVersion) {
      return { ok: false, reason: 'conflict', requestId, key: cmd.key, currentVersion, currentValue: current?.value ?? null };
    }
    const version = currentVersion + 1;
    this.map.set(cmd.key, { value: cmd.value, version });
    return { ok: true, requestId, key: cmd.key, version, value: cmd.value };
  }

  /** The whole state as bytes (versioned JSON), for `RaftNode.compact(appliedIndex, …)`. */
  snapshot(): Uint8Array {
    const keys = [...this.map.keys()].sort();
    return encoder.encode(
      JSON.stringify({ v: VIEW_SM_FORMAT_VERSION, applied: this.applied, kv: keys.map((k) => [k, this.map.get(k)?.version, this.map.get(k)?.value]) }),
    );
  }

  /**
   * Replaces the state by a snapshot taken by `snapshot()` at `index`.
   * @throws WaterbearError WB_CHECKPOINT_VERSION for an unknown version; WB_CHECKPOINT_CORRUPT when malformed.
   */
  restore(index: number, data: Uint8Array): void {
    this.map.clear();
    this.applied = index;
    if (index === 0 && data.length === 0) return;
    let raw: { v?: unknown; applied?: unknown; kv?: unknown };
    try {
      raw = JSON.parse(decoder.decode(data)) as typeof raw;
    } catch (cause) {
      throw new WaterbearError('WB_CHECKPOINT_CORRUPT', 'the view state machine snapshot is not valid JSON', { cause });
    }
    if (raw?.v !== VIEW_SM_FORMAT_VERSION) {
      throw new WaterbearError('WB_CHECKPOINT_VERSION', `view state machine snapshot version ${JSON.stringify(raw?.v)} is not supported (this build reads ${VIEW_SM_FORMAT_VERSION})`);
    }
    if (raw.applied !== index || !Array.isArray(raw.kv)) {
      throw new WaterbearError('WB_CHECKPOINT_CORRUPT', `the view state machine snapshot is malformed or is not for index ${index}`);
    }
    for (const item of raw.kv as unknown[]) {
      if (!Array.isArray(item) || typeof item[0] !== 'string' || !Number.isInteger(item[1]) || typeof item[2] !== 'string') {
        throw new WaterbearError('WB_CHECKPOINT_CORRUPT', 'the view state machine snapshot has a malformed record');
      }
      this.map.set(item[0], { version: item[1] as number, value: item[2] });
    }
  }
}

/**
 * The command that installs `next` iff the current view is `expectedView`: a cas on VIEW_KEY with
 * expected version `expectedView` (the version of the view key equals the view number).
 * @throws WaterbearError WB_CONFIG_INVALID when the proposal is malformed.
 */
export function encodeViewProposal(expectedView: number, next: View, requestId = ''): Uint8Array {
  validateViewProposal(expectedView, next);
  return encodeViewCommand({ op: 'cas', key: VIEW_KEY, expectedVersion: expectedView, value: encodeView(next) }, requestId);
}

/** The committed view held by `sm`, or null before the first one. */
export function currentView(sm: ViewStateMachine): View | null {
  const rec = sm.get(VIEW_KEY);
  return rec === undefined ? null : decodeView(rec.value);
}
