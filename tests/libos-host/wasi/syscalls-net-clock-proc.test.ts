import net from 'node:net';
import test from 'ava';
import type { Interest } from '../../../libos-host/abi/host-abi.js';
import { NodePlatform } from '../../../libos-host/platform/node-platform.js';
import { Errno } from '../../../libos-host/wasi/errno.js';
import { LibOs } from '../../../libos-host/wasi/lib-os.js';
import { ProcExit } from '../../../libos-host/wasi/syscall-host.js';
import { Clockid, Eventtype, Fdflags, Riflags, Rights, Sdflags, Subclockflags } from '../../../libos-host/wasi/wasi-constants.js';

/** A real library OS over the real platform, called directly (no guest): every errno path. */
async function makeOs() {
  const platform = new NodePlatform({ stdin: null });
  const os = await LibOs.create(platform, {
    args: ['prog', 'a1'], env: ['K=V'], listeners: [{ uri: 'tcp.srv:127.0.0.1:0', name: null }], dirs: [],
  });
  const memory = new WebAssembly.Memory({ initial: 2 });
  const blocks: Array<{ interests: readonly Interest[]; deadlineNs: bigint | null }> = [];
  os.attach(memory, { block: (interests, deadlineNs) => { blocks.push({ interests, deadlineNs }); return 0; }, resumed: null });
  const table = os.imports() as unknown as Record<string, (...a: Array<number | bigint>) => number>;
  const dv = () => new DataView(memory.buffer);
  let next = 1024;
  const alloc = (n: number): number => { const p = next; next += (n + 7) & ~7; return p; };
  const port = Number(os.listeners()[0].address!.split(':').pop());
  return { os, platform, memory, table, dv, alloc, blocks, port, close: () => { os.closeAll(); platform.closeAll(); } };
}

test('args and environ: sizes and contents', async (t) => {
  const o = await makeOs();
  t.teardown(o.close);
  const [argc, size] = [o.alloc(4), o.alloc(4)];
  t.is(o.table.args_sizes_get(argc, size), Errno.SUCCESS);
  t.is(o.dv().getUint32(argc, true), 2);
  t.is(o.dv().getUint32(size, true), 'prog\0a1\0'.length);
  const [ptrs, buf] = [o.alloc(8), o.alloc(16)];
  t.is(o.table.args_get(ptrs, buf), Errno.SUCCESS);
  t.is(Buffer.from(o.memory.buffer, o.dv().getUint32(ptrs + 4, true), 2).toString(), 'a1');
  t.is(o.table.environ_sizes_get(argc, size), Errno.SUCCESS);
  t.is(o.dv().getUint32(argc, true), 1);
  t.is(o.table.environ_get(ptrs, buf), Errno.SUCCESS);
  t.is(o.table.args_get(ptrs, o.memory.buffer.byteLength - 2), Errno.FAULT, 'a buffer past memory is EFAULT');
});

test('clocks: time, resolution, monotonic never goes backwards, bad clock ids are EINVAL', async (t) => {
  const o = await makeOs();
  t.teardown(o.close);
  const p = o.alloc(8);
  t.is(o.table.clock_time_get(Clockid.MONOTONIC, 1n, p), Errno.SUCCESS);
  const a = o.dv().getBigUint64(p, true);
  t.is(o.table.clock_time_get(Clockid.MONOTONIC, 1n, p), Errno.SUCCESS);
  t.true(o.dv().getBigUint64(p, true) >= a);
  t.is(o.table.clock_time_get(Clockid.REALTIME, 1n, p), Errno.SUCCESS);
  t.true(o.dv().getBigUint64(p, true) > 1_600_000_000_000_000_000n);
  t.is(o.table.clock_res_get(Clockid.MONOTONIC, p), Errno.SUCCESS);
  t.is(o.table.clock_time_get(99, 1n, p), Errno.INVAL);
  t.is(o.table.clock_res_get(99, p), Errno.INVAL);
  t.is(o.table.clock_time_get(Clockid.MONOTONIC, 1n, o.memory.buffer.byteLength), Errno.FAULT);
});

test('random_get fills the buffer; out of bounds is EFAULT', async (t) => {
  const o = await makeOs();
  t.teardown(o.close);
  const p = o.alloc(64);
  t.is(o.table.random_get(p, 64), Errno.SUCCESS);
  t.true(new Uint8Array(o.memory.buffer, p, 64).some((b) => b !== 0));
  t.is(o.table.random_get(o.memory.buffer.byteLength - 8, 64), Errno.FAULT);
});

test('proc_exit unwinds with the code; proc_raise is ENOSYS; sched_yield suspends once', async (t) => {
  const o = await makeOs();
  t.teardown(o.close);
  const err = t.throws(() => o.table.proc_exit(3));
  t.true(err instanceof ProcExit && err.code === 3);
  t.is(o.table.proc_raise(6), Errno.NOSYS);
  o.table.sched_yield();
  t.is(o.blocks.length, 1, 'sched_yield lets the event loop run once');
});

