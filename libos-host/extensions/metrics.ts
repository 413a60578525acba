import type { Extension, HostAbi } from '../abi/host-abi.js';
import type { AbiCallName } from './abi-calls.js';
import { assertState, checkSavedState } from './extension-state.js';
import { emptyHistogram, LATENCY_BUCKET_BOUNDS_US, recordLatency, type HistogramSnapshot } from './latency-histogram.js';
import { ObservingAbi, type CallEvent, type TimingClock } from './observing-abi.js';
import { rejectUnknownOptions } from './spec-options.js';

const METRICS_STATE_VERSION = 1;
const NS_PER_US = 1000;

/** Counters of one ABI call. */
export interface CallMetrics {
  count: number;
  /** Calls that returned an errno or threw. */
  errors: number;
  /** Errors by errno name / error code. */
  errorsByCode: Record<string, number>;
  /** Calls that returned WOULD_BLOCK. */
  wouldBlock: number;
  latencyUs: HistogramSnapshot;
}

/** What `MetricsExtension.snapshot()` returns: plain data, JSON-able, a copy. */
export interface MetricsSnapshot {
  calls: Partial<Record<AbiCallName, CallMetrics>>;
  bytesRead: number;
  bytesWritten: number;
}

/** The metrics extension takes no options; this validates that. Throws WB_CONFIG_INVALID. */
export function parseMetricsOptions(options: Record<string, string>): void {
  rejectUnknownOptions(options, [], '--extension metrics');
}

function isCallMetrics(m: unknown): m is CallMetrics {
  const c = m as CallMetrics;
  return typeof c === 'object' && c !== null && Number.isSafeInteger(c.count) && Number.isSafeInteger(c.errors)
    && Number.isSafeInteger(c.wouldBlock) && typeof c.errorsByCode === 'object' && c.errorsByCode !== null
    && typeof c.latencyUs === 'object' && c.latencyUs !== null && Array.isArray(c.latencyUs.counts)
    && c.latencyUs.counts.length === LATENCY_BUCKET_BOUNDS_US.length + 1 && typeof c.latencyUs.sumUs === 'number';
}

/**
 * Per-call counts, error counts, WOULD_BLOCK counts, bytes read/written and latency histograms
 * (timed with the lower ABI's monotonic clock). Forwards every call unchanged. The counters are
 * the extension's saved state, so they continue after a restore.
 */
export class MetricsExtension extends ObservingAbi implements Extension {
  readonly name = 'metrics';
  private calls: Partial<Record<AbiCallName, CallMetrics>> = {};
  private bytesRead = 0;
  private bytesWritten = 0;

  /** `clockNs`: the timing clock (see ObservingAbi); default the lower ABI's monotonic clock. */
  constructor(lower: HostAbi, clockNs?: TimingClock) {
    super(lower, clockNs);
  }

  protected override onCall(ev: CallEvent): void {
    let m = this.calls[ev.call];
    if (m === undefined) {
      m = { count: 0, errors: 0, errorsByCode: {}, wouldBlock: 0, latencyUs: emptyHistogram() };
      this.calls[ev.call] = m;
    }
    m.count++;
    if (ev.error !== undefined) {
      m.errors++;
      m.errorsByCode[ev.error] = (m.errorsByCode[ev.error] ?? 0) + 1;
    }
    if (ev.result === 'WOULD_BLOCK') m.wouldBlock++;
    if (ev.bytes !== undefined) {
      if (ev.call === 'read') this.bytesRead += ev.bytes;
      else if (ev.call === 'write') this.bytesWritten += ev.bytes;
    }
    recordLatency(m.latencyUs, Number(ev.endNs - ev.startNs) / NS_PER_US);
  }

  /** A deep copy of the counters. */
  snapshot(): MetricsSnapshot {
    return structuredClone({ calls: this.calls, bytesRead: this.bytesRead, bytesWritten: this.bytesWritten });
  }

  saveState(): unknown {
    return { v: METRICS_STATE_VERSION, ...this.snapshot() };
  }

  restoreState(state: unknown): void {
    const s = checkSavedState(state, 'metrics', METRICS_STATE_VERSION);
    assertState(Number.isSafeInteger(s.bytesRead) && Number.isSafeInteger(s.bytesWritten), 'metrics', 'byte counters are not integers');
    assertState(typeof s.calls === 'object' && s.calls !== null && Object.values(s.calls).every(isCallMetrics), 'metrics', 'call counters are malformed');
    this.calls = structuredClone(s.calls as Partial<Record<AbiCallName, CallMetrics>>);
    this.bytesRead = s.bytesRead as number;
    this.bytesWritten = s.bytesWritten as number;
  }
}
