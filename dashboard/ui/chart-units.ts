// Units, ranges and point selection of the dashboard's charts: plain functions, no DOM.

/**
 * An axis's unit: how its values read, and the least top of its range, so that a chart of
 * zeros gets distinct labels (0 to 1 KiB) instead of "0 B" at every tick. `incrs`, when given, are
 * the tick spacings the axis may use (uPlot's default ones are decimal: 250, 500, 1000).
 */
export interface Unit { fmt: (v: number) => string; minTop: number; incrs?: number[] }

/** Human units for axis labels and the numbers panel. */
export function fmtBytes(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  let x = v;
  while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i++; }
  // One decimal below 100 (1.5 KiB), none when it is 0 (1 KiB, not 1.0 KiB).
  return `${x >= 100 || i === 0 ? Math.round(x) : x.toFixed(1).replace(/\.0$/, '')} ${units[i]}`;
}
export function fmtMs(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '–';
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : v >= 10 ? `${Math.round(v)} ms` : `${v.toFixed(2)} ms`;
}
/** A chart's time axis: the local time of day, HH:MM:SS (t in seconds since the epoch). */
export function fmtClock(t: number): string {
  const d = new Date(t * 1000);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((x) => String(x).padStart(2, '0')).join(':');
}
export const fmtNum = (v: number): string => (Math.abs(v) >= 100 ? String(Math.round(v)) : String(Math.round(v * 100) / 100));

/**
 * Tick spacings of a byte axis: the powers of two from 1 B to 1 TiB, so that ticks land on round
 * binary values (256 B, 512 B, 768 B, 1 KiB; 1 MiB, 2 MiB, 3 MiB) and never on "1000 B".
 */
export const BINARY_INCRS: number[] = Array.from({ length: 41 }, (_, k) => 2 ** k);

export const BYTES: Unit = { fmt: fmtBytes, minTop: 1024, incrs: BINARY_INCRS };
export const MS: Unit = { fmt: fmtMs, minTop: 1 };
export const COUNT: Unit = { fmt: fmtNum, minTop: 1 };

/**
 * Indices of points with no neighbour to draw a line to (a value between two gaps, e.g. the
 * checkpoint size of the one second with checkpoints in an idle minute): the charts draw them as
 * dots, since a line needs two points and they would be invisible.
 */
export function isolatedPoints(ys: ArrayLike<number | null | undefined>): number[] | null {
  const out: number[] = [];
  for (let i = 0; i < ys.length; i++) {
    if (ys[i] != null && (i === 0 || ys[i - 1] == null) && (i === ys.length - 1 || ys[i + 1] == null)) out.push(i);
  }
  return out.length > 0 ? out : null;
}

/** An axis range from 0 (or below, for negative values) to at least the unit's least top. */
export function rangeFrom0(unit: Unit, min: number | null, max: number | null): [number, number] {
  return [Math.min(0, min ?? 0), Math.max(unit.minTop, max ?? 0)];
}
