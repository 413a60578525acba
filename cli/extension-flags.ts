import type { HostAbi } from '../libos-host/abi/host-abi.js';
import { WaterbearError } from '../libos-host/errors.js';

export interface ExtensionFlags { trace: string | undefined; faults: string[]; extensions: string[] }
export interface ExtensionStack { abi: HostAbi; close(): Promise<void> }

/** Compose the extension stack named by CLI flags over the platform. */
export async function buildExtensionStack(base: HostAbi, flags: ExtensionFlags): Promise<ExtensionStack> {
  if (flags.trace !== undefined || flags.faults.length > 0 || flags.extensions.length > 0) {
    throw new WaterbearError('WB_CONFIG_INVALID', 'extensions are not wired yet');
  }
  return { abi: base, close: async () => {} };
}
