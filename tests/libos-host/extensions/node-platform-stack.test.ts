import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WOULD_BLOCK, type Handle, type HostAbi } from '../../../libos-host/abi/host-abi.js';
import type { MetricsExtension } from '../../../libos-host/extensions/metrics.js';
import { composeExtensions, faultSpec, parseExtensionSpec } from '../../../libos-host/extensions/registry.js';
import { NodePlatform } from '../../../libos-host/platform/node-platform.js';
import { openFileTraceSink } from '../../../libos-host/platform/trace-sink.js';
import { acceptOne } from '../../helpers/host-abi-io.js';

const WAIT_LIMIT_NS = 5_000_000_000n;
const MS = 1_000_000n;

/** Read once something is available, as the library OS would: a string of the bytes, or the errno. */
async function readWhenReady(abi: HostAbi, h: Handle): Promise<string> {
  const buf = new Uint8Array(1024);
  for (;;) {
    const r = abi.read(h, buf);
    if (typeof r === 'string') return r;
    if (r !== WOULD_BLOCK) return Buffer.from(buf.subarray(0, r)).toString();
    await abi.wait([{ handle: h, read: true, write: false }], abi.now('monotonic') + WAIT_LIMIT_NS);
  }
}

async function connectClient(platform: NodePlatform, listener: Handle): Promise<net.Socket> {
  const port = Number(platform.listenerAddress(listener)?.split(':').pop());
  const client = net.connect(port, '127.0.0.1');
  client.on('error', () => {});
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  return client;
}

test('over the real platform, fault fails the 3rd read with ECONNRESET and the trace file records every call', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wb-ext-'));
  const file = join(dir, 'trace.jsonl');
  const platform = new NodePlatform({ stdin: null });
  const stack = composeExtensions(platform, [
    faultSpec('call=read,errno=ECONNRESET,after=2,count=1'),
    parseExtensionSpec(`trace:file=${file},data=1`),
    parseExtensionSpec('metrics'),
  ], { openTraceFile: openFileTraceSink });
  t.teardown(() => { platform.closeAll(); rmSync(dir, { recursive: true, force: true }); });
  const abi = stack.abi;

  const l = await abi.listen('tcp.srv:127.0.0.1:0');
  const client = await connectClient(platform, l);
  t.teardown(() => client.destroy());
  const c = await acceptOne(abi, l);
  const results: string[] = [];
  for (const chunk of ['one', 'two', 'three']) {
    client.write(chunk);
    results.push(await readWhenReady(abi, c));
  }
  results.push(await readWhenReady(abi, c));
  t.deepEqual(results, ['one', 'two', 'ECONNRESET', 'three'], 'the failed read consumed nothing');

  const metrics = (stack.extensions[2] as MetricsExtension).snapshot();
  t.like(metrics.calls.read, { errors: 1, errorsByCode: { ECONNRESET: 1 } });
  t.is(metrics.bytesRead, 11);

  abi.close(c);
  await stack.dispose();
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const reads = lines.filter((r) => r.call === 'read' && r.result !== 'WOULD_BLOCK');
  t.deepEqual(reads.map((r) => r.result), [3, 3, 'ECONNRESET', 5]);
  t.is(reads[0].data, Buffer.from('one').toString('hex'));
  t.is(reads[0].handle, c);
  t.true(lines.every((r) => typeof r.t === 'string' && /^\d+$/.test(r.t as string) && typeof r.us === 'number'));
  t.like(lines[0], { call: 'listen', result: l, args: { uri: 'tcp.srv:127.0.0.1:0' } });
  t.like(lines.at(-1), { call: 'close', handle: c });
  const ts = lines.map((r) => BigInt(r.t as string));
  t.true(ts.every((v, i) => i === 0 || v >= ts[i - 1]), 'times are monotonic');
});

test('over the real platform, read latency withholds data and wakes the waiter when it expires', async (t) => {
  const platform = new NodePlatform({ stdin: null });
  const stack = composeExtensions(platform, [faultSpec('call=read,latency=50ms'), parseExtensionSpec('metrics')]);
  t.teardown(() => platform.closeAll());
  const abi = stack.abi;
  const l = await abi.listen('tcp.srv:127.0.0.1:0');
  const client = await connectClient(platform, l);
  t.teardown(() => client.destroy());
  const c = await acceptOne(abi, l);

  const sent = platform.now('monotonic');
  client.write('ping');
  t.is(await readWhenReady(abi, c), 'ping');
  const elapsed = platform.now('monotonic') - sent;
  t.true(elapsed >= 50n * MS, `data released after ${elapsed / MS} ms`);
  t.true(elapsed < 2_000n * MS);
  const waits = (stack.extensions[1] as MetricsExtension).snapshot().calls.wait?.count ?? 0;
  t.true(waits <= 3, `no busy loop while withheld: ${waits} waits`);
});

test('the file trace sink refuses an unwritable path at once with WB_HOST_IO', (t) => {
  const err = t.throws(() => openFileTraceSink('/nonexistent-dir-for-waterbear/t.jsonl'));
  t.is((err as { code?: string }).code, 'WB_HOST_IO');
});

test('the file trace sink flushes buffered lines on close', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wb-sink-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sink = openFileTraceSink(join(dir, 't.jsonl'));
  sink.write('{"a":1}');
  sink.write('{"a":2}');
  await sink.close();
  sink.write('{"a":3}');
  t.is(readFileSync(join(dir, 't.jsonl'), 'utf8'), '{"a":1}\n{"a":2}\n');
});
