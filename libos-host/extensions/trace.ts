import type { Extension, HostAbi } from '../abi/host-abi.js';
import { WaterbearError } from '../errors.js';
import { ABI_CALLS, isAbiCall, type AbiCallName } from './abi-calls.js';
import { assertState, checkSavedState } from './extension-state.js';
import { ObservingAbi, type CallEvent, type TimingClock } from './observing-abi.js';
import { rejectUnknownOptions } from './spec-options.js';
import type { TraceSink } from './trace-sink.js';

/** Payload bytes shown (as hex) per read/write line when `data=1`. */
export const DEFAULT_TRACE_DATA_BYTES = 64;
const NS_PER_US = 1000;
const TRACE_STATE_VERSION = 1;

/** Options of the trace extension (`trace:file=/tmp/t.jsonl,data=1,calls=read+write`). */
export interface TraceOptions {
  /** File to write (opened by the platform sink); absent: use the sink the launcher provides. */
  file?: string;
  /** Include the first `dataBytes` payload bytes of reads and writes as hex. */
  data: boolean;
  dataBytes: number;
  /** Trace only these calls; null traces every call. */
  calls: ReadonlySet<AbiCallName> | null;
}

const TRACE_OPTION_KEYS = ['file', 'data', 'calls'] as const;

/** Validate trace options from a spec. Throws WB_CONFIG_INVALID. */
export function parseTraceOptions(options: Record<string, string>): TraceOptions {
  const what = '--extension trace';
  rejectUnknownOptions(options, TRACE_OPTION_KEYS, what);
  const out: TraceOptions = { data: false, dataBytes: DEFAULT_TRACE_DATA_BYTES, calls: null };
  if (options.file !== undefined) {
    if (options.file === '') throw new WaterbearError('WB_CONFIG_INVALID', `${what}: file= needs a path, e.g. trace:file=/tmp/trace.jsonl`);
    out.file = options.file;
  }
  if (options.data !== undefined) {
    if (options.data !== '0' && options.data !== '1') throw new WaterbearError('WB_CONFIG_INVALID', `${what}: data must be 0 or 1: got "${options.data}"`);
    out.data = options.data === '1';
  }
  if (options.calls !== undefined) {
    const names = options.calls.split('+');
    for (const n of names) {
      if (!isAbiCall(n)) throw new WaterbearError('WB_CONFIG_INVALID', `${what}: unknown call '${n}' in calls=; calls are: ${ABI_CALLS.join(', ')} (join several with +)`);
    }
    out.calls = new Set(names as AbiCallName[]);
  }
  return out;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

/**
 * Format one call as a trace line:
 * `{"t":"<monotonic ns>","call":"read","handle":5,"args":{"len":65536},"result":12,"us":3.1}`
 * plus `"data":"<hex>"` when payload is requested. `t` is the lower ABI's monotonic time at the
 * start of the call, as a decimal string of nanoseconds; `us` is the call's duration in µs.
 */
export function formatTraceLine(ev: CallEvent, dataBytes: number | null): string {
  const rec: Record<string, unknown> = { t: ev.startNs.toString(), call: ev.call };
  if (ev.handle !== undefined) rec.handle = ev.handle;
  if (ev.args !== undefined) rec.args = ev.args;
  rec.result = ev.result;
  rec.us = Math.round(Number(ev.endNs - ev.startNs) / (NS_PER_US / 10)) / 10;
  if (dataBytes !== null && ev.payload !== undefined) rec.data = hex(ev.payload.subarray(0, dataBytes));
  return JSON.stringify(rec);
}

/**
 * strace for the host ABI: one JSON line per call to `sink`. Forwards every call unchanged.
 */
export class TraceExtension extends ObservingAbi implements Extension {
  readonly name = 'trace';
  private lines = 0;

  private readonly ownsSink: boolean;

  /** `ownsSink`: dispose() closes the sink. `clockNs`: the timing clock (see ObservingAbi). */
  constructor(lower: HostAbi, private readonly sink: TraceSink, private readonly options: TraceOptions = parseTraceOptions({}),
    extra: { ownsSink?: boolean; clockNs?: TimingClock } = {}) {
    super(lower, extra.clockNs);
    this.ownsSink = extra.ownsSink ?? false;
  }

  protected override onCall(ev: CallEvent): void {
    if (this.options.calls !== null && !this.options.calls.has(ev.call)) return;
    this.sink.write(formatTraceLine(ev, this.options.data ? this.options.dataBytes : null));
    this.lines++;
  }

  /** Lines written so far (continues across saveState/restoreState). */
  get lineCount(): number { return this.lines; }

  /** Flush and close the sink when this extension opened it. */
  async dispose(): Promise<void> {
    if (this.ownsSink) await this.sink.close();
  }

  saveState(): unknown {
    return { v: TRACE_STATE_VERSION, lines: this.lines };
  }

  restoreState(state: unknown): void {
    const s = checkSavedState(state, 'trace', TRACE_STATE_VERSION);
    assertState(Number.isSafeInteger(s.lines), 'trace', 'lines is not an integer');
    this.lines = s.lines as number;
  }
}
