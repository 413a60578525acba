import net from 'node:net';
import test from 'ava';
import { RespClient } from '../../chaos/clients/resp-client.js';
import { Checkpointer } from '../../checkpoint/checkpointer.js';
import { CheckpointChain } from '../../checkpoint/restore-image.js';
import { restoreFromImage } from '../../checkpoint/restore.js';
import { decodeCheckpoint, encodeCheckpoint } from '../../checkpoint/format/checkpoint-codec.js';
import { NodePlatform } from '../../libos-host/platform/node-platform.js';
import type { Lvm } from '../../libos-host/runtime/lvm.js';
import { guestBytes, TEST_CACHE_DIR } from '../helpers/lvm.js';
import { launchTracked, MEMORY_LIMIT_BYTES } from './helpers/checkpointing.js';

test('a restored KV LVM listens on the same address, its open connections are dead, its clock continues', async (t) => {
  const chain = new CheckpointChain();
  let checkpointer: Checkpointer | null = null;
  let capture = false;
  let capturedMonotonic = 0n;
  const g = await launchTracked('kv', {
    tracker: 'shadow', listen: 1,
    hooks: {
      onSuspended: (lvm: Lvm) => {
        if (!capture) return;
        capture = false;
        const cp = checkpointer!.capture();
        capturedMonotonic = BigInt(cp.libos.clock.monotonicNs);
        chain.apply(decodeCheckpoint(encodeCheckpoint(cp)));
        lvm.stop();
      },
    },
  });
  checkpointer = new Checkpointer(g.lvm, { tracker: g.tracker });
  const address = g.address();
  const port = Number(address.split(':').pop());
  const running = g.lvm.run();
  const client = await RespClient.connect(port);
  t.is(await client.call('SET', 'k', 'v'), 'OK');
  // A half-sent request stays in the guest's buffers; the connection will not survive.
  const raw = net.connect(port, '127.0.0.1');
  await new Promise((r) => raw.once('connect', r));
  raw.write('*2\r\n$3\r\nGET\r\n');
  await new Promise((r) => setTimeout(r, 50));
  capture = true;
  t.is(await client.call('PING'), 'PONG'); // wakes the guest: the next suspension is captured
  await running;
  g.os.closeAll();
  g.platform.closeAll();
  client.close();
  raw.destroy();
  t.is(chain.epoch, 1);

  const image = chain.image();
  const sockets = image.libos.fds.filter((f) => f.kind === 'socket');
  t.true(sockets.length >= 1, 'open connections are in the checkpoint');
  const platform = new NodePlatform({ stdin: null });
  const restored = await restoreFromImage(image, {
    guest: guestBytes('kv'), memoryLimitBytes: MEMORY_LIMIT_BYTES, abi: platform, cacheDir: TEST_CACHE_DIR, imageChoices: g.imageChoices,
  });
  t.is(restored.os.listeners()[0].address, address, 'listener re-bound to the same address');
  t.true(restored.os.clock.monotonic() >= capturedMonotonic, 'monotonic time continues from the checkpoint');
  const dead = restored.os.fds.list().filter(([, e]) => e.kind === 'socket');
  t.true(dead.length >= 1 && dead.every(([, e]) => e.kind === 'socket' && e.handle === null), 'connections come back dead');
  const again = restored.lvm.run();
  const c = await RespClient.connect(port);
  t.is(await c.call('GET', 'k'), 'v');
  t.is(await c.call('DBSIZE'), 1);
  // The guest saw its dead connections hang up and closed them.
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(restored.os.fds.list().filter(([, e]) => e.kind === 'socket' && e.handle === null), []);
  c.close();
  restored.lvm.stop();
  t.deepEqual(await again, { kind: 'exit', code: 0 });
  restored.os.closeAll();
  platform.closeAll();
});
