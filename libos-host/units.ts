import { WaterbearError } from './errors.js';

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
};

const DURATION_UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };

/**
 * Parse a byte size such as `256MiB`, `64m`, `1GiB` or `4096`. `what` names the option in the
 * error, e.g. "--memory-limit". Throws WB_CONFIG_INVALID.
 */
export function parseSize(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m?.[2].toLowerCase();
  if (m === null || unit === undefined || !(unit in SIZE_UNITS)) {
    throw new WaterbearError('WB_CONFIG_INVALID', `${what} must be a size such as 256MiB, 64MiB or 1GiB: got "${text}"`);
  }
  return Math.floor(Number(m[1]) * SIZE_UNITS[unit]);
}

/** Parse a duration such as `50ms`, `2s`, `1.5s`, `30m` into milliseconds. Throws WB_CONFIG_INVALID. */
export function parseDurationMs(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$/.exec(text);
  const unit = m?.[2].toLowerCase();
  if (m === null || unit === undefined || !(unit in DURATION_UNITS_MS)) {
    throw new WaterbearError('WB_CONFIG_INVALID', `${what} must be a duration with a unit such as 50ms, 2s or 30m: got "${text}"`);
  }
  return Number(m[1]) * DURATION_UNITS_MS[unit];
}

/** Check `value` lies in [min, max]; message in the style "--x must be between 1 ms and 10 s: got 0". */
export function checkRange(value: number, min: number, max: number, what: string, show: (v: number) => string = String): number {
  if (!(value >= min && value <= max)) {
    throw new WaterbearError('WB_CONFIG_INVALID', `${what} must be between ${show(min)} and ${show(max)}: got ${show(value)}`);
  }
  return value;
}
