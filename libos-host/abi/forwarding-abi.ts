import type { ClockName, ErrnoLike, Handle, HostAbi, HostTreeEntry, Interest, Readiness, StreamInfo, WOULD_BLOCK } from './host-abi.js';

/**
 * A HostAbi that forwards every call to the layer below. Extensions extend it and override only
 * the calls they change, so a new ABI call needs one forwarding method here, not one per extension.
 */
export class ForwardingAbi implements HostAbi {
  constructor(protected readonly lower: HostAbi) {}
  listen(uri: `tcp.srv:${string}`): Promise<Handle> { return this.lower.listen(uri); }
  open(uri: 'stdin:' | 'stdout:' | 'stderr:'): Handle { return this.lower.open(uri); }
  info(handle: Handle): StreamInfo | null { return this.lower.info(handle); }
  accept(listener: Handle): Handle | typeof WOULD_BLOCK { return this.lower.accept(listener); }
  read(handle: Handle, dst: Uint8Array): number | ErrnoLike { return this.lower.read(handle, dst); }
  write(handle: Handle, src: Uint8Array): number | ErrnoLike { return this.lower.write(handle, src); }
  shutdown(handle: Handle, how: { read: boolean; write: boolean }): void | ErrnoLike { return this.lower.shutdown(handle, how); }
  close(handle: Handle): void { this.lower.close(handle); }
  poll(handle: Handle): Readiness { return this.lower.poll(handle); }
  wait(interests: readonly Interest[], deadlineNs: bigint | null, signal?: AbortSignal): Promise<void> {
    return this.lower.wait(interests, deadlineNs, signal);
  }
  now(clock: ClockName): bigint { return this.lower.now(clock); }
  resolution(clock: ClockName): bigint { return this.lower.resolution(clock); }
  random(dst: Uint8Array): void { this.lower.random(dst); }
  readHostTree(hostPath: string): HostTreeEntry { return this.lower.readHostTree(hostPath); }
}
