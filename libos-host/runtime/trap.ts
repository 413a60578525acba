import { WaterbearError } from '../errors.js';

/** Byte written over the reserved region's canary; any other value means the guest wrote there. */
export const CANARY_BYTE = 0xa5;

/** The innermost guest function in a V8 stack trace, e.g. "guest_crash_here". */
export function guestFunctionOf(stack: string | undefined): string | null {
  if (stack === undefined) return null;
  for (const line of stack.split('\n')) {
    // V8 prints wasm frames as "at name (wasm://wasm/<hash>:wasm-function[12]:0x1a2)".
    const m = /^\s*at (.+?) \(wasm:\/\/wasm\/[^)]*wasm-function\[(\d+)\]:(0x[0-9a-f]+)\)/.exec(line);
    if (m !== null) {
      const name = m[1].replace(/^\$/, '');
      return /^wasm-function\[/.test(name) || name.startsWith('wasm://') ? `wasm-function[${m[2]}]@${m[3]}` : `${name}@${m[3]}`;
    }
    const anon = /^\s*at wasm:\/\/wasm\/[^:]*:wasm-function\[(\d+)\]:(0x[0-9a-f]+)/.exec(line);
    if (anon !== null) return `wasm-function[${anon[1]}]@${anon[2]}`;
  }
  return null;
}

/** Wrap a WebAssembly trap (or a stack overflow) as WB_GUEST_TRAP naming the guest function. */
export function describeTrap(err: Error): WaterbearError {
  const fn = guestFunctionOf(err.stack);
  const where = fn === null ? '' : ` in guest function ${fn}`;
  return new WaterbearError('WB_GUEST_TRAP', `guest trapped${where}: ${err.message}`, {
    cause: err,
    details: { guestFunction: fn, trap: err.message },
  });
}
