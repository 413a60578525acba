import { createWriteStream, mkdirSync, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { WaterbearError } from '../../libos-host/errors.js';
import { loadClusterConfig, type ClusterConfig } from '../../replica/config/cluster-config.js';
import { LocalCluster } from '../../replica/supervisor/local-cluster.js';
import type { StatusReply } from '../../replica/wire/replication-wire.js';
import { ProxyMesh, linkName } from '../proxy/proxy-mesh.js';
import type { Prng } from '../random/prng.js';
import type { ClusterEvent } from '../workload/history.js';
import { freePorts } from './ports.js';

/** How long `kill` waits for a killed member to be reaped. */
export const KILL_WAIT_MS = 5000;
/** Log level of the members (their stderr goes to logs/<id>.log in the run folder). */
export const DEFAULT_MEMBER_LOG_LEVEL = 'info';

export interface ChaosClusterOptions {
  /** The cluster file to test: its guest, replication settings and member ids are used. */
  baseConfigPath: string;
  /** Run folder: generated cluster files and member logs go under it. */
  dir: string;
  /** Where the members' data folders go (a temp folder). */
  dataDir: string;
  prng: Prng;
  nowMs: () => number;
  /** Extra environment for every member (e.g. the test-only unsafe switch). */
  env?: NodeJS.ProcessEnv;
  memberLogLevel?: string;
  onEvent?: (e: ClusterEvent) => void;
}

/**
 * The cluster under test: every member of the cluster file as its own process on loopback
 * (LocalCluster, one per member), on free ports, with a fault proxy on every directed link.
 *
 * Each member gets its own cluster file in which its own address is its real gRPC port and
 * every peer's address is the proxy port of the link from it to that peer; the harness itself
 * (status polling) uses the real ports. Members are not restarted automatically: the nemesis
 * restarts what it killed, and a member that dies on its own is recorded as a crash and started
 * again.
 */
export class ChaosCluster {
  readonly replicaIds: string[];
  readonly witnessIds: string[];
  private readonly supervisors = new Map<string, LocalCluster>();
  private readonly paused = new Set<string>();
  private readonly expectedExit = new Set<string>();
  private readonly logs = new Map<string, WriteStream>();
  private stopping = false;
  crashes = 0;

  private constructor(
    private readonly o: ChaosClusterOptions,
    /** The cluster as the harness sees it: real addresses. */
    readonly config: ClusterConfig,
    readonly servicePort: number,
    readonly mesh: ProxyMesh,
    readonly memberFiles: ReadonlyMap<string, string>,
  ) {
    this.replicaIds = config.replicas.map((r) => r.id);
    this.witnessIds = config.witnesses.map((w) => w.id);
  }

  get memberIds(): string[] { return [...this.replicaIds, ...this.witnessIds]; }

  /** Generate the cluster files, start the proxies (not the members). */
  static async create(o: ChaosClusterOptions): Promise<ChaosCluster> {
    const base = loadClusterConfig(o.baseConfigPath);
    if (base.coordinator.backend !== 'raft') {
      throw new WaterbearError('WB_CONFIG_INVALID', `${o.baseConfigPath}: chaos runs the embedded Raft coordinator only (its traffic goes through the fault proxies); got backend ${base.coordinator.backend}`);
    }
    const raw = parseYaml(readFileSync(o.baseConfigPath, 'utf8')) as Record<string, unknown>;
    const members = [...base.replicas, ...base.witnesses].map((m) => m.id);
    const linkCount = members.length * (members.length - 1);
    const ports = await freePorts(1 + members.length + linkCount);
    const servicePort = ports[0];
    const real = new Map(members.map((id, i) => [id, ports[1 + i]]));
    const proxyPorts = new Map<string, number>();
    let k = 1 + members.length;
    for (const a of members) for (const b of members) if (a !== b) proxyPorts.set(linkName(a, b), ports[k++]);

    mkdirSync(o.dir, { recursive: true });
    const rawGuest = (raw.guest ?? {}) as Record<string, unknown>;
    const guest: Record<string, unknown> = { ...rawGuest, module: base.guest.module };
    if (base.guest.dirs.length > 0) guest.dirs = Object.fromEntries(base.guest.dirs.map((d) => [d.guestPath, d.hostPath]));
    const doc = (self: string | null): Record<string, unknown> => {
      const addr = (id: string): string => `127.0.0.1:${self === null || self === id ? real.get(id) : proxyPorts.get(linkName(self, id))}`;
      const member = (id: string): Record<string, unknown> => ({ id, address: addr(id), dataDir: join(o.dataDir, id) });
      return {
        cluster: base.cluster,
        guest,
        listen: [`127.0.0.1:${servicePort}`],
        replicas: base.replicas.map((r) => member(r.id)),
        witnesses: base.witnesses.map((w) => member(w.id)),
        coordinator: { backend: 'raft' },
        ...(raw.replication !== undefined ? { replication: raw.replication } : {}),
        ...(base.tls !== null ? { tls: base.tls } : {}),
      };
    };
    const header = (who: string): string => `# Generated by waterbear chaos from ${o.baseConfigPath}: ${who}\n`;
    const harnessFile = join(o.dir, 'cluster.yaml');
    writeFileSync(harnessFile, header('real addresses (the harness polls these)') + stringifyYaml(doc(null)));
    const memberFiles = new Map<string, string>();
    for (const id of members) {
      const f = join(o.dir, `cluster-${id}.yaml`);
      writeFileSync(f, header(`member ${id}; its peers are reached through the fault proxies`) + stringifyYaml(doc(id)));
      loadClusterConfig(f); // validate what we generated
      memberFiles.set(id, f);
    }
    const config = loadClusterConfig(harnessFile);
    const mesh = await ProxyMesh.start(members.map((id) => ({ id, host: '127.0.0.1', port: real.get(id)! })), proxyPorts, o.prng.fork('mesh'));
    return new ChaosCluster(o, config, servicePort, mesh, memberFiles);
  }

  /** Start every member. */
  start(): void {
    mkdirSync(join(this.o.dir, 'logs'), { recursive: true });
    for (const id of this.memberIds) this.startMember(id);
  }

  private supervisor(id: string): LocalCluster {
    let s = this.supervisors.get(id);
    if (s === undefined) {
      s = new LocalCluster({
        configPath: this.memberFiles.get(id)!, config: this.config, restart: false, stdio: 'pipe',
        env: { WATERBEAR_LOG_LEVEL: this.o.memberLogLevel ?? DEFAULT_MEMBER_LOG_LEVEL, ...this.o.env },
      });
      const log = createWriteStream(join(this.o.dir, 'logs', `${id}.log`), { flags: 'a' });
      this.logs.set(id, log);
      s.on('spawn', (mid: string, pid: number) => {
        if (mid !== id) return;
        s!.members.get(id)?.child?.stderr?.on('data', (d: Buffer) => log.write(d));
        this.event({ atMs: this.o.nowMs(), kind: 'spawn', member: id, detail: `pid ${pid}` });
      });
      s.on('exit', (mid: string, code: number | null, signal: string | null) => {
        if (mid !== id) return;
        this.paused.delete(id);
        const how = signal ?? `code ${code}`;
        if (this.expectedExit.delete(id) || this.stopping) {
          this.event({ atMs: this.o.nowMs(), kind: 'exit', member: id, detail: how });
          return;
        }
        // Nobody killed it: a crash. Record it and bring it back, like a supervisor would.
        this.crashes++;
        this.event({ atMs: this.o.nowMs(), kind: 'crash', member: id, detail: `exited on its own (${how}); restarting it` });
        setTimeout(() => { if (!this.stopping) s!.startMember(id); }, 500);
      });
      this.supervisors.set(id, s);
    }
    return s;
  }

  startMember(id: string): void {
    if (this.stopping) return;
    this.supervisor(id).startMember(id);
  }

  pid(id: string): number | undefined { return this.supervisors.get(id)?.pid(id); }
  isRunning(id: string): boolean { return this.pid(id) !== undefined; }
  isPaused(id: string): boolean { return this.paused.has(id); }

  /** kill -9 `id` and wait until it is gone. */
  async kill(id: string): Promise<void> {
    const s = this.supervisors.get(id);
    const child = s?.members.get(id)?.child ?? null;
    if (child === null || child.pid === undefined) return;
    this.expectedExit.add(id);
    const gone = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, KILL_WAIT_MS);
      child.once('exit', () => { clearTimeout(timer); resolve(); });
    });
    process.kill(child.pid, 'SIGKILL');
    await gone;
    this.paused.delete(id);
  }

  /** SIGSTOP `id`. */
  pause(id: string): void {
    const pid = this.pid(id);
    if (pid === undefined) return;
    process.kill(pid, 'SIGSTOP');
    this.paused.add(id);
  }

  /** SIGCONT `id`. */
  resume(id: string): void {
    const pid = this.pid(id);
    this.paused.delete(id);
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
  }

  status(id: string): Promise<StatusReply | null> {
    return this.supervisor(this.replicaIds[0]).status(id);
  }

  /** Every replica's status (null for one that does not answer). */
  async statuses(): Promise<Map<string, StatusReply | null>> {
    const all = await Promise.all(this.replicaIds.map(async (id) => [id, await this.status(id)] as const));
    return new Map(all);
  }

  /** The replica that says it is primary of the highest view, or null. */
  async primary(): Promise<StatusReply | null> {
    let best: StatusReply | null = null;
    for (const s of (await this.statuses()).values()) if (s !== null && s.role === 'primary' && (best === null || s.view > best.view)) best = s;
    return best;
  }

  private event(e: ClusterEvent): void { this.o.onEvent?.(e); }

  /** Stop everything the harness started: members (by PID), proxies, log files. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const id of [...this.paused]) this.resume(id);
    await Promise.all([...this.supervisors.values()].map((s) => s.stop('SIGKILL')));
    await this.mesh.close();
    await Promise.all([...this.logs.values()].map((l) => new Promise<void>((resolve) => l.end(() => resolve()))));
  }
}
