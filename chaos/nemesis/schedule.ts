import { WaterbearError } from '../../libos-host/errors.js';
import type { Prng } from '../random/prng.js';

/** Faults the harness can inject. */
export const FAULT_KINDS = ['kill', 'pause', 'partition', 'delay', 'drop', 'duplicate', 'reorder', 'corrupt', 'disk-full', 'fsync', 'slow-disk', 'clock'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * What `--faults all` means: the process and network faults. It stays this list so that a seed's
 * `--faults all` schedule is the one it always was; `storage` and `clock` add the newer faults.
 */
export const ALL_FAULTS: readonly FaultKind[] = ['kill', 'pause', 'partition', 'delay', 'drop', 'duplicate', 'reorder', 'corrupt'];
/** `--faults storage`: the faults of a backup's checkpoint store. */
export const STORAGE_FAULTS: readonly FaultKind[] = ['disk-full', 'fsync', 'slow-disk'];
/** Faults that need a fault proxy on the links (not available with --netns, which has no proxies). */
export const PROXY_FAULTS: readonly FaultKind[] = ['delay', 'drop', 'duplicate', 'reorder', 'corrupt'];

/** Faults named in the issue that this harness does not inject (yet): asked for, they are refused with a reason. */
export const UNSUPPORTED_FAULTS: Readonly<Record<string, string>> = {};

/** Which members or links each fault may aim at; resolved against the cluster when it starts. */
export const FAULT_TARGETS: Readonly<Record<FaultKind, readonly string[]>> = {
  kill: ['primary', 'primary', 'backup', 'witness'],
  pause: ['primary', 'backup', 'witness'],
  partition: ['primary-backup', 'isolate-primary', 'isolate-backup', 'primary-to-backup', 'backup-to-primary'],
  delay: ['all-links', 'primary-links'],
  drop: ['all-links', 'primary-links'],
  duplicate: ['all-links', 'primary-links'],
  reorder: ['all-links', 'primary-links'],
  corrupt: ['all-links', 'primary-links', 'bulk'],
  'disk-full': ['backup'],
  fsync: ['backup'],
  'slow-disk': ['backup'],
  clock: ['primary', 'backup', 'witness'],
};

/**
 * Clock faults (`clock:<member>`): what happens to that one process's monotonic clock. The lease
 * proof (replica/coord/lease.ts) assumes monotonic clocks whose rate is within 1 ± MAX_CLOCK_DRIFT_RATE
 * (1%) of real time. A forward jump is within it (it is what a paused process sees); so is a drift
 * of at most 1%. A backward jump, or a clock running 1.5–4× fast or at a quarter to two thirds of
 * real speed, EXCEEDS it: leases then prove nothing, and only views and output commit protect the data.
 */
export const CLOCK_MODES = ['jump-forward', 'drift', 'jump-back', 'fast', 'slow'] as const;
export type ClockMode = (typeof CLOCK_MODES)[number];
export const CLOCK_MODES_WITHIN_BOUND: readonly ClockMode[] = ['jump-forward', 'drift'];
/** Which clock faults the nemesis draws: within the lease assumptions, beyond them, or both. */
export type ClockBound = 'respect' | 'exceed' | 'both';
export const CLOCK_BOUNDS: readonly ClockBound[] = ['respect', 'exceed', 'both'];

/** The clock mode of a clock step's parameters. */
export function clockMode(params: Record<string, number>): ClockMode { return CLOCK_MODES[params.mode] ?? 'drift'; }
/** True when a clock step stays within the drift bound the leases assume. */
export function clockWithinBound(params: Record<string, number>): boolean { return CLOCK_MODES_WITHIN_BOUND.includes(clockMode(params)); }

/** `corrupt:bulk` flips bits only in chunks at least this large: checkpoint data, not coordination messages. */
export const BULK_CHUNK_BYTES = 4096;

/** A fault the user asked for: `kill` or `kill:primary`. */
export interface FaultSpec { kind: FaultKind; target: string | null }

/** One step of the schedule: after the cluster is healthy and `gapMs` passed, inject; heal after `holdMs`. */
export interface ScheduleStep {
  step: number;
  kind: FaultKind;
  target: string;
  gapMs: number;
  holdMs: number;
  /** Fault parameters (delay in ms, probabilities per chunk). */
  params: Record<string, number>;
}

export interface Schedule {
  seed: number;
  durationMs: number;
  faults: string[];
  steps: ScheduleStep[];
}

/** Ranges (ms) for gaps and holds; tests narrow them. */
export interface ScheduleTiming {
  gapMs: [number, number];
  holdMs: Partial<Record<FaultKind, [number, number]>>;
  /** Time a fault is assumed to take to recover from, when planning how many fit (ms). */
  recoveryMs: number;
}

export const DEFAULT_TIMING: ScheduleTiming = {
  gapMs: [1000, 3000],
  holdMs: {
    kill: [500, 3000], pause: [1000, 4000], partition: [1000, 5000], delay: [2000, 6000],
    drop: [2000, 5000], duplicate: [2000, 5000], reorder: [2000, 5000], corrupt: [2000, 6000],
    'disk-full': [1000, 4000], fsync: [1000, 4000], 'slow-disk': [2000, 5000], clock: [2000, 6000],
  },
  recoveryMs: 1000,
};

/** Parse `--faults kill,pause:backup,partition`; `all` means ALL_FAULTS, `storage` STORAGE_FAULTS. */
export function parseFaults(text: string): FaultSpec[] {
  const out: FaultSpec[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const [kind, target, extra] = part.split(':');
    if (kind === 'all' || kind === 'storage') {
      if (target !== undefined) throw new WaterbearError('WB_CONFIG_INVALID', `--faults: "${part}": the group ${kind} takes no target`);
      for (const k of kind === 'all' ? ALL_FAULTS : STORAGE_FAULTS) out.push({ kind: k, target: null });
      continue;
    }
    if (kind in UNSUPPORTED_FAULTS) throw new WaterbearError('WB_CONFIG_INVALID', `--faults: "${kind}" is not implemented: ${UNSUPPORTED_FAULTS[kind]}`);
    if (!(FAULT_KINDS as readonly string[]).includes(kind)) {
      throw new WaterbearError('WB_CONFIG_INVALID', `--faults: unknown fault "${kind}" (faults: ${FAULT_KINDS.join(', ')}; "kind:target" aims one, e.g. kill:primary)`);
    }
    const k = kind as FaultKind;
    if (extra !== undefined || (target !== undefined && !FAULT_TARGETS[k].includes(target))) {
      throw new WaterbearError('WB_CONFIG_INVALID', `--faults: "${part}": the target of ${k} must be one of ${[...new Set(FAULT_TARGETS[k])].join(', ')}`);
    }
    out.push({ kind: k, target: target ?? null });
  }
  if (out.length === 0) throw new WaterbearError('WB_CONFIG_INVALID', '--faults must name at least one fault');
  return out;
}

/** Simulated store latency per commit (ms) of `slow-disk`. */
export const SLOW_DISK_DELAY_MS: [number, number] = [20, 400];

/** The parameters a fault draws. */
function params(g: Prng, kind: FaultKind, clockBound: ClockBound): Record<string, number> {
  switch (kind) {
    case 'slow-disk': return { delayMs: g.int(SLOW_DISK_DELAY_MS[0], SLOW_DISK_DELAY_MS[1]) };
    case 'clock': {
      const modes = clockBound === 'respect' ? CLOCK_MODES_WITHIN_BOUND : clockBound === 'exceed' ? CLOCK_MODES.filter((m) => !CLOCK_MODES_WITHIN_BOUND.includes(m)) : CLOCK_MODES;
      const mode = g.pick(modes);
      const round = (x: number): number => Math.round(x * 10000) / 10000;
      switch (mode) {
        case 'jump-forward': return { mode: CLOCK_MODES.indexOf(mode), jumpMs: g.int(500, 10_000), rate: 1 };
        case 'jump-back': return { mode: CLOCK_MODES.indexOf(mode), jumpMs: -g.int(500, 10_000), rate: 1 };
        case 'drift': return { mode: CLOCK_MODES.indexOf(mode), jumpMs: 0, rate: round(1 + (g.chance(0.5) ? 1 : -1) * (0.002 + g.float() * 0.008)) };
        case 'fast': return { mode: CLOCK_MODES.indexOf(mode), jumpMs: 0, rate: round(1.5 + g.float() * 2.5) };
        case 'slow': return { mode: CLOCK_MODES.indexOf(mode), jumpMs: 0, rate: round(0.25 + g.float() * 0.42) };
      }
    }
    case 'delay': return { delayMs: g.int(5, 150), jitterMs: g.int(0, 50) };
    case 'reorder': return { jitterMs: g.int(20, 200) };
    case 'corrupt': return { probability: Math.round((0.005 + g.float() * 0.045) * 10000) / 10000 };
    case 'drop': return { probability: Math.round((0.002 + g.float() * 0.018) * 10000) / 10000 };
    default: return {};
  }
}

/**
 * The seeded schedule: rounds over the requested faults in a shuffled order, each with a target,
 * a gap before it and a hold, until the planned time fills the duration. Same seed and inputs,
 * same schedule. Every fault heals at the end of its hold; none is left for the final reads.
 */
export function generateSchedule(g: Prng, seed: number, durationMs: number, faults: readonly FaultSpec[], timing: ScheduleTiming = DEFAULT_TIMING, clockBound: ClockBound = 'both'): Schedule {
  const steps: ScheduleStep[] = [];
  let planned = 0;
  for (let round = 0; steps.length < 10_000; round++) {
    let full = false;
    for (const spec of g.shuffle(faults)) {
      const hold = timing.holdMs[spec.kind] ?? DEFAULT_TIMING.holdMs[spec.kind]!;
      const step: ScheduleStep = {
        step: steps.length,
        kind: spec.kind,
        target: spec.target ?? g.pick(FAULT_TARGETS[spec.kind]),
        gapMs: g.int(timing.gapMs[0], timing.gapMs[1]),
        holdMs: g.int(hold[0], hold[1]),
        params: params(g, spec.kind, clockBound),
      };
      const cost = step.gapMs + step.holdMs + timing.recoveryMs;
      if (planned + cost > durationMs && steps.length > 0) { full = true; break; }
      steps.push(step);
      planned += cost;
    }
    if (full) break;
  }
  return { seed, durationMs, faults: faults.map((f) => (f.target === null ? f.kind : `${f.kind}:${f.target}`)), steps };
}
