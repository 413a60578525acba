import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { packageFile } from '../../libos-host/platform/package-files.js';
import type { ClusterConfig } from '../config/cluster-config.js';
import type { StatusReply } from '../wire/replication-wire.js';
import { StatusClient } from '../wire/status-client.js';
import { checkBeforeStart } from './start-checks.js';

/** Wait before restarting a member that died (a crash loop must not spin). */
export const RESTART_DELAY_MS = 500;
/** Status RPC deadline. */
export const STATUS_TIMEOUT_MS = 1000;

export interface MemberProcess {
  id: string;
  kind: 'replica' | 'witness';
  child: ChildProcess | null;
  restarts: number;
  startedAt: number;
}

export interface LocalClusterOptions {
  configPath: string;
  config: ClusterConfig;
  /** Restart members that exit. Default true. */
  restart?: boolean;
  /** Where members' stderr goes (default: inherited; a number is an open file descriptor). */
  stdio?: 'inherit' | 'ignore' | 'pipe' | number;
  /** Where members' stdout goes (a witness's banner, a guest's console): default inherited. */
  stdout?: 'inherit' | 'ignore';
  env?: NodeJS.ProcessEnv;
  /** Extra arguments for every `waterbear replica` (e.g. test-only switches). */
  replicaArgs?: string[];
  /**
   * A command that runs each member (it must exec it, keeping the PID), e.g. `ip netns exec NS`
   * for the chaos harness's --netns. Default: none, node is started directly.
   */
  launchPrefix?: string[];
}

/**
 * Runs every member of a cluster file as its own process on this machine (the README's main job
 * and the chaos harness use it): `waterbear replica` per replica, `waterbear witness` per witness.
 * Restarts members that die, so a killed primary comes back and rejoins as a backup.
 * Events: 'spawn' (id, pid), 'exit' (id, code, signal) for every exit, 'restart' (id, code,
 * signal) when an exited member is started again (not while the cluster stops).
 */
export class LocalCluster extends EventEmitter {
  readonly members = new Map<string, MemberProcess>();
  private stopping = false;
  /** One channel per replica for status requests (made by start, opened at the first request, closed by stop). */
  private statusClient: StatusClient | null = null;

  constructor(private readonly o: LocalClusterOptions) {
    super();
    for (const r of o.config.replicas) this.members.set(r.id, { id: r.id, kind: 'replica', child: null, restarts: 0, startedAt: 0 });
    for (const w of o.config.witnesses) this.members.set(w.id, { id: w.id, kind: 'witness', child: null, restarts: 0, startedAt: 0 });
  }

  /**
   * Check what members would refuse (`checkBeforeStart`) and make the status client, which reads
   * and checks the cluster's TLS files: a bad one is a WB_CONFIG_INVALID here instead of members
   * that fail and are restarted. Starts nothing. `start`
   * calls it; a caller that does something irreversible before starting (`waterbear up` clears
   * the data folders) calls it first, so that a refused start loses nothing.
   */
  check(): void {
    checkBeforeStart(this.o.config);
    this.statusClient ??= new StatusClient(this.o.config.tls, STATUS_TIMEOUT_MS);
  }

  /** Start every member, after `check`. */
  start(): void {
    this.check();
    for (const m of this.members.values()) this.spawnMember(m);
  }

  /** Start a member again (after the harness killed it without a restart policy). */
  startMember(id: string): void {
    const m = this.members.get(id);
    if (m !== undefined && m.child === null) this.spawnMember(m);
  }

  private spawnMember(m: MemberProcess): void {
    const args = [packageFile('cli/waterbear.js'), m.kind, '--config', this.o.configPath, '--id', m.id, ...(m.kind === 'replica' ? this.o.replicaArgs ?? [] : [])];
    const prefix = this.o.launchPrefix ?? [];
    const [cmd, cmdArgs] = prefix.length === 0 ? [process.execPath, args] : [prefix[0], [...prefix.slice(1), process.execPath, ...args]];
    const child = spawn(cmd, cmdArgs, { stdio: ['ignore', this.o.stdout ?? 'inherit', this.o.stdio ?? 'inherit'], env: { ...process.env, ...this.o.env } });
    m.child = child;
    m.startedAt = Date.now();
    this.emit('spawn', m.id, child.pid);
    child.on('exit', (code, signal) => {
      if (m.child === child) m.child = null;
      this.emit('exit', m.id, code, signal);
      if (!this.stopping && (this.o.restart ?? true)) {
        setTimeout(() => {
          if (this.stopping || m.child !== null) return;
          m.restarts++;
          // Only now: a member that exited because the whole cluster is being stopped (Ctrl-C
          // reaches every process of the terminal's group before stop() runs) is not restarted.
          this.emit('restart', m.id, code, signal);
          this.spawnMember(m);
        }, RESTART_DELAY_MS);
      }
    });
  }

  pid(id: string): number | undefined { return this.members.get(id)?.child?.pid; }

  /** Ask one replica for its status; null when it does not answer (or after stop). */
  status(id: string): Promise<StatusReply | null> {
    const member = this.o.config.replicas.find((r) => r.id === id);
    if (member === undefined || this.stopping) return Promise.resolve(null);
    this.statusClient ??= new StatusClient(this.o.config.tls, STATUS_TIMEOUT_MS);
    return this.statusClient.probe(member.address).then((p) => (p.ok ? p.reply : null));
  }

  /** The replica that says it is primary of the highest view, or null. */
  async primary(): Promise<StatusReply | null> {
    const all = await Promise.all(this.o.config.replicas.map((r) => this.status(r.id)));
    let best: StatusReply | null = null;
    for (const s of all) if (s !== null && s.role === 'primary' && (best === null || s.view > best.view)) best = s;
    return best;
  }

  /** Kill every member this supervisor started (by PID) and wait for them. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.stopping = true;
    this.statusClient?.close();
    this.statusClient = null;
    await Promise.all([...this.members.values()].map((m) => new Promise<void>((resolve) => {
      const c = m.child;
      if (c === null || c.exitCode !== null) { resolve(); return; }
      const force = setTimeout(() => c.kill('SIGKILL'), 3000);
      c.once('exit', () => { clearTimeout(force); resolve(); });
      c.kill(signal);
    })));
  }
}
