import { WaterbearError } from '../errors.js';
import { parseSize } from '../units.js';
import { WASM32_MAX_PAGES, WASM_PAGE_BYTES } from './wasm-binary.js';

/** Default cap of the guest's own memory (the reserved region comes on top). */
export const DEFAULT_MEMORY_LIMIT_BYTES = 256 * 1024 * 1024;

/** Smallest and largest accepted memory limits: one WebAssembly page, and all of wasm32's. */
export const MIN_MEMORY_LIMIT_BYTES = WASM_PAGE_BYTES;
export const MAX_MEMORY_LIMIT_BYTES = WASM32_MAX_PAGES * WASM_PAGE_BYTES;

/** Check a memory limit in bytes; `what` names the option or field in the error. Throws WB_CONFIG_INVALID. */
export function checkMemoryLimit(bytes: unknown, what: string): number {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < MIN_MEMORY_LIMIT_BYTES || bytes > MAX_MEMORY_LIMIT_BYTES) {
    throw new WaterbearError('WB_CONFIG_INVALID', `${what} must be between 64KiB and 4GiB: got ${typeof bytes === 'number' ? `${bytes} bytes` : JSON.stringify(bytes)}`);
  }
  return bytes;
}

/** Parse and check a memory limit such as `256MiB` (see parseSize). */
export function parseMemoryLimit(text: string, what: string): number {
  return checkMemoryLimit(parseSize(text, what), what);
}
