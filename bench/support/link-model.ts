/**
 * A network link model for benchmarks: a network namespace (made here, removed here) whose
 * loopback device sends traffic to or from SHAPED_NET through an HTB class limited to
 * LINK_RATE_MBIT, and everything else unshaped. A cluster whose members listen on SHAPED_NET
 * addresses then replicates over the modelled link while its clients stay on 127.0.0.1.
 *
 * Only the rate is modelled. This kernel has no netem, so a LAN's ~50 µs of propagation delay
 * is not; both directions share one queue (acknowledgements are ~60 bytes, so the checkpoint
 * direction has nearly all of it).
 */
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { NETNS_COMMAND_TIMEOUT_MS, namespacesByMaker } from '../../chaos/cluster/netns.js';
import { hasCommand } from './servers.js';

/** The modelled link's rate: a 1 Gbit/s Ethernet link (issue 3's and issue 5's link model). */
export const LINK_RATE_MBIT = 1000;
/** Traffic to or from these loopback addresses crosses the modelled link. */
export const SHAPED_NET = '127.0.1.0/24';
/** Addresses in SHAPED_NET for a cluster's members (replica a, replica b, witness w). */
export const SHAPED_MEMBER_HOSTS = ['127.0.1.1', '127.0.1.2', '127.0.1.3'] as const;
/** Unshaped traffic (clients to the service) gets a class far above anything loopback carries. */
const UNSHAPED_RATE_MBIT = 100_000;

export interface ShapedNamespace {
  name: string;
  /** argv that runs `argv` inside the namespace. */
  wrap(argv: readonly string[]): string[];
  /** Bytes the shaped class has sent so far (proves traffic crossed the model). */
  shapedBytes(): number;
  /** Remove the namespace (and its qdisc with it). Idempotent. */
  destroy(): void;
}

/** Why the link model cannot run here, or null when it can (root, ip and tc present). */
export function linkModelUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'it needs root (network namespaces and tc)';
  for (const c of ['ip', 'tc']) if (!hasCommand(c)) return `${c} is not installed (apt-get install iproute2)`;
  return null;
}

function run(argv: readonly string[]): string {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: NETNS_COMMAND_TIMEOUT_MS });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Namespaces are named NAMESPACE_PREFIX + the PID of the process that made them. */
export const NAMESPACE_PREFIX = 'wb-link-';

/** Remove link-model namespaces whose maker is gone (a run killed by SIGKILL leaves its own). */
function removeStaleNamespaces(): void {
  for (const o of namespacesByMaker(new RegExp(`^${NAMESPACE_PREFIX}(\\d+)$`)).orphans) {
    spawnSync('ip', ['netns', 'del', o.name], { timeout: NETNS_COMMAND_TIMEOUT_MS });
  }
}

/**
 * Create this process's namespace (NAMESPACE_PREFIX + PID) with the shaped loopback; throws
 * (having removed it) when a step fails. One per process at a time.
 */
export function createShapedNamespace(): ShapedNamespace {
  removeStaleNamespaces();
  const name = `${NAMESPACE_PREFIX}${process.pid}`;
  run(['ip', 'netns', 'add', name]);
  let destroyed = false;
  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    spawnSync('ip', ['netns', 'del', name], { timeout: NETNS_COMMAND_TIMEOUT_MS });
  };
  const tc = (...args: string[]): string => run(['ip', 'netns', 'exec', name, 'tc', ...args]);
  try {
    run(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    // r2q keeps HTB's quantum sane at these rates (it warns otherwise).
    tc('qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '20', 'r2q', '1000');
    tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', `${LINK_RATE_MBIT}mbit`, 'ceil', `${LINK_RATE_MBIT}mbit`);
    tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', `${UNSHAPED_RATE_MBIT}mbit`, 'ceil', `${UNSHAPED_RATE_MBIT}mbit`);
    tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'dst', SHAPED_NET, 'flowid', '1:10');
    tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '2', 'u32', 'match', 'ip', 'src', SHAPED_NET, 'flowid', '1:10');
  } catch (err) {
    destroy();
    throw err;
  }
  return {
    name,
    wrap: (argv) => ['ip', 'netns', 'exec', name, ...argv],
    shapedBytes: () => {
      const m = /class htb 1:10 [^\n]*\n\s*Sent (\d+) bytes/.exec(tc('-s', 'class', 'show', 'dev', 'lo'));
      return m === null ? 0 : Number(m[1]);
    },
    destroy,
  };
}

/** Bytes one TCP transfer sends to measure a link's rate. */
const PROBE_BYTES = 64 * 1024 * 1024;
const PROBE_CHUNK_BYTES = 1024 * 1024;

/**
 * Gbit/s of one TCP transfer of PROBE_BYTES to a listener on `host` (in this process's
 * namespace): shows the model is in force (a SHAPED_NET host) and what unshaped loopback does.
 */
export function probeTcpGbps(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => {
      let received = 0;
      const t0 = process.hrtime.bigint();
      s.on('data', (d: Buffer) => {
        received += d.length;
        if (received < PROBE_BYTES) return;
        const ns = Number(process.hrtime.bigint() - t0);
        s.destroy();
        server.close();
        resolve(received * 8 / ns);
      });
    });
    server.once('error', reject);
    server.listen(0, host, () => {
      const c = net.connect((server.address() as net.AddressInfo).port, host, () => {
        const chunk = Buffer.alloc(PROBE_CHUNK_BYTES);
        let sent = 0;
        const pump = (): void => {
          while (sent < PROBE_BYTES) {
            sent += chunk.length;
            if (!c.write(chunk)) { c.once('drain', pump); return; }
          }
        };
        pump();
      });
      c.on('error', () => { /* the server ends the transfer */ });
    });
  });
}
