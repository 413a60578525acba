import type { Extension, HostAbi } from '../libos-host/abi/host-abi.js';
import { composeExtensions, faultSpec, parseExtensionSpec, type ExtensionSpec } from '../libos-host/extensions/registry.js';
import { openFileTraceSink } from '../libos-host/platform/trace-sink.js';

/** The extension-related flags of `waterbear run`. */
export interface ExtensionFlags { trace: string | undefined; faults: string[]; extensions: string[] }
export interface ExtensionStack { abi: HostAbi; extensions: Extension[]; close(): Promise<void> }

/**
 * Compose the extension stack named by CLI flags over the platform: `--extension` specs in
 * order (first is closest to the platform), then `--fault` rules, then `--trace` on top so the
 * trace shows what the library OS saw.
 */
export async function buildExtensionStack(base: HostAbi, flags: ExtensionFlags): Promise<ExtensionStack> {
  const specs: ExtensionSpec[] = [
    ...flags.extensions.map(parseExtensionSpec),
    ...flags.faults.map(faultSpec),
    ...(flags.trace !== undefined ? [{ name: 'trace', options: { file: flags.trace } }] : []),
  ];
  const stack = composeExtensions(base, specs, { openTraceFile: openFileTraceSink, timingClockNs: () => base.now('monotonic') });
  return { abi: stack.abi, extensions: stack.extensions, close: () => stack.dispose() };
}
