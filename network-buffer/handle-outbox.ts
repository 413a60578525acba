import type { Handle, HostAbi } from '../libos-host/abi/host-abi.js';
import type { HeldOp } from './network-buffer.js';

interface OutboxEvents {
  /** `n` bytes left the buffer (accepted by the lower layer, or dropped with a dead stream). */
  sent(n: number): void;
  /** The stream was closed: the outbox is finished. */
  closed(): void;
}

/**
 * Released output of one stream, sent to the lower layer in order. When the lower layer is full
 * (write returns 0) it waits for writability in the background and continues.
 */
export class HandleOutbox {
  private readonly ops: HeldOp[] = [];
  private offset = 0; // bytes of ops[0] already sent
  private waiting = false;
  private dead = false;

  constructor(private readonly lower: HostAbi, private readonly handle: Handle, private readonly events: OutboxEvents) {}

  push(op: HeldOp): void { this.ops.push(op); }

  /** Send as much as the lower layer takes now. */
  flush(): void {
    while (this.ops.length > 0) {
      const op = this.ops[0];
      if (op.kind === 'write') {
        if (this.dead) { this.events.sent(op.data.length - this.offset); this.next(); continue; }
        const r = this.lower.write(this.handle, op.data.subarray(this.offset));
        if (typeof r === 'string') {
          // The peer is gone: what it did not receive is dropped, later ops still run in order.
          this.dead = true;
          continue;
        }
        this.offset += r;
        this.events.sent(r);
        if (this.offset < op.data.length) { this.waitWritable(); return; }
        this.next();
      } else if (op.kind === 'shutdown') {
        if (!this.dead) this.lower.shutdown(this.handle, { read: false, write: true });
        this.next();
      } else {
        this.lower.close(this.handle);
        this.ops.length = 0;
        this.events.closed();
        return;
      }
    }
  }

  private next(): void {
    this.ops.shift();
    this.offset = 0;
  }

  private waitWritable(): void {
    if (this.waiting) return;
    this.waiting = true;
    void this.lower.wait([{ handle: this.handle, read: false, write: true }], null).then(() => {
      this.waiting = false;
      this.flush();
    });
  }
}
