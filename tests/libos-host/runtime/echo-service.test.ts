import net from 'node:net';
import test from 'ava';
import { startGuest } from '../../helpers/lvm.js';

/** Connect, send `data`, half-close, and collect everything until the server closes. */
function echoOnce(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => { s.end(data); });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

test('the echo guest (non-blocking sockets) echoes large payloads and closes after the client half-closes', async (t) => {
  const g = await startGuest('echo', { listen: 1 });
  const running = g.run();
  const payload = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
  const results = await Promise.all(Array.from({ length: 8 }, () => echoOnce(g.port(), payload)));
  for (const r of results) t.true(r.equals(payload), `echoed ${r.length} bytes`);
  g.lvm.stop();
  await running;
});

test('peers that reset mid-transfer do not disturb other clients of the echo guest', async (t) => {
  const g = await startGuest('echo', { listen: 1 });
  const running = g.run();
  for (let i = 0; i < 10; i++) {
    const s = net.connect(g.port(), '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.write(Buffer.alloc(256 * 1024, 1));
    s.resetAndDestroy();
  }
  const ok = await echoOnce(g.port(), Buffer.from('still here'));
  t.is(ok.toString(), 'still here');
  g.lvm.stop();
  await running;
});

test('two listeners are fd 3 and 4 in order and both serve', async (t) => {
  const g = await startGuest('echo', { listen: 2 });
  const fds = g.os.listeners().map((l) => l.fd);
  t.deepEqual(fds, [3, 4]);
  const running = g.run();
  // echo.c serves its first listener; the second must at least exist and accept TCP.
  t.is((await echoOnce(g.port(0), Buffer.from('a'))).toString(), 'a');
  g.lvm.stop();
  await running;
});

test('the platform wait is level-triggered: readiness that arrived before the wait wakes it at once', async (t) => {
  const { NodePlatform } = await import('../../../libos-host/platform/node-platform.js');
  const p = new NodePlatform({ stdin: null });
  const h = await p.listen('tcp.srv:127.0.0.1:0');
  const port = Number(p.listenerAddress(h)!.split(':').pop());
  const s = net.connect(port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  await new Promise((r) => setTimeout(r, 50)); // the connection is pending before anyone waits
  const woke = await Promise.race([
    p.wait([{ handle: h, read: true, write: false }], null).then(() => 'woke'),
    new Promise((r) => setTimeout(() => r('lost wakeup'), 1000)),
  ]);
  t.is(woke, 'woke');
  s.destroy();
  p.closeAll();
});

test('onWake follows every blocking wait, before the guest runs again; a forced suspension does not wait and gets none', async (t) => {
  const events: string[] = [];
  const g = await startGuest('echo', {
    listen: 1,
    hooks: {
      onSuspended: (lvm) => { events.push(lvm.suspended?.forced === true ? 'forced' : 'blocked'); },
      onWake: (lvm) => {
        t.not(lvm.suspended, null, 'still suspended when woken');
        events.push('wake');
        if (events.filter((e) => e === 'wake').length === 1) lvm.requestSuspend(); // force the next suspension
      },
    },
  });
  const running = g.run();
  t.is((await echoOnce(g.port(), Buffer.from('hello'))).toString(), 'hello');
  g.lvm.stop();
  await running;
  t.true(events.includes('forced'), events.join(' '));
  t.true(events.includes('wake'), events.join(' '));
  for (let i = 0; i < events.length; i++) {
    // Each wait ends in exactly one wake (the last may still be waiting when stopped).
    if (events[i] === 'blocked' && i + 1 < events.length) t.is(events[i + 1], 'wake', `after event ${i}: ${events.join(' ')}`);
    if (events[i] === 'forced' && i + 1 < events.length) t.not(events[i + 1], 'wake', `after event ${i}: ${events.join(' ')}`);
    if (events[i] === 'wake') t.is(events[i - 1], 'blocked', `before event ${i}: ${events.join(' ')}`);
  }
});