test('fd calls on sockets and consoles: fdstat, set_flags, rights can only shrink, close, renumber, EBADF', async (t) => {
  const o = await makeOs();
  t.teardown(o.close);
  const st = o.alloc(24);
  t.is(o.table.fd_fdstat_get(3, st), Errno.SUCCESS);
  t.is(o.dv().getUint8(st), 6, 'a listener is a SOCKET_STREAM');
  t.is(o.table.fd_fdstat_set_flags(3, Fdflags.NONBLOCK), Errno.SUCCESS);
  t.is(o.table.fd_fdstat_set_flags(3, Fdflags.APPEND), Errno.INVAL, 'APPEND is for files');
  t.is(o.table.fd_fdstat_set_flags(3, 0x100), Errno.INVAL);
  t.is(o.table.fd_fdstat_set_rights(1, Rights.FD_WRITE, 0n), Errno.SUCCESS);
  t.is(o.table.fd_fdstat_set_rights(1, Rights.FD_WRITE | Rights.FD_READ, 0n), Errno.NOTCAPABLE, 'rights cannot be gained');
  const fst = o.alloc(64);
  t.is(o.table.fd_filestat_get(3, fst), Errno.SUCCESS);
  t.is(o.table.fd_fdstat_get(77, st), Errno.BADF);
  t.is(o.table.fd_close(77), Errno.BADF);
  const iov = o.alloc(8);
  t.is(o.table.fd_read(3, iov, 0, o.alloc(4)), Errno.NOTCAPABLE, 'a listener has no read right (rights are checked first)');
  t.is(o.table.fd_renumber(2, 77), Errno.BADF, 'renumbering onto a closed fd');
  t.is(o.table.fd_renumber(0, 2), Errno.SUCCESS);
  t.is(o.table.fd_fdstat_get(0, st), Errno.BADF, 'the source fd is gone');
});

