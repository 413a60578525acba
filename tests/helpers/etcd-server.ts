/**
 * A real, single-member etcd for tests and benchmarks: `etcd` (Debian's etcd-server) started with a
 * temporary data directory on free loopback ports, waited for until /health says so, and stopped by
 * the PID this helper spawned (never by name). `kill9()` + `restart()` simulate a crash and a recovery
 * on the same ports and data directory, so clients reconnect to the same endpoint.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../bench/support/servers.js';

/** How long etcd may take to report healthy after spawning. */
export const ETCD_START_TIMEOUT_MS = 30_000;
/** Pause between health probes while etcd starts. */
const HEALTH_POLL_INTERVAL_MS = 50;
/** Timeout of one health probe. */
const HEALTH_PROBE_TIMEOUT_MS = 1_000;
/** How long a SIGKILLed etcd may take to be reaped. */
const EXIT_WAIT_MS = 10_000;

export interface EtcdServerOptions {
  /** etcd's raft heartbeat, ms (etcd default 100). */
  heartbeatIntervalMs?: number;
  /**
   * etcd's election timeout, ms (etcd default 1000). It also sets etcd's minimum lease TTL,
   * ceil(1.5 · election timeout) in whole seconds: 500 ms allows 1 s leases.
   */
  electionTimeoutMs?: number;
  /**
   * Serve clients over TLS and require client certificates signed by `caFile` (`--client-cert-auth`;
   * `clientCertAuth: false` leaves both off: any client that trusts the server may connect).
   * `clientCertFile`/`clientKeyFile` are used by the helper's own health probe.
   */
  tls?: { certFile: string; keyFile: string; caFile: string; clientCertFile: string; clientKeyFile: string; clientCertAuth?: boolean };
}

export interface EtcdServer {
  /** Client endpoint, e.g. `http://127.0.0.1:40123`. */
  readonly endpoint: string;
  readonly dataDir: string;
  /** PID of the running etcd, or null while it is down. */
  pid(): number | null;
  /** SIGKILL the etcd this helper started and wait until it is reaped. */
  kill9(): Promise<void>;
  /** Start etcd again on the same ports and data directory; resolves when healthy. */
  restart(): Promise<void>;
  /** Kill etcd (if running) and delete its data directory. Idempotent. */
  stop(): Promise<void>;
}

function probeHealth(endpoint: string, tls: EtcdServerOptions['tls']): Promise<boolean> {
  return new Promise((resolve) => {
    const get = tls === undefined ? http.get : https.get;
    const tlsOptions = tls === undefined
      ? {}
      : { ca: readFileSync(tls.caFile), cert: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile), servername: 'localhost' };
    const req = get(`${endpoint}/health`, { timeout: HEALTH_PROBE_TIMEOUT_MS, ...tlsOptions }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(res.statusCode === 200 && /"health"\s*:\s*"true"/.test(body)));
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, EXIT_WAIT_MS);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
  });
}

/**
 * Spawns etcd and resolves once it is healthy.
 * @throws Error with etcd's stderr when it exits early or does not become healthy in time.
 */
export async function startEtcd(options: EtcdServerOptions = {}): Promise<EtcdServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'wb-etcd-'));
  // freePort reserves each port it returns: the two differ.
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', 'wbtest',
    '--data-dir', dataDir,
    '--listen-client-urls', endpoint,
    '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `wbtest=${peer}`,
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', `wbtest-${clientPort}`,
    '--heartbeat-interval', String(options.heartbeatIntervalMs ?? 100),
    '--election-timeout', String(options.electionTimeoutMs ?? 1000),
    '--logger', 'zap',
    '--log-level', 'error',
    ...(options.tls === undefined
      ? []
      : ['--cert-file', options.tls.certFile, '--key-file', options.tls.keyFile,
        // etcd checks client certificates against a trusted CA file even without --client-cert-auth.
        ...(options.tls.clientCertAuth === false ? [] : ['--trusted-ca-file', options.tls.caFile, '--client-cert-auth'])]),
  ];
  // Only PATH and HOME: an ETCD_* variable of the caller's environment must not change the flags.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir() };
  let child: ChildProcess | null = null;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const c = spawn('etcd', args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    let stderr = '';
    c.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-8_000); });
    let spawnError: Error | null = null;
    c.once('error', (err) => { spawnError = err; });
    const started = performance.now();
    for (;;) {
      if (spawnError !== null) throw new Error(`could not spawn etcd: ${(spawnError as Error).message}`);
      if (c.exitCode !== null || c.signalCode !== null) {
        throw new Error(`etcd exited early (${c.exitCode ?? c.signalCode}): ${stderr}`);
      }
      if (await probeHealth(endpoint, options.tls)) return;
      if (performance.now() - started > ETCD_START_TIMEOUT_MS) {
        c.kill('SIGKILL');
        await waitExit(c);
        throw new Error(`etcd did not become healthy on ${endpoint} within ${ETCD_START_TIMEOUT_MS} ms: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, HEALTH_POLL_INTERVAL_MS));
    }
  };

  const kill9 = async (): Promise<void> => {
    const c = child as ChildProcess | null;
    child = null;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGKILL');
    await waitExit(c);
  };

  try {
    await launch();
  } catch (err) {
    await kill9();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }

  return {
    endpoint,
    dataDir,
    pid: () => (child as ChildProcess | null)?.pid ?? null,
    kill9,
    restart: async () => {
      if (stopped) throw new Error('etcd test server was stopped');
      await kill9();
      await launch();
    },
    stop: async () => {
      stopped = true;
      await kill9();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
