import { WOULD_BLOCK, type Handle, type HostAbi } from '../../libos-host/abi/host-abi.js';

const WAIT_LIMIT_NS = 5_000_000_000n;

/** Accept one connection as the library OS would: wait on the listener until one is pending. */
export async function acceptOne(abi: HostAbi, listener: Handle): Promise<Handle> {
  for (;;) {
    const h = abi.accept(listener);
    if (h !== WOULD_BLOCK) return h;
    await abi.wait([{ handle: listener, read: true, write: false }], abi.now('monotonic') + WAIT_LIMIT_NS);
  }
}
