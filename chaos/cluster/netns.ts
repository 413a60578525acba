import { spawnSync } from 'node:child_process';
import { WaterbearError } from '../../libos-host/errors.js';
import { hasCommand } from './has-command.js';

/**
 * `waterbear chaos --netns`: every member in its own network namespace with its own address, so
 * partitions are real packet drops (nftables) instead of a proxy holding bytes.
 *
 * Layout (one run): a bridge `wbc<tag>br` in the harness's namespace with 10.199.K.1/24, and for
 * member i a namespace `wbchaos-<pid>-<id>` holding `eth0` (the far end of a veth pair whose near
 * end `wbc<tag>h<i>` is on the bridge) with 10.199.K.(10+i)/24 and `lo` up. K is the first
 * 10.199.K.0/24 not already configured here. The harness reaches every member (status polls,
 * clients) over the bridge; a partition adds the peer's address to drop sets of an nftables table
 * `inet wbchaos` inside the member's namespace, so TCP sees real loss and real SYN timeouts.
 * Everything is deleted on `destroy`, on SIGINT/SIGTERM of the harness, and (by a later run) when
 * the harness that created it is gone.
 */

export const NETNS_PREFIX = 'wbchaos-';
/** Second octet pair of every address the harness uses: 10.199.K.0/24, one K per run. */
export const NETNS_NET = '10.199';
/** Host part of member i's address: 10.199.K.(NETNS_FIRST_HOST + i). */
export const NETNS_FIRST_HOST = 10;
/** Longest time one `ip`/`nft` command may take. */
export const NETNS_COMMAND_TIMEOUT_MS = 10_000;
/** The tools --netns needs (Debian: iproute2, nftables). */
export const NETNS_TOOLS = ['ip', 'nft'] as const;

/** What `netnsProblem` looks at; tests pass their own. */
export interface NetnsHost {
  uid: number | undefined;
  hasCommand(name: string): boolean;
}

const THIS_HOST: NetnsHost = {
  uid: typeof process.getuid === 'function' ? process.getuid() : undefined,
  hasCommand,
};

/** Why --netns cannot run here (not root, a tool missing), or null when it can. */
export function netnsProblem(host: NetnsHost = THIS_HOST): string | null {
  if (host.uid !== undefined && host.uid !== 0) {
    return 'needs root (it creates network namespaces, veth pairs, a bridge and nftables rules); run as root or without --netns (members on loopback with fault proxies)';
  }
  const missing = NETNS_TOOLS.filter((t) => !host.hasCommand(t));
  if (missing.length > 0) return `needs ${missing.join(' and ')} on PATH (Debian packages: iproute2, nftables); install them or run without --netns`;
  return null;
}

interface NsMember { id: string; ns: string; hostVeth: string; ip: string }

function run(cmd: string, args: string[], input?: string): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: NETNS_COMMAND_TIMEOUT_MS });
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error !== undefined ? String(r.error) : '') };
}

function must(cmd: string, args: string[], input?: string): string {
  const r = run(cmd, args, input);
  if (!r.ok) throw new WaterbearError('WB_HOST_IO', `chaos --netns: \`${cmd} ${args.join(' ')}\` failed: ${r.err.trim() || 'no message'}`);
  return r.out;
}

/** True while process `pid` exists (EPERM: it does, owned by someone else). */
export function processAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
}

/**
 * Network namespaces whose name `pattern` matches, its first group being the PID of the process
 * that made them, split into those whose maker is gone (`orphans`, to remove) and the PIDs of
 * makers still running. This process counts as running.
 */
export function namespacesByMaker(pattern: RegExp): { orphans: Array<{ name: string; pid: number }>; livePids: Set<number> } {
  const orphans: Array<{ name: string; pid: number }> = [];
  const livePids = new Set<number>();
  for (const line of run('ip', ['netns', 'list']).out.split('\n')) {
    const name = line.split(' ')[0];
    const m = pattern.exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) livePids.add(pid);
    else orphans.push({ name, pid });
  }
  return { orphans, livePids };
}

/** Short tag of a harness PID for its bridge and veth names (wbc<tag>br, wbc<tag>h<i>: at most 15 characters). */
export function tagOf(pid: number): string { return (pid % 46656).toString(36); }

const live = new Set<NetnsNetwork>();

/** The namespaces, veths, bridge and nftables sets of one chaos run. */
export class NetnsNetwork {
  private readonly members = new Map<string, NsMember>();
  private destroyed = false;

  private constructor(readonly subnet: number, readonly bridge: string) {}

  /** The harness's own address on the bridge (clients and status polls come from it). */
  get hostIp(): string { return `${NETNS_NET}.${this.subnet}.1`; }

