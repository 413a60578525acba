import net from 'node:net';
import test from 'ava';
import { RespClient } from '../../../chaos/clients/resp-client.js';
import { RespError } from '../../../chaos/clients/resp.js';
import { startGuest } from '../../helpers/lvm.js';

test('the KV guest answers Redis commands with Redis reply types', async (t) => {
  const g = await startGuest('kv', { listen: 1 });
  const running = g.run();
  const c = await RespClient.connect(g.port());
  t.is(await c.call('PING'), 'PONG');
  t.is(await c.call('SET', 'k', 'v1'), 'OK');
  t.is(await c.call('GET', 'k'), 'v1');
  t.is(await c.call('GET', 'missing'), null);
  t.is(await c.call('INCR', 'n'), 1);
  t.is(await c.call('INCRBY', 'n', 41), 42);
  t.is(await c.call('APPEND', 'k', 'xy'), 4);
  t.is(await c.call('STRLEN', 'k'), 4);
  t.deepEqual(await c.call('MGET', 'k', 'nope', 'n'), ['v1xy', null, '42']);
  t.is(await c.call('MSET', 'a', '1', 'b', '2'), 'OK');
  t.is(await c.call('EXISTS', 'a', 'b', 'zz'), 2);
  t.is(await c.call('DEL', 'a', 'zz'), 1);
  t.is(await c.call('DBSIZE'), 3);
  t.true((await c.call('INCR', 'k')) instanceof RespError);
  const inline = await c.raw('PING\r\nECHO hello\n', 2);
  t.deepEqual(inline, ['PONG', 'hello']);
  c.close();
  g.lvm.stop();
  await running;
});

test('the KV guest formats integer and length replies exactly, down to the int64 extremes', async (t) => {
  const g = await startGuest('kv', { listen: 1 });
  const running = g.run();
  const sock = net.connect(g.port(), '127.0.0.1');
  const expected = ':-9223372036854775807\r\n:-9223372036854775808\r\n:0\r\n$20\r\n-9223372036854775808\r\n'
    + ':9223372036854775807\r\n*2\r\n$19\r\n9223372036854775807\r\n$-1\r\n:19\r\n';
  const got = await new Promise<string>((resolve, reject) => {
    let text = '';
    // QUIT closes the connection: everything the server sent is compared, a wrong length too.
    sock.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    sock.on('end', () => resolve(text));
    sock.on('error', reject);
    sock.write('INCRBY m -9223372036854775807\r\nDECR m\r\nINCRBY z 0\r\nGET m\r\n'
      + 'INCRBY p 9223372036854775807\r\nMGET p none\r\nSTRLEN p\r\nQUIT\r\n');
  });
  t.is(got, expected + '+OK\r\n');
  sock.destroy();
  g.lvm.stop();
  await running;
});

test('the KV guest serves 100 concurrent real TCP clients', async (t) => {
  const g = await startGuest('kv', { listen: 1 });
  const running = g.run();
  const CLIENTS = 100;
  const OPS = 20;
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => RespClient.connect(g.port())));
  await Promise.all(clients.map(async (c, i) => {
    for (let j = 0; j < OPS; j++) {
      t.is(await c.call('SET', `key:${i}:${j}`, `value:${i}:${j}`), 'OK');
      t.is(await c.call('INCR', `counter:${i}`), j + 1);
    }
  }));
  const check = await RespClient.connect(g.port());
  t.is(await check.call('DBSIZE'), CLIENTS * OPS + CLIENTS);
  t.is(await check.call('GET', 'key:99:19'), 'value:99:19');
  for (const c of [...clients, check]) c.close();
  g.lvm.stop();
  await running;
});

test('a client that disconnects mid-request does not disturb the others', async (t) => {
  const g = await startGuest('kv', { listen: 1 });
  const running = g.run();
  const good = await RespClient.connect(g.port());
  t.is(await good.call('SET', 'x', '1'), 'OK');
  for (let i = 0; i < 20; i++) {
    // Half a multibulk request, then gone (sometimes with a reset).
    const s = net.connect(g.port(), '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.write('*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$5\r\nhal');
    if (i % 2 === 0) s.resetAndDestroy(); else s.end();
  }
  t.is(await good.call('GET', 'x'), '1');
  t.is(await good.call('PING'), 'PONG');
  good.close();
  g.lvm.stop();
  await running;
});
