import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RespClient } from '../../chaos/clients/resp-client.js';

/** How long a server may take to answer its first PING. */
export const SERVER_START_TIMEOUT_MS = 60_000;

/** A server process the benchmark started (and only it stops, by PID). */
export interface BenchServer { name: string; port: number; child: ChildProcess; stop(): Promise<void> }

/** Where port reservations live: one file per port handed out, shared by every process. */
const PORT_LOCK_DIR = join(tmpdir(), 'waterbear-port-locks');
/** A reservation older than this is stale (its run is long over). */
const PORT_LOCK_TTL_MS = 10 * 60_000;

function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A free loopback port, not handed out to any other process in the last 10 minutes. Binding
 * port 0 alone is not enough when test files run in parallel: a port closed here can be given
 * to another process before our child binds it, and two clusters would share a service address.
 */
export async function freePort(): Promise<number> {
  mkdirSync(PORT_LOCK_DIR, { recursive: true });
  for (let attempt = 0; ; attempt++) {
    const port = await ephemeralPort();
    const lock = join(PORT_LOCK_DIR, String(port));
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return port;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > PORT_LOCK_TTL_MS) { writeFileSync(lock, String(process.pid)); return port; }
      } catch { /* raced with another process: try another port */ }
      if (attempt > 100) throw new Error('freePort: could not reserve a port');
    }
  }
}

/** Start `cmd args` and wait until a Redis-protocol PING on `port` answers. */
export async function startServer(name: string, port: number, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<BenchServer> {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited early (${child.exitCode}): ${stderr}`);
    try {
      const c = await RespClient.connect(port, '127.0.0.1', 1000);
      const pong = await c.call('PING');
      c.close();
      if (pong === 'PONG') break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error(`${name} did not answer PING on ${port}: ${stderr}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name, port, child,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) { resolve(); return; }
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    }),
  };
}

/** Re-exported for the benches. */
export { hasCommand } from '../../chaos/cluster/has-command.js';