  /**
   * Create a namespace per member. Removes what dead harnesses left first.
   * @throws WaterbearError WB_CONFIG_INVALID when --netns cannot run here; WB_HOST_IO when a command fails
   *   (what was created is removed again).
   */
  static create(memberIds: readonly string[]): NetnsNetwork {
    const problem = netnsProblem();
    if (problem !== null) throw new WaterbearError('WB_CONFIG_INVALID', `chaos --netns ${problem}`);
    if (memberIds.length > 200) throw new WaterbearError('WB_CONFIG_INVALID', 'chaos --netns: at most 200 members');
    sweepStale();
    const used = new Set([...must('ip', ['-4', '-o', 'addr', 'show']).matchAll(/inet 10\.199\.(\d+)\./g)].map((m) => Number(m[1])));
    let subnet = 1;
    while (used.has(subnet) && subnet < 254) subnet++;
    if (used.has(subnet)) throw new WaterbearError('WB_HOST_IO', 'chaos --netns: every 10.199.K.0/24 is in use here');
    const tag = tagOf(process.pid);
    const net = new NetnsNetwork(subnet, `wbc${tag}br`);
    live.add(net);
    try {
      must('ip', ['link', 'add', net.bridge, 'type', 'bridge']);
      must('ip', ['addr', 'add', `${net.hostIp}/24`, 'dev', net.bridge]);
      must('ip', ['link', 'set', net.bridge, 'up']);
      memberIds.forEach((id, i) => {
        const m: NsMember = { id, ns: `${NETNS_PREFIX}${process.pid}-${id.replace(/[^A-Za-z0-9_.-]/g, '_')}`, hostVeth: `wbc${tag}h${i}`, ip: `${NETNS_NET}.${subnet}.${NETNS_FIRST_HOST + i}` };
        net.members.set(id, m);
        const peer = `wbc${tag}n${i}`;
        must('ip', ['netns', 'add', m.ns]);
        must('ip', ['link', 'add', m.hostVeth, 'type', 'veth', 'peer', 'name', peer]);
        must('ip', ['link', 'set', peer, 'netns', m.ns]);
        must('ip', ['link', 'set', m.hostVeth, 'master', net.bridge]);
        must('ip', ['link', 'set', m.hostVeth, 'up']);
        const inNs = (args: string[]): string => must('ip', ['netns', 'exec', m.ns, ...args]);
        inNs(['ip', 'link', 'set', peer, 'name', 'eth0']);
        inNs(['ip', 'addr', 'add', `${m.ip}/24`, 'dev', 'eth0']);
        inNs(['ip', 'link', 'set', 'eth0', 'up']);
        inNs(['ip', 'link', 'set', 'lo', 'up']);
        must('ip', ['netns', 'exec', m.ns, 'nft', '-f', '-'], [
          'table inet wbchaos {',
          '  set blocked_in { type ipv4_addr; }',
          '  set blocked_out { type ipv4_addr; }',
          '  chain input { type filter hook input priority 0; policy accept; ip saddr @blocked_in drop; }',
          '  chain output { type filter hook output priority 0; policy accept; ip daddr @blocked_out drop; }',
          '}',
        ].join('\n'));
      });
    } catch (err) {
      net.destroy();
      throw err;
    }
    return net;
  }

  private member(id: string): NsMember {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no namespace for member ${id}`);
    return m;
  }

  /** Member `id`'s address inside its namespace. */
  address(id: string): string { return this.member(id).ip; }
  namespace(id: string): string { return this.member(id).ns; }
  /** The command prefix that runs a program inside member `id`'s namespace (exec: same PID). */
  launchPrefix(id: string): string[] { return ['ip', 'netns', 'exec', this.member(id).ns]; }

  private nft(id: string, args: string[]): void {
    must('ip', ['netns', 'exec', this.member(id).ns, 'nft', ...args]);
  }

  /** Drop every packet `from` sends to `to` (at both ends). */
  blockDirection(from: string, to: string): void {
    this.nft(from, ['add', 'element', 'inet', 'wbchaos', 'blocked_out', `{ ${this.address(to)} }`]);
    this.nft(to, ['add', 'element', 'inet', 'wbchaos', 'blocked_in', `{ ${this.address(from)} }`]);
  }

  /** Cut `a` and `b` apart, both ways. */
  cut(a: string, b: string): void {
    this.blockDirection(a, b);
    this.blockDirection(b, a);
  }

  /** Network faults other than partitions need a proxy (or tc netem): not with --netns. */
  setLinks(): string[] {
    throw new WaterbearError('WB_CONFIG_INVALID', 'chaos --netns injects partitions only (nftables); delay, drop, duplicate, reorder and corrupt need the fault proxies (run without --netns)');
  }

  /** Every drop rule removed. */
  healAll(): void {
    if (this.destroyed) return;
    for (const m of this.members.values()) {
      for (const set of ['blocked_in', 'blocked_out']) run('ip', ['netns', 'exec', m.ns, 'nft', 'flush', 'set', 'inet', 'wbchaos', set]);
    }
  }

  /** No proxies: no per-link counters. */
  stats(): Record<string, never> { return {}; }

  async close(): Promise<void> { this.destroy(); }

  /** Delete the namespaces (with their veth ends and nftables tables) and the bridge. Idempotent, synchronous. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const m of this.members.values()) {
      run('ip', ['link', 'del', m.hostVeth]);
      run('ip', ['netns', 'del', m.ns]);
    }
    run('ip', ['link', 'del', this.bridge]);
  }

  /** Every network still alive in this process (for a signal handler). */
  static destroyAll(): void { for (const n of [...live]) n.destroy(); }
}

/** Remove namespaces and bridges of harnesses that are gone (only names this module creates). */
function sweepStale(): void {
  const { orphans, livePids } = namespacesByMaker(new RegExp(`^${NETNS_PREFIX}(\\d+)-`));
  const liveTags = new Set([process.pid, ...livePids].map(tagOf));
  for (const o of orphans) run('ip', ['netns', 'del', o.name]);
  for (const pid of new Set(orphans.map((o) => o.pid))) {
    const tag = tagOf(pid);
    if (liveTags.has(tag)) continue; // a live run's interfaces share the tag: leave them
    for (const link of run('ip', ['-o', 'link', 'show']).out.matchAll(new RegExp(`\\d+: (wbc${tag}(?:br|h\\d+))[@:]`, 'g'))) run('ip', ['link', 'del', link[1]]);
  }
}
