import test from 'ava';
import net from 'node:net';
import { END_OF_STREAM, WOULD_BLOCK, type Handle } from '../../../libos-host/abi/host-abi.js';
import { isWaterbearError } from '../../../libos-host/errors.js';
import { NodePlatform } from '../../../libos-host/platform/node-platform.js';
import { acceptOne } from '../../helpers/host-abi-io.js';

const WAIT_LIMIT_NS = 5_000_000_000n;

function portOf(p: NodePlatform, listener: Handle): number {
  return Number(p.listenerAddress(listener)?.split(':').pop());
}

async function connect(port: number): Promise<net.Socket> {
  const c = net.connect(port, '127.0.0.1');
  c.on('error', () => {});
  await new Promise<void>((resolve, reject) => { c.once('connect', () => resolve()); c.once('error', reject); });
  return c;
}

/** Another server taking the port, as a backup taking over the service address would. */
async function bindOther(port: number): Promise<net.Server> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen({ host: '127.0.0.1', port }, () => resolve()); });
  return s;
}

test('a parked service frees its address, ends its connections and keeps its streams; resuming binds the same port again', async (t) => {
  const p = new NodePlatform();
  t.teardown(() => p.closeAll());
  const listener = await p.listen('tcp.srv:127.0.0.1:0');
  const port = portOf(p, listener);
  const client = await connect(port);
  const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  const conn = await acceptOne(p, listener);

  t.is(p.parkService(), 1, 'it reports the one connection it cut');
  t.true(p.serviceParked);
  await clientClosed; // the client sees its connection end, and may reconnect elsewhere
  t.is(p.read(conn, new Uint8Array(16)), END_OF_STREAM, 'the guest sees the connection end');
  t.is(p.info(listener)?.kind, 'listener', 'the guest keeps its listener');
  t.is(p.listenerAddress(listener), `127.0.0.1:${port}`);

  const other = await bindOther(port); // the address is free
  await new Promise<void>((resolve) => other.close(() => resolve()));

  await p.resumeListening();
  t.false(p.serviceParked);
  const again = await connect(port);
  const conn2 = await acceptOne(p, listener);
  again.write('hi');
  const buf = new Uint8Array(8);
  for (;;) {
    const r = p.read(conn2, buf);
    if (typeof r === 'number' && r !== WOULD_BLOCK) { t.is(Buffer.from(buf.subarray(0, r)).toString(), 'hi'); break; }
    await p.wait([{ handle: conn2, read: true, write: false }], p.now('monotonic') + WAIT_LIMIT_NS);
  }
  again.destroy();
});

test('resuming while another process holds the address fails with WB_LISTEN_FAILED and can be retried', async (t) => {
  const p = new NodePlatform();
  t.teardown(() => p.closeAll());
  const listener = await p.listen('tcp.srv:127.0.0.1:0');
  const port = portOf(p, listener);
  p.parkService();
  const other = await bindOther(port);
  const err = await t.throwsAsync(p.resumeListening());
  t.true(isWaterbearError(err, 'WB_LISTEN_FAILED'), String(err));
  t.true(p.serviceParked, 'still parked after a failed attempt');
  await new Promise<void>((resolve) => other.close(() => resolve()));
  await p.resumeListening();
  t.false(p.serviceParked);
  (await connect(port)).destroy();
});

test('closing a parked listener is harmless, and a platform that never parked reports so', async (t) => {
  const p = new NodePlatform();
  const listener = await p.listen('tcp.srv:127.0.0.1:0');
  t.false(p.serviceParked);
  p.parkService();
  p.close(listener);
  t.false(p.serviceParked, 'no parked listener is left');
  t.is(p.info(listener), null);
  p.closeAll();
});

test('a rebinding that completes after the listener was closed, or after the service was parked again, lets the address go', async (t) => {
  const p = new NodePlatform();
  const listener = await p.listen('tcp.srv:127.0.0.1:0');
  const port = portOf(p, listener);
  p.parkService();
  const resuming = p.resumeListening();
  p.parkService(); // the lease lapsed again while binding
  await resuming;
  t.true(p.serviceParked, 'still parked');
  (await bindOther(port)).close(); // and the address is free

  const again = p.resumeListening();
  p.closeAll(); // the primary ended while binding
  await again;
  const other = await bindOther(port); // nothing kept the address
  await new Promise<void>((resolve) => other.close(() => resolve()));
  t.pass();
});
