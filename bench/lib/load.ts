/**
 * Load generators for the KV guest that do not block the event loop (the LVM under test runs in
 * this process): redis-benchmark in a child process when installed, else our own pipelined RESP
 * client over loopback.
 */
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { encodeCommand, RespParser } from '../../chaos/clients/resp.js';
import { hasCommand } from '../support/servers.js';

export interface KvLoad {
  test: 'set' | 'get';
  clients: number;
  requests: number;
  pipeline: number;
  /** Value size in bytes (SET). */
  valueBytes: number;
  /** Distinct keys. */
  keys: number;
}

export interface KvLoadResult { tool: string; rps: number }

/** Run the load against 127.0.0.1:`port`; resolves with requests per second. */
export async function runKvLoad(port: number, load: KvLoad): Promise<KvLoadResult> {
  return hasCommand('redis-benchmark') ? redisBenchmark(port, load) : ownLoad(port, load);
}

function redisBenchmark(port: number, load: KvLoad): Promise<KvLoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-benchmark', [
      '-h', '127.0.0.1', '-p', String(port), '-t', load.test, '-n', String(load.requests), '-c', String(load.clients),
      '-P', String(load.pipeline), '-r', String(load.keys), '-d', String(load.valueBytes), '--csv',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').find((l) => l.toUpperCase().startsWith(`"${load.test.toUpperCase()}"`));
      if (code !== 0 || line === undefined) { reject(new Error(`redis-benchmark failed (${code}): ${err || out}`)); return; }
      resolve({ tool: 'redis-benchmark', rps: Number(line.split(',')[1].replace(/"/g, '')) });
    });
  });
}

/** `clients` connections, each keeping `pipeline` requests in flight. */
async function ownLoad(port: number, load: KvLoad): Promise<KvLoadResult> {
  const perClient = Math.ceil(load.requests / load.clients);
  const value = 'x'.repeat(load.valueBytes);
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: load.clients }, (_, ci) => new Promise<void>((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    const parser = new RespParser();
    let sent = 0;
    let done = 0;
    const send = (): void => {
      const batch: Buffer[] = [];
      while (sent < perClient && sent - done < load.pipeline) {
        const key = `key:${(ci * perClient + sent) % load.keys}`;
        batch.push(encodeCommand(load.test === 'set' ? ['SET', key, value] : ['GET', key]));
        sent++;
      }
      if (batch.length > 0) sock.write(Buffer.concat(batch));
    };
    sock.on('connect', send);
    sock.on('data', (d: Buffer) => {
      parser.feed(d);
      while (parser.next() !== undefined) done++;
      if (done >= perClient) { sock.end(); resolve(); } else send();
    });
    sock.on('error', reject);
  })));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  return { tool: 'own RESP generator', rps: (perClient * load.clients) / secs };
}
