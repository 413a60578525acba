import { WaterbearError } from '../../libos-host/errors.js';
import type { Prng } from '../random/prng.js';

/** Faults the harness can inject. */
export const FAULT_KINDS = ['kill', 'pause', 'partition', 'delay', 'drop', 'duplicate', 'reorder', 'corrupt'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults named in the issue that this harness does not inject (yet): asked for, they are refused with a reason. */
export const UNSUPPORTED_FAULTS: Readonly<Record<string, string>> = {
  clock: 'clock jumps and drift need the fault extension inside the replica\'s LVM; `waterbear replica` does not expose it yet',
  'disk-full': 'a full disk needs a small tmpfs under a backup\'s data folder (root, mount) or injected store errors; not implemented yet',
  fsync: 'fsync errors need injected store errors in the checkpoint store; not implemented yet',
  'slow-disk': 'a slow disk needs injected store latency in the checkpoint store; not implemented yet',
};

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
};

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
  },
  recoveryMs: 1000,
};

/** Parse `--faults kill,pause:backup,partition`; `all` means every supported fault. */
export function parseFaults(text: string): FaultSpec[] {
  const out: FaultSpec[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const [kind, target, extra] = part.split(':');
    if (kind === 'all') { for (const k of FAULT_KINDS) out.push({ kind: k, target: null }); continue; }
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

/** The parameters a fault draws. */
function params(g: Prng, kind: FaultKind): Record<string, number> {
  switch (kind) {
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
export function generateSchedule(g: Prng, seed: number, durationMs: number, faults: readonly FaultSpec[], timing: ScheduleTiming = DEFAULT_TIMING): Schedule {
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
        params: params(g, spec.kind),
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
