import net from 'node:net';
import test from 'ava';
import { ForwardingAbi } from '../../libos-host/abi/forwarding-abi.js';
import type { ErrnoLike, Handle, HostAbi, StreamInfo } from '../../libos-host/abi/host-abi.js';
import { NodePlatform } from '../../libos-host/platform/node-platform.js';
import { NetworkBuffer } from '../../network-buffer/network-buffer.js';
import { startGuest } from '../helpers/lvm.js';

/** A lower ABI that records what reaches it (unit-test fake); handle 1 is a connection. */
class RecordingAbi extends ForwardingAbi {
  readonly log: string[] = [];
  capacity = Infinity;
  constructor() { super(new NodePlatform()); }
  override info(h: Handle): StreamInfo | null { return h === 1 ? { kind: 'connection', uri: 'tcp:x' } : h === 2 ? { kind: 'listener', uri: 'tcp.srv:x' } : null; }
  override write(h: Handle, src: Uint8Array): number | ErrnoLike {
    const n = Math.min(src.length, this.capacity);
    if (n > 0) this.log.push(`write ${h} ${Buffer.from(src.subarray(0, n)).toString()}`);
    return n;
  }
  override shutdown(h: Handle): void { this.log.push(`shutdown ${h}`); }
  override close(h: Handle): void { this.log.push(`close ${h}`); }
}

const bytes = (s: string): Uint8Array => Buffer.from(s);

test('output is held per epoch and released in order only up to the acknowledged epoch', (t) => {
  const lower = new RecordingAbi();
  const nb = new NetworkBuffer(lower as HostAbi);
  t.is(nb.write(1, bytes('a')), 1);
  t.is(nb.advanceEpoch(), 1);
  t.is(nb.write(1, bytes('b')), 1);
  nb.shutdown(1, { read: false, write: true });
  t.is(nb.advanceEpoch(), 2);
  nb.close(1);
  t.deepEqual(lower.log, [], 'nothing leaves before an acknowledgement');
  nb.release(1);
  t.deepEqual(lower.log, ['write 1 a']);
  nb.release(1);
  t.deepEqual(lower.log, ['write 1 a'], 'a repeated acknowledgement releases nothing new');
  nb.release(3);
  t.deepEqual(lower.log, ['write 1 a', 'write 1 b', 'shutdown 1', 'close 1']);
});

test('a fenced buffer drops held output and never releases it', (t) => {
  const lower = new RecordingAbi();
  const nb = new NetworkBuffer(lower as HostAbi);
  nb.write(1, bytes('secret'));
  nb.advanceEpoch();
  nb.fence();
  nb.release(10);
  t.deepEqual(lower.log, []);
  t.is(nb.write(1, bytes('more')), 0, 'a fenced primary cannot produce output');
});

test('buffered output is bounded: a full buffer makes writes return 0 and the stream not writable', (t) => {
  const lower = new RecordingAbi();
  const nb = new NetworkBuffer(lower as HostAbi, { maxBufferedBytes: 64 * 1024 });
  t.is(nb.write(1, new Uint8Array(60 * 1024)), 60 * 1024);
  t.is(nb.write(1, new Uint8Array(10 * 1024)), 4 * 1024);
  t.is(nb.write(1, bytes('x')), 0);
  t.false(nb.poll(1).writable);
  nb.release(nb.advanceEpoch());
  t.true(nb.poll(1).writable);
});

test('passthrough releases at once (a view with no backups); non-output streams are never held', (t) => {
  const lower = new RecordingAbi();
  const nb = new NetworkBuffer(lower as HostAbi);
  nb.write(1, bytes('held'));
  nb.setPassthrough(true);
  t.deepEqual(lower.log, ['write 1 held']);
  nb.write(1, bytes('now'));
  nb.write(1, bytes('again'));
  t.deepEqual(lower.log, ['write 1 held', 'write 1 now', 'write 1 again']);
  nb.close(2);
  t.deepEqual(lower.log.at(-1), 'close 2');
});

test('released output that the socket cannot take yet is sent later, in order', async (t) => {
  const lower = new RecordingAbi();
  lower.capacity = 2;
  const nb = new NetworkBuffer(lower as HostAbi);
  nb.write(1, bytes('abcdef'));
  nb.release(nb.advanceEpoch());
  t.deepEqual(lower.log, ['write 1 ab']);
  t.is(nb.stats().bufferedBytes, 4);
});

test('a real client receives nothing from the guest until the epoch is acknowledged, then everything in order', async (t) => {
  let nb: NetworkBuffer | null = null;
  const g = await startGuest('echo', { listen: 1, wrapAbi: (p) => (nb = new NetworkBuffer(p)) });
  const running = g.run();
  const received: Buffer[] = [];
  const sock = net.connect(g.port(), '127.0.0.1');
  sock.on('data', (d: Buffer) => received.push(d));
  await new Promise((r) => sock.once('connect', r));
  sock.write('first ');
  await new Promise((r) => setTimeout(r, 150));
  sock.write('second');
  await new Promise((r) => setTimeout(r, 150));
  t.is(Buffer.concat(received).length, 0, 'held until acknowledged');
  t.true(nb!.stats().heldBytes >= 12);
  nb!.release(nb!.advanceEpoch());
  await new Promise((r) => setTimeout(r, 150));
  t.is(Buffer.concat(received).toString(), 'first second');
  sock.destroy();
  g.lvm.stop();
  await running;
});

test('a closed release gate holds passthrough output until it opens (a primary that lost its lease)', (t) => {
  const lower = new RecordingAbi();
  let leaseValid = false;
  const nb = new NetworkBuffer(lower as HostAbi, { passthrough: true, releaseGate: () => leaseValid });
  nb.write(1, bytes('x'));
  t.deepEqual(lower.log, []);
  leaseValid = true;
  nb.retryGate();
  t.deepEqual(lower.log, ['write 1 x']);
});
