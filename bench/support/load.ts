import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { encodeCommand, RespParser } from '../../chaos/clients/resp.js';
import { quantile } from '../lib/stats.js';
import { hasCommand } from './servers.js';

export interface LoadSpec {
  test: 'set' | 'get';
  clients: number;
  requests: number;
  pipeline: number;
}

export interface LoadResult { tool: string; rps: number; p50Ms: number | null; p99Ms: number | null }

/** Run the load with redis-benchmark when installed, else with our own generator. */
export async function runLoad(port: number, spec: LoadSpec): Promise<LoadResult> {
  if (hasCommand('redis-benchmark')) return redisBenchmark(port, spec);
  return ownLoad(port, spec);
}

/** redis-benchmark --csv: "test","rps","avg_latency_ms","min","p50","p95","p99","max". */
function redisBenchmark(port: number, spec: LoadSpec): LoadResult {
  const r = spawnSync('redis-benchmark', [
    '-h', '127.0.0.1', '-p', String(port), '-t', spec.test, '-n', String(spec.requests), '-c', String(spec.clients),
    '-P', String(spec.pipeline), '-r', '10000', '-d', '16', '--csv',
  ], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`redis-benchmark failed: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').find((l) => l.toUpperCase().startsWith(`"${spec.test.toUpperCase()}"`));
  if (line === undefined) throw new Error(`unexpected redis-benchmark output: ${r.stdout}`);
  const cols = line.split(',').map((c) => c.replace(/"/g, ''));
  return { tool: 'redis-benchmark', rps: Number(cols[1]), p50Ms: Number(cols[4]), p99Ms: Number(cols[6]) };
}

/** Our pipelined generator: `clients` connections, each keeping `pipeline` requests in flight. */
async function ownLoad(port: number, spec: LoadSpec): Promise<LoadResult> {
  const perClient = Math.ceil(spec.requests / spec.clients);
  const latencies: number[] = [];
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: spec.clients }, (_, ci) => new Promise<void>((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    const parser = new RespParser();
    const sentAt: bigint[] = [];
    let sent = 0;
    let done = 0;
    const send = (): void => {
      const batch: Buffer[] = [];
      while (sent < perClient && sent - done < spec.pipeline) {
        const key = `key:${(ci * perClient + sent) % 10000}`;
        batch.push(encodeCommand(spec.test === 'set' ? ['SET', key, 'xxxxxxxxxxxxxxxx'] : ['GET', key]));
        sentAt.push(process.hrtime.bigint());
        sent++;
      }
      if (batch.length > 0) sock.write(Buffer.concat(batch));
    };
    sock.on('connect', send);
    sock.on('data', (d: Buffer) => {
      parser.feed(d);
      while (parser.next() !== undefined) {
        latencies.push(Number(process.hrtime.bigint() - sentAt[done]) / 1e6);
        done++;
      }
      if (done >= perClient) { sock.end(); resolve(); } else send();
    });
    sock.on('error', reject);
  })));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  latencies.sort((a, b) => a - b);
  return { tool: 'own-generator', rps: (perClient * spec.clients) / secs, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99) };
}
