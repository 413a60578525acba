/**
 * Choosing the dirty-page tracker. The choice comes BEFORE image preparation, because the
 * instrument tracker needs an image whose stores mark the dirty map (PrepareOptions
 * `dirtyTracking: 'instrument'`) while the uffd and shadow trackers need a plain image:
 *
 * ```ts
 * const selection = selectTracker(flags.tracker ?? 'auto');
 * const image = await prepareImage(guest, { ..., dirtyTracking: selection.dirtyTracking });
 * const tracker = selection.create(image);        // then tracker.arm(lvm.memory) …
 * ```
 *
 * - 'auto': uffd when the addon is built and the kernel passes the probe (once per process),
 *   else instrument. `reason` says why.
 * - 'instrument' | 'uffd' | 'shadow': that tracker; 'uffd' throws WB_TRACKER_UNAVAILABLE when it
 *   cannot run here (the caller asked for it explicitly, so no silent fallback).
 */
import { WaterbearError } from '../../libos-host/errors.js';
import { TRACKER_KINDS, type TrackerKind, type DirtyTracker } from './dirty-tracker.js';
import { InstrumentTracker, type DirtyMapLayout } from './instrument-tracker.js';
import { ShadowTracker } from './shadow-tracker.js';
import { UffdTracker, uffdAvailability, type UffdAvailability } from './uffd-tracker.js';

/** What `--tracker` accepts. */
export type TrackerChoice = 'auto' | TrackerKind;

export const TRACKER_CHOICES: readonly TrackerChoice[] = ['auto', ...TRACKER_KINDS];

/** The image a tracker is created for (a PreparedImage fits). */
export interface TrackedImage {
  module: WebAssembly.Module;
  layout: DirtyMapLayout;
}

export interface TrackerSelection {
  /** The tracker that will be used. */
  kind: TrackerKind;
  /** What was asked for. */
  requested: TrackerChoice;
  /** Why this tracker (for logs and `--verbose`). */
  reason: string;
  /** PrepareOptions.dirtyTracking the image must be prepared with. */
  dirtyTracking: 'instrument' | 'none';
  /** Create the tracker for the image prepared with `dirtyTracking`. */
  create(image: TrackedImage): DirtyTracker;
}

export interface SelectTrackerOptions {
  /** Replaces the uffd probe (tests). */
  uffdAvailability?: () => UffdAvailability;
}

/** Parse a `--tracker` value; WB_CONFIG_INVALID when it is not one of TRACKER_CHOICES. */
export function parseTrackerChoice(value: string): TrackerChoice {
  if ((TRACKER_CHOICES as readonly string[]).includes(value)) return value as TrackerChoice;
  throw new WaterbearError('WB_CONFIG_INVALID', `--tracker must be one of ${TRACKER_CHOICES.join(', ')}: got ${JSON.stringify(value)}`);
}

/** The image preparation a tracker needs. */
export function dirtyTrackingFor(kind: TrackerKind): 'instrument' | 'none' {
  return kind === 'instrument' ? 'instrument' : 'none';
}

function selection(kind: TrackerKind, requested: TrackerChoice, reason: string): TrackerSelection {
  return {
    kind, requested, reason, dirtyTracking: dirtyTrackingFor(kind),
    create(image: TrackedImage): DirtyTracker {
      switch (kind) {
        case 'instrument': return InstrumentTracker.forImage(image);
        case 'uffd': return new UffdTracker();
        case 'shadow': return new ShadowTracker();
      }
    },
  };
}

/**
 * Pick the dirty-page tracker (see the module comment). Throws WB_CONFIG_INVALID for an unknown
 * kind, WB_TRACKER_UNAVAILABLE for 'uffd' where it cannot run.
 */
export function selectTracker(kind: TrackerChoice, options: SelectTrackerOptions = {}): TrackerSelection {
  const probe = options.uffdAvailability ?? uffdAvailability;
  switch (kind) {
    case 'auto': {
      const a = probe();
      return a.available
        ? selection('uffd', kind, `auto: ${a.reason}`)
        : selection('instrument', kind, `auto: uffd unavailable (${a.reason}); using store instrumentation`);
    }
    case 'uffd': {
      const a = probe();
      if (!a.available) {
        throw new WaterbearError('WB_TRACKER_UNAVAILABLE', `--tracker uffd is not available here: ${a.reason}. Use --tracker instrument or auto`,
          { details: { reason: a.reason } });
      }
      return selection('uffd', kind, a.reason);
    }
    case 'instrument':
      return selection('instrument', kind, 'requested: store instrumentation');
    case 'shadow':
      return selection('shadow', kind, 'requested: shadow-copy comparison (for verification; slow on large memories)');
    default:
      return parseTrackerChoice(String(kind)) as never;
  }
}
