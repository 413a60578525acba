/**
 * Does compressing checkpoints pay? Captures real checkpoints (KV guest after client writes;
 * compute guest mid-run) and measures, for no compression and deflate level 1: encoded size,
 * encode and decode time, and the time to ship one checkpoint on loopback (measured: a real
 * TCP transfer over 127.0.0.1) and on a modelled 1 Gbit/s link (bytes / 125 MB/s). A codec pays
 * when its total (encode + transfer + decode) beats no compression.
 *
 *   node --import tsx bench/checkpoint-compression.ts
 */
import net from 'node:net';
import { RespClient } from '../chaos/clients/resp-client.js';
import type { CheckpointData } from '../checkpoint/checkpoint-data.js';
import { Checkpointer } from '../checkpoint/checkpointer.js';
import { decodeCheckpoint, encodeCheckpoint } from '../checkpoint/format/checkpoint-codec.js';
import { launchTracked } from '../tests/checkpoint/helpers/checkpointing.js';

const LINK_BYTES_PER_S = 125e6;
const REPEAT = 5;

async function kvCheckpoints(): Promise<{ full: CheckpointData; incremental: CheckpointData }> {
  let cpr: Checkpointer | null = null;
  let want = false;
  const got: CheckpointData[] = [];
  const g = await launchTracked('kv', {
    tracker: 'shadow', listen: 1,
    hooks: { onSuspended: () => { if (want) { want = false; got.push(cpr!.capture()); } } },
  });
  cpr = new Checkpointer(g.lvm, { tracker: g.tracker });
  const running = g.lvm.run();
  const c = await RespClient.connect(Number(g.address().split(':').pop()));
  for (let i = 0; i < 2000; i++) await c.call('SET', `key:${i}`, `value-${i}-${'x'.repeat(i % 50)}`);
  want = true; await c.call('PING');
  for (let i = 0; i < 200; i++) await c.call('SET', `key:${i * 7}`, `new-${i}`);
  want = true; await c.call('PING');
  c.close(); g.lvm.stop(); await running; g.os.closeAll(); g.platform.closeAll();
  return { full: got[0], incremental: got[1] };
}

async function computeCheckpoint(): Promise<CheckpointData> {
  let cpr: Checkpointer | null = null;
  let out: CheckpointData | null = null;
  const g = await launchTracked('test/compute', {
    tracker: 'shadow', env: ['ROUNDS=30'],
    hooks: { onSuspended: (lvm) => { const cp = cpr!.capture(); if (out === null && !cp.full && cp.pages.length > 1000) out = cp; lvm.requestSuspend(); } },
  });
  cpr = new Checkpointer(g.lvm, { tracker: g.tracker });
  g.lvm.requestSuspend();
  await g.lvm.run();
  g.os.closeAll();
  return out!;
}

/** Measured loopback transfer time of `bytes` (ms): one TCP connection over 127.0.0.1. */
async function loopbackMs(bytes: Uint8Array): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const received = new Promise<number>((resolve) => server.once('connection', (s) => {
    let n = 0; // bytes received
      s.on('data', (d: Buffer) => { n += d.length; if (n >= bytes.length) { resolve(performance.now()); s.destroy(); } });
  }));
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const t0 = performance.now();
  sock.write(bytes);
  const t1 = await received;
  sock.destroy();
  server.close();
  return t1 - t0;
}

function time<T>(fn: () => T): { value: T; ms: number } {
  let best = Infinity;
  let value: T | undefined;
  for (let i = 0; i < REPEAT; i++) {
    const t = performance.now();
    value = fn();
    best = Math.min(best, performance.now() - t);
  }
  return { value: value as T, ms: best };
}

const cases: Array<[string, CheckpointData]> = [];
const kv = await kvCheckpoints();
cases.push(['KV full (2000 keys)', kv.full], ['KV incremental (200 SETs)', kv.incremental], ['compute incremental (8 MiB hashed)', await computeCheckpoint()]);
console.log('checkpoint | codec | bytes | ratio | encode ms | decode ms | loopback total ms | 1 Gbit/s total ms');
for (const [name, cp] of cases) {
  const base = encodeCheckpoint(cp).length;
  for (const compression of ['none', 'deflate'] as const) {
    const enc = time(() => encodeCheckpoint(cp, { compression }));
    const dec = time(() => decodeCheckpoint(enc.value));
    let lo = Infinity;
    for (let i = 0; i < REPEAT; i++) lo = Math.min(lo, await loopbackMs(enc.value));
    const link = (enc.value.length / LINK_BYTES_PER_S) * 1000;
    console.log(`${name} | ${compression} | ${enc.value.length} | ${(base / enc.value.length).toFixed(2)} | ${enc.ms.toFixed(2)} | ${dec.ms.toFixed(2)} | ` +
      `${(enc.ms + lo + dec.ms).toFixed(2)} | ${(enc.ms + link + dec.ms).toFixed(2)}`);
  }
}
