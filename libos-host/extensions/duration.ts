import { WaterbearError } from '../errors.js';

const NS_PER_UNIT: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9 };

/**
 * Parse a duration with a unit (`250ns`, `100us`, `5ms`, `1.5s`, `2m`) into nanoseconds.
 * With `signed`, a leading `+` or `-` is accepted (`jump=-5s`). `what` prefixes the error.
 * Throws WB_CONFIG_INVALID.
 */
export function parseDurationNs(text: string, what: string, opts: { signed?: boolean } = {}): number {
  const m = /^([+-]?)(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m)$/.exec(text);
  if (m === null || (m[1] !== '' && opts.signed !== true)) {
    const example = opts.signed === true ? '+5s, -500ms or 100us' : '5ms, 1.5s or 100us';
    throw new WaterbearError('WB_CONFIG_INVALID', `${what} must be a duration with a unit (ns, us, ms, s, m) such as ${example}: got "${text}"`);
  }
  const ns = Math.round(Number(m[2]) * NS_PER_UNIT[m[3]]);
  return m[1] === '-' ? -ns : ns;
}
