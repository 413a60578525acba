import test from 'ava';
import net from 'node:net';
import { freePorts } from '../../chaos/cluster/ports.js';
import { FaultProxy } from '../../chaos/proxy/fault-proxy.js';
import { Prng } from '../../chaos/random/prng.js';

/** A loopback server that echoes every byte, and remembers what it received per connection. */
async function echoServer(): Promise<{ port: number; received: Buffer[][]; close(): Promise<void> }> {
  const received: Buffer[][] = [];
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    const mine: Buffer[] = [];
    received.push(mine);
    socks.add(s);
    s.on('data', (d) => { mine.push(d); s.write(d); });
    s.on('error', () => {});
    s.on('close', () => socks.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    close: () => { for (const s of socks) s.destroy(); return new Promise((r) => server.close(() => r())); },
  };
}

async function setup(t: { teardown(f: () => unknown): void }): Promise<{ proxy: FaultProxy; echo: Awaited<ReturnType<typeof echoServer>>; connect(): Promise<net.Socket> }> {
  const echo = await echoServer();
  const [port] = await freePorts(1);
  const proxy = new FaultProxy('test', { host: '127.0.0.1', port }, { host: '127.0.0.1', port: echo.port }, new Prng(42));
  await proxy.start();
  const sockets: net.Socket[] = [];
  t.teardown(async () => { for (const s of sockets) s.destroy(); await proxy.close(); await echo.close(); });
  return {
    proxy, echo,
    connect: () => new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
      sockets.push(s);
      s.on('error', reject);
    }),
  };
}

/** Collect `n` bytes from `s`, or whatever arrived after `timeoutMs`. */
function read(s: net.Socket, n: number, timeoutMs = 2000): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (): void => { clearTimeout(timer); s.off('data', onData); resolve(Buffer.concat(chunks)); };
    const onData = (d: Buffer): void => { chunks.push(d); got += d.length; if (got >= n) done(); };
    const timer = setTimeout(done, timeoutMs);
    s.on('data', onData);
  });
}

test('a healthy link forwards bytes both ways unchanged', async (t) => {
  const { connect, proxy } = await setup(t);
  const s = await connect();
  const msg = Buffer.from('hello through the proxy');
  s.write(msg);
  t.deepEqual(await read(s, msg.length), msg);
  t.is(proxy.stats.connections, 1);
  t.is(proxy.stats.bytesForward, msg.length);
  t.is(proxy.stats.bytesBackward, msg.length);
});

test('a blocked link holds bytes (a partition) and delivers them in order when it heals', async (t) => {
  const { connect, proxy, echo } = await setup(t);
  const s = await connect();
  s.write('before;');
  t.is((await read(s, 7)).toString(), 'before;');
  proxy.set({ blockForward: true });
  s.write('during-1;');
  s.write('during-2;');
  t.is((await read(s, 1, 300)).length, 0, 'nothing crosses a partition');
  t.is(Buffer.concat(echo.received[0]).toString(), 'before;');
  proxy.heal();
  t.is((await read(s, 18)).toString(), 'during-1;during-2;');
});

test('a one-way block lets requests through but holds the replies', async (t) => {
  const { connect, proxy, echo } = await setup(t);
  const s = await connect();
  proxy.set({ blockBackward: true });
  s.write('ping');
  t.is((await read(s, 1, 300)).length, 0);
  t.is(Buffer.concat(echo.received[0]).toString(), 'ping', 'the request reached the target');
  proxy.heal();
  t.is((await read(s, 4)).toString(), 'ping');
});

test('new connections across a partition reach the target only after it heals', async (t) => {
  const { connect, proxy, echo } = await setup(t);
  proxy.set({ blockForward: true });
  const s = await connect();
  s.write('x');
  await new Promise((r) => setTimeout(r, 200));
  t.is(echo.received.length, 0);
  proxy.heal();
  t.is((await read(s, 1)).toString(), 'x');
});

test('corruption flips exactly one bit in a chunk', async (t) => {
  const { connect, proxy, echo } = await setup(t);
  const s = await connect();
  proxy.set({ corruptProbability: 1 });
  s.write(Buffer.alloc(64, 0));
  await read(s, 64);
  const popcount = (b: Buffer): number => { let n = 0; for (const x of b) for (let v = x; v !== 0; v &= v - 1) n++; return n; };
  const atTarget = Buffer.concat(echo.received[0]);
  t.is(atTarget.length, 64);
  t.is(popcount(atTarget), 1, 'the target received the zeros with one bit flipped');
  t.true(proxy.stats.corruptedChunks >= 2, 'the reply was corrupted too');
});

test('delay adds latency to every chunk and keeps their order', async (t) => {
  const { connect, proxy } = await setup(t);
  const s = await connect();
  proxy.set({ delayMs: 100, jitterMs: 50 });
  const started = performance.now();
  for (let i = 0; i < 10; i++) s.write(String(i));
  const back = await read(s, 10);
  t.true(performance.now() - started >= 190, 'two delayed hops');
  t.is(back.toString(), '0123456789');
});

test('drop tears connections down', async (t) => {
  const { connect, proxy } = await setup(t);
  const s = await connect();
  proxy.set({ resetProbability: 1 });
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.on('error', () => {});
  s.write('x');
  await closed;
  t.is(proxy.stats.resets, 1);
});

test('duplicate replays an earlier connection\'s bytes to the target on a new connection', async (t) => {
  const { connect, proxy, echo } = await setup(t);
  const s = await connect();
  s.write('recorded-request');
  await read(s, 16);
  s.destroy();
  await new Promise((r) => setTimeout(r, 50));
  proxy.set({ replay: true });
  const deadline = Date.now() + 3000;
  while (echo.received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  proxy.heal();
  t.true(echo.received.length >= 2, 'a second connection arrived');
  await new Promise((r) => setTimeout(r, 50));
  t.is(Buffer.concat(echo.received[1]).toString(), 'recorded-request');
  t.true(proxy.stats.replays >= 1);
});
