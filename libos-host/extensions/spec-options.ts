import { WaterbearError } from '../errors.js';

const KEY_PATTERN = /^[a-z][a-z0-9-]*$/;

/**
 * Split `key=value,key=value` into a map. Values run to the next comma and may contain `=`
 * (`file=/tmp/a=b` is fine; a value cannot contain a comma). `what` prefixes errors
 * (e.g. "--fault"). An empty text gives an empty map. Throws WB_CONFIG_INVALID.
 */
export function splitOptions(text: string, what: string): Record<string, string> {
  const options: Record<string, string> = {};
  if (text === '') return options;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (eq < 0 || !KEY_PATTERN.test(key)) {
      throw new WaterbearError('WB_CONFIG_INVALID',
        `${what}: option "${part}" must be key=value with a lower-case key, options separated by commas (e.g. call=read,errno=ECONNRESET)`);
    }
    if (Object.hasOwn(options, key)) throw new WaterbearError('WB_CONFIG_INVALID', `${what}: option '${key}' is given twice`);
    options[key] = part.slice(eq + 1);
  }
  return options;
}

/** Throw WB_CONFIG_INVALID naming the first key of `options` not in `known`. */
export function rejectUnknownOptions(options: Record<string, string>, known: readonly string[], what: string): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      const allowed = known.length === 0 ? 'it takes no options' : `options are: ${known.join(', ')}`;
      throw new WaterbearError('WB_CONFIG_INVALID', `${what}: unknown option '${key}'; ${allowed}`);
    }
  }
}
