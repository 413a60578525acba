/**
 * Event-loop turns for a guest that computes without blocking (`waterbear run` and `waterbear
 * restore` without checkpointing). JavaScript runs on one thread: while the guest executes, no
 * signal handler, timer or socket callback can run, so Ctrl-C and SIGTERM were ignored by a guest
 * that never blocked (a compute loop, or one writing to the console in a loop). The guest is
 * interrupted the way the checkpointer interrupts it: a `requestSuspend` deadline that its next
 * suspending import or yield point (the image is prepared with yield points) honours by
 * unwinding. At that forced suspension the event loop gets one turn (a setImmediate, after the
 * pending I/O and signal callbacks), then the guest resumes where it was.
 *
 * Why not another way: a signal cannot reach JavaScript while wasm runs on the main thread
 * (Node delivers it through the event loop, and not at all to worker threads), and replacing the
 * signal disposition around every guest run would cost syscalls per request and lose the
 * orderly stop (trace flush, listener close, exit code). Limit: code that runs long without a
 * loop or a suspending import (a deep recursion without loops) is interrupted only at its next
 * one; SIGKILL still ends it.
 */
import type { Lvm, LvmHooks } from '../libos-host/runtime/lvm.js';

/** Longest time a running guest keeps the event loop from turning, in milliseconds. */
export const EVENT_LOOP_TURN_INTERVAL_MS = 50;

/** Gives the event loop a turn at least every `intervalMs` while the guest runs. Pass `hooks` to the launch, then `attach`. */
export class EventLoopTurns {
  readonly hooks: LvmHooks = {
    onSuspended: (lvm) => this.onSuspended(lvm),
    // A guest that blocked waited in the event loop: its next turn is due one interval from now.
    onWake: (lvm) => { this.arm(lvm); },
  };

  constructor(private readonly intervalMs = EVENT_LOOP_TURN_INTERVAL_MS) {}

  /** Start counting for a launched (or restored) LVM. */
  attach(lvm: Lvm): void {
    this.arm(lvm);
  }

  private async onSuspended(lvm: Lvm): Promise<void> {
    if (lvm.suspended?.forced !== true) return; // it blocks: the event loop runs while it waits
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.arm(lvm);
  }

  private arm(lvm: Lvm): void {
    lvm.requestSuspend(lvm.abi.now('monotonic') + BigInt(Math.round(this.intervalMs * 1e6)));
  }
}
