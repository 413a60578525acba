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

test('memory contents that write themselves replace the whole memory, data segments included; when they throw, the restore is discarded', async (t) => {
  const chain = new CheckpointChain();
  let checkpointer: Checkpointer | null = null;
  const g = await launchTracked('kv', {
    tracker: 'shadow', listen: 1,
    hooks: { onSuspended: (lvm: Lvm) => { chain.apply(checkpointer!.capture()); lvm.stop(); } },
  });
  checkpointer = new Checkpointer(g.lvm, { tracker: g.tracker });
  const address = g.address();
  await g.lvm.run();
  g.os.closeAll();
  g.platform.closeAll();
  const image = chain.image();
  // A fresh instance's memory holds the data segments, which a restore must not leave behind.
  const stub = (): number => 0;
  const imports: WebAssembly.Imports = {};
  for (const imp of WebAssembly.Module.imports(g.image.module)) {
    if (imp.kind === 'function') ((imports[imp.module] ??= {}) as Record<string, unknown>)[imp.name] = stub;
  }
  const fresh = new WebAssembly.Instance(g.image.module, imports).exports.memory as WebAssembly.Memory;
  t.true(new Uint8Array(fresh.buffer).some((b) => b !== 0), 'a fresh instance has data in memory (or the test proves nothing)');
  const options = { guest: guestBytes('kv'), memoryLimitBytes: MEMORY_LIMIT_BYTES, cacheDir: TEST_CACHE_DIR, imageChoices: g.imageChoices };

  // Contents that write one page only: everything else must read zero, as the image says.
  const platform = new NodePlatform({ stdin: null });
  t.teardown(() => platform.closeAll());
  const page = Uint8Array.from({ length: 4096 }, (_, i) => (i % 251) + 1);
  const sparse = { ...image, lvm: { ...image.lvm, memory: { byteLength: image.lvm.memory.length, writeInto: (dst: Uint8Array) => { dst.set(page, 8192); } } } };
  const restored = await restoreFromImage(sparse, { ...options, abi: platform });
  const bytes = new Uint8Array(restored.lvm.memory.buffer);
  t.is(bytes.length, image.lvm.memory.length);
  t.is(Buffer.compare(bytes.subarray(8192, 8192 + 4096), page), 0, 'the written page');
  t.true(bytes.subarray(0, 8192).every((b) => b === 0) && bytes.subarray(8192 + 4096).every((b) => b === 0), 'every other byte is zero');
  restored.os.closeAll();

  // Contents that fail (a corrupt page): the error reaches the caller and the listener is closed again.
  const failing = { ...image, lvm: { ...image.lvm, memory: { byteLength: image.lvm.memory.length, writeInto: () => { throw new Error('page 3 is corrupt'); } } } };
  await t.throwsAsync(restoreFromImage(failing, { ...options, abi: platform }), { message: 'page 3 is corrupt' });
  const again = await restoreFromImage(image, { ...options, abi: platform });
  t.is(again.os.listeners()[0].address, address, 'the address was free again');
  again.os.closeAll();
});