test('sockets: accept (blocking, non-blocking, errors), recv with PEEK and WAITALL, send, shutdown', async (t) => {
  const o = await makeOs();
  t.teardown(o.close);
  const fdOut = o.alloc(4);
  t.is(o.table.sock_accept(1, 0, fdOut), Errno.NOTSOCK, 'accept on a console');
  t.is(o.table.sock_accept(3, 0x10, fdOut), Errno.INVAL, 'unknown accept flags');
  // Nothing pending: a blocking listener suspends, a non-blocking one answers EAGAIN.
  o.table.sock_accept(3, 0, fdOut);
  t.is(o.blocks.length, 1);
  t.deepEqual(o.blocks[0].interests.map((i) => i.read), [true]);
  t.is(o.table.fd_fdstat_set_flags(3, Fdflags.NONBLOCK), Errno.SUCCESS);
  t.is(o.table.sock_accept(3, 0, fdOut), Errno.AGAIN);
  // Half-open: Node 20 never closes a socket reset (resetAndDestroy) after it ended its own write
  // side on the peer's FIN, and the leaked handle kept this worker from exiting.
  const peer = net.connect({ port: o.port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise((r) => peer.once('connect', r));
  await new Promise((r) => setTimeout(r, 50));
  t.is(o.table.sock_accept(3, Fdflags.NONBLOCK, fdOut), Errno.SUCCESS);
  const fd = o.dv().getUint32(fdOut, true);
  t.is(o.table.sock_accept(fd, 0, fdOut), Errno.INVAL, 'accept on a connection');
  // recv: nothing yet → EAGAIN (non-blocking).
  const buf = o.alloc(16);
  const iov = o.alloc(8);
  o.dv().setUint32(iov, buf, true);
  o.dv().setUint32(iov + 4, 16, true);
  const [n, flags] = [o.alloc(4), o.alloc(4)];
  t.is(o.table.sock_recv(fd, iov, 1, 0, n, flags), Errno.AGAIN);
  t.is(o.table.sock_recv(fd, iov, 1, 0x80, n, flags), Errno.INVAL, 'unknown recv flags');
  peer.write('hello world');
  await new Promise((r) => setTimeout(r, 50));
  t.is(o.table.sock_recv(fd, iov, 1, Riflags.RECV_PEEK, n, flags), Errno.SUCCESS);
  t.is(Buffer.from(o.memory.buffer, buf, o.dv().getUint32(n, true)).toString(), 'hello world');
  o.dv().setUint32(iov + 4, 5, true);
  t.is(o.table.sock_recv(fd, iov, 1, 0, n, flags), Errno.SUCCESS);
  t.is(Buffer.from(o.memory.buffer, buf, o.dv().getUint32(n, true)).toString(), 'hello', 'peeked bytes are read again');
  o.dv().setUint32(iov + 4, 16, true);
  t.is(o.table.sock_recv(fd, iov, 1, Riflags.RECV_WAITALL, n, flags), Errno.AGAIN, 'WAITALL with too little data waits');
  peer.write('01234567890');
  await new Promise((r) => setTimeout(r, 50));
  t.is(o.table.sock_recv(fd, iov, 1, Riflags.RECV_WAITALL, n, flags), Errno.SUCCESS);
  t.is(Buffer.from(o.memory.buffer, buf, o.dv().getUint32(n, true)).toString(), ' world0123456789', 'WAITALL delivers the whole buffer');
  // send, then shutdown of the write side: the peer sees the bytes and EOF.
  const received: Buffer[] = [];
  const ended = new Promise<void>((r) => { peer.on('data', (d: Buffer) => received.push(d)); peer.on('end', () => r()); });
  const out = o.alloc(8);
  const data = o.alloc(4);
  new Uint8Array(o.memory.buffer, data, 4).set(Buffer.from('pong'));
  o.dv().setUint32(out, data, true);
  o.dv().setUint32(out + 4, 4, true);
  t.is(o.table.sock_send(fd, out, 1, 0, n), Errno.SUCCESS);
  t.is(o.table.sock_shutdown(fd, 0), Errno.INVAL);
  t.is(o.table.sock_shutdown(fd, Sdflags.WR), Errno.SUCCESS);
  t.is(o.table.sock_send(fd, out, 1, 0, n), Errno.PIPE, 'send after shutting down the write side');
  await ended;
  t.is(Buffer.concat(received).toString(), 'pong');
  t.is(o.table.sock_shutdown(3, Sdflags.RD), Errno.NOTCONN, 'shutdown of a listener');
  t.is(o.table.sock_recv(1, iov, 1, 0, n, flags), Errno.NOTSOCK);
  // A peer that resets: the next read reports it (the reset of a half-closed socket may itself error).
  peer.on('error', () => {});
  peer.resetAndDestroy();
  await new Promise((r) => setTimeout(r, 50));
  // What was still held ('0', the 17th byte) comes first; then the reset (or end of stream).
  let rc = o.table.sock_recv(fd, iov, 1, 0, n, flags);
  if (rc === Errno.SUCCESS && o.dv().getUint32(n, true) > 0) {
    t.is(Buffer.from(o.memory.buffer, buf, o.dv().getUint32(n, true)).toString(), '0');
    rc = o.table.sock_recv(fd, iov, 1, 0, n, flags);
  }
  t.true(rc === Errno.CONNRESET || (rc === Errno.SUCCESS && o.dv().getUint32(n, true) === 0), `recv after reset: ${rc}`);
});

test('poll_oneoff: no subscriptions is EINVAL; clocks fire; fd events report readiness and errors; blocks when nothing is ready', async (t) => {
  const o = await makeOs();
  t.teardown(o.close);
  const subs = o.alloc(48 * 3);
  const events = o.alloc(32 * 3);
  const nev = o.alloc(4);
  t.is(o.table.poll_oneoff(subs, events, 0, nev), Errno.INVAL);
  const dv = o.dv();
  // A relative monotonic clock of 0 ns fires at once.
  dv.setBigUint64(subs, 7n, true);
  dv.setUint8(subs + 8, Eventtype.CLOCK);
  dv.setUint32(subs + 16, Clockid.MONOTONIC, true);
  dv.setBigUint64(subs + 24, 0n, true);
  t.is(o.table.poll_oneoff(subs, events, 1, nev), Errno.SUCCESS);
  t.is(dv.getUint32(nev, true), 1);
  t.is(dv.getBigUint64(events, true), 7n);
  // A closed fd reports EBADF in its event; a console is writable.
  dv.setUint8(subs + 48 + 8, Eventtype.FD_READ);
  dv.setUint32(subs + 48 + 16, 99, true);
  dv.setBigUint64(subs + 96, 9n, true);
  dv.setUint8(subs + 96 + 8, Eventtype.FD_WRITE);
  dv.setUint32(subs + 96 + 16, 1, true);
  t.is(o.table.poll_oneoff(subs + 48, events, 2, nev), Errno.SUCCESS);
  t.is(dv.getUint32(nev, true), 2);
  t.is(dv.getUint16(events + 8, true), Errno.BADF);
  // Only a listener with nothing pending and a clock in 1 s: the guest suspends with that deadline.
  dv.setUint8(subs + 8, Eventtype.FD_READ);
  dv.setUint32(subs + 16, 3, true);
  dv.setUint8(subs + 48 + 8, Eventtype.CLOCK);
  dv.setUint32(subs + 48 + 16, Clockid.MONOTONIC, true);
  dv.setBigUint64(subs + 48 + 24, 1_000_000_000n, true);
  dv.setUint16(subs + 48 + 40, 0, true);
  o.table.poll_oneoff(subs, events, 2, nev);
  t.is(o.blocks.length, 1);
  t.not(o.blocks[0].deadlineNs, null);
  t.is(o.blocks[0].interests.length, 1);
  // An absolute clock already in the past fires.
  dv.setUint16(subs + 48 + 40, Subclockflags.SUBSCRIPTION_CLOCK_ABSTIME, true);
  dv.setBigUint64(subs + 48 + 24, 1n, true);
  t.is(o.table.poll_oneoff(subs, events, 2, nev), Errno.SUCCESS);
  // Unknown event type.
  dv.setUint8(subs + 8, 9);
  t.is(o.table.poll_oneoff(subs, events, 1, nev), Errno.INVAL);
});
