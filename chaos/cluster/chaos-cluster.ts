import { createWriteStream, mkdirSync, readFileSync, renameSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { WaterbearError } from '../../libos-host/errors.js';
import { CHAOS_CONTROL_ENV, type ChaosControlApplied, type ChaosControlState } from '../../replica/chaos/chaos-control.js';
import { loadClusterConfig, type ClusterConfig } from '../../replica/config/cluster-config.js';
import { LocalCluster } from '../../replica/supervisor/local-cluster.js';
import type { StatusReply } from '../../replica/wire/replication-wire.js';
import type { LinkFaults, ProxyStats } from '../proxy/fault-proxy.js';
import { ProxyMesh, linkName } from '../proxy/proxy-mesh.js';
import type { Prng } from '../random/prng.js';
import type { ClusterEvent } from '../workload/history.js';
import { NetnsNetwork } from './netns.js';
import { freePorts } from './ports.js';

/** What the nemesis needs of the links between members: fault proxies on loopback, nftables with --netns. */
export interface MemberLinks {
  cut(a: string, b: string): void;
  blockDirection(from: string, to: string): void;
  setLinks(ids: readonly string[] | null, f: Partial<LinkFaults>): string[];
  healAll(): void;
  stats(): Record<string, ProxyStats>;
  close(): Promise<void>;
}

/** Ports inside the members' namespaces with --netns (each member has its own address, so they never clash). */
export const NETNS_SERVICE_PORT = 7000;
export const NETNS_MEMBER_PORT = 7101;

/** How long `kill` waits for a killed member to be reaped. */
export const KILL_WAIT_MS = 5000;
/** How long the harness waits for a member to confirm a control-file change (clock and storage faults). */
export const CONTROL_CONFIRM_MS = 2000;
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
  /** Each member in its own network namespace (root, ip, nft); partitions become nftables drops. */
  netns?: boolean;
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
  private readonly controlSeq = new Map<string, number>();
  crashes = 0;

  private constructor(
    private readonly o: ChaosClusterOptions,
    /** The cluster as the harness sees it: real addresses. */
    readonly config: ClusterConfig,
    readonly servicePort: number,
    readonly mesh: MemberLinks,
    readonly memberFiles: ReadonlyMap<string, string>,
    /** The namespaces with --netns, else null (loopback). */
    readonly netns: NetnsNetwork | null = null,
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
    const netns = o.netns === true ? NetnsNetwork.create(members) : null;
    try {
      return await ChaosCluster.generate(o, base, raw, members, netns);
    } catch (err) {
      netns?.destroy();
      throw err;
    }
  }

  private static async generate(o: ChaosClusterOptions, base: ClusterConfig, raw: Record<string, unknown>, members: string[], netns: NetnsNetwork | null): Promise<ChaosCluster> {
    // Loopback: free ports, and a proxy port for every directed link. Netns: fixed ports on each member's own address.
    const linkCount = netns === null ? members.length * (members.length - 1) : 0;
    const ports = netns === null ? await freePorts(1 + members.length + linkCount) : [NETNS_SERVICE_PORT, ...members.map(() => NETNS_MEMBER_PORT)];
    const servicePort = ports[0];
    const host = (id: string): string => (netns === null ? '127.0.0.1' : netns.address(id));
    const real = new Map(members.map((id, i) => [id, ports[1 + i]]));
    const proxyPorts = new Map<string, number>();
    let k = 1 + members.length;
    if (netns === null) for (const a of members) for (const b of members) if (a !== b) proxyPorts.set(linkName(a, b), ports[k++]);

    mkdirSync(o.dir, { recursive: true });
    const rawGuest = (raw.guest ?? {}) as Record<string, unknown>;
    const guest: Record<string, unknown> = { ...rawGuest, module: base.guest.module };
    if (base.guest.dirs.length > 0) guest.dirs = Object.fromEntries(base.guest.dirs.map((d) => [d.guestPath, d.hostPath]));
    const doc = (self: string | null): Record<string, unknown> => {
      const addr = (id: string): string => (netns !== null || self === null || self === id ? `${host(id)}:${real.get(id)}` : `127.0.0.1:${proxyPorts.get(linkName(self, id))}`);
      const member = (id: string): Record<string, unknown> => ({ id, address: addr(id), dataDir: join(o.dataDir, id) });
      return {
        cluster: base.cluster,
        guest,
        // With --netns the primary listens in its own namespace: clients reach it at its address.
        listen: [`${netns === null ? '127.0.0.1' : '0.0.0.0'}:${servicePort}`],
        replicas: base.replicas.map((r) => member(r.id)),
        witnesses: base.witnesses.map((w) => member(w.id)),
        coordinator: { backend: 'raft' },
        ...(raw.replication !== undefined ? { replication: raw.replication } : {}),
        ...(base.tls !== null ? { tls: base.tls } : {}),
        // Namespace addresses are not loopback; they exist only inside this run's bridge.
        ...(netns !== null && base.tls === null ? { allowPlaintext: true } : {}),
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
    const mesh: MemberLinks = netns ?? await ProxyMesh.start(members.map((id) => ({ id, host: '127.0.0.1', port: real.get(id)! })), proxyPorts, o.prng.fork('mesh'));
    return new ChaosCluster(o, config, servicePort, mesh, memberFiles, netns);
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
        ...(this.netns !== null ? { launchPrefix: this.netns.launchPrefix(id) } : {}),
        env: { WATERBEAR_LOG_LEVEL: this.o.memberLogLevel ?? DEFAULT_MEMBER_LOG_LEVEL, [CHAOS_CONTROL_ENV]: this.controlFile(id), ...this.o.env },
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

  /** Where clients reach the service now: loopback, or (--netns) the current primary's own address. */
  serviceHost(primary: string | null, attempt: number): string {
    if (this.netns === null) return '127.0.0.1';
    const id = primary !== null && this.replicaIds.includes(primary) ? primary : this.replicaIds[attempt % this.replicaIds.length];
    return this.netns.address(id);
  }

  /** How the members are placed, for the log. */
  describe(): string {
    if (this.netns === null) return `members ${this.memberIds.join(', ')} on loopback; service 127.0.0.1:${this.servicePort}`;
    const n = this.netns;
    return `members ${this.memberIds.map((id) => `${id} ${n.address(id)} (netns ${n.namespace(id)})`).join(', ')}; service at the primary's address, port ${this.servicePort}`;
  }

  /** The control file of member `id` (WATERBEAR_CHAOS_CONTROL): the clock and storage faults it obeys. */
  controlFile(id: string): string { return join(this.o.dir, 'control', `${id}.json`); }

  /**
   * Give member `id` a new control state (clock skew, store faults; everything else cleared) and
   * wait, at most CONTROL_CONFIRM_MS, until it confirms. Resolves with its report, or null when it
   * did not confirm (paused, dead, restarting: it applies the file when it next reads it).
   */
  async control(id: string, state: Omit<ChaosControlState, 'seq'>): Promise<ChaosControlApplied | null> {
    const seq = (this.controlSeq.get(id) ?? 0) + 1;
    this.controlSeq.set(id, seq);
    const file = this.controlFile(id);
    mkdirSync(join(this.o.dir, 'control'), { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify({ seq, ...state }));
    renameSync(`${file}.tmp`, file);
    const deadline = performance.now() + CONTROL_CONFIRM_MS;
    for (;;) {
      try {
        const a = JSON.parse(readFileSync(`${file}.applied`, 'utf8')) as ChaosControlApplied;
        if (a.seq === seq && a.pid === this.pid(id)) return a;
      } catch { /* not yet written, or being replaced */ }
      if (performance.now() > deadline || this.stopping) return null;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Clear member `id`'s clock and storage faults (its clock keeps its offset but runs at real speed again). */
  clearControl(id: string): Promise<ChaosControlApplied | null> { return this.control(id, {}); }

  /** Clear every member's faults without waiting (final heal). */
  clearAllControls(): void {
    for (const id of this.controlSeq.keys()) void this.control(id, {});
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
