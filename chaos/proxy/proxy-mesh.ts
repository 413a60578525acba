import type { Prng } from '../random/prng.js';
import { FaultProxy, type LinkFaults, type ProxyStats } from './fault-proxy.js';

/** One member's real gRPC address and the port each other member uses to reach it. */
export interface MeshMember { id: string; host: string; port: number }

/**
 * A fault proxy for every directed pair of members (X's connections to Y go through proxy
 * X→Y, which forwards to Y's real port). Each member's own cluster file names the proxies as
 * its peers' addresses, so every byte of replication and coordination traffic crosses one.
 */
export class ProxyMesh {
  private readonly proxies = new Map<string, FaultProxy>();

  private constructor(readonly members: readonly MeshMember[]) {}

  /** Create and start proxies on the given ports: `ports.get("a->b")` is where a reaches b. */
  static async start(members: readonly MeshMember[], ports: ReadonlyMap<string, number>, prng: Prng): Promise<ProxyMesh> {
    const mesh = new ProxyMesh(members);
    try {
      for (const from of members) {
        for (const to of members) {
          if (from.id === to.id) continue;
          const name = linkName(from.id, to.id);
          const port = ports.get(name);
          if (port === undefined) throw new Error(`no proxy port for ${name}`);
          const p = new FaultProxy(name, { host: '127.0.0.1', port }, { host: to.host, port: to.port }, prng.fork(`proxy:${name}`));
          await p.start();
          mesh.proxies.set(name, p);
        }
      }
    } catch (err) {
      await mesh.close();
      throw err;
    }
    return mesh;
  }

  link(from: string, to: string): FaultProxy {
    const p = this.proxies.get(linkName(from, to));
    if (p === undefined) throw new Error(`no link ${linkName(from, to)}`);
    return p;
  }

  /** Stop every byte that `from` sends to `to` (on the connections either of them opened). */
  blockDirection(from: string, to: string): void {
    this.link(from, to).set({ blockForward: true });
    this.link(to, from).set({ blockBackward: true });
  }

  /** Cut `a` and `b` apart, both ways. */
  cut(a: string, b: string): void {
    this.blockDirection(a, b);
    this.blockDirection(b, a);
  }

  /** Apply the same faults to every link touching one of `ids` (every link when `ids` is null). */
  setLinks(ids: readonly string[] | null, f: Partial<LinkFaults>): string[] {
    const touched: string[] = [];
    for (const [name, p] of this.proxies) {
      const [from, to] = name.split('->');
      if (ids === null || ids.includes(from) || ids.includes(to)) { p.set(f); touched.push(name); }
    }
    return touched;
  }

  /** Every link back to perfect: held bytes flow again. */
  healAll(): void {
    for (const p of this.proxies.values()) p.heal();
  }

  stats(): Record<string, ProxyStats> {
    const out: Record<string, ProxyStats> = {};
    for (const [name, p] of this.proxies) out[name] = { ...p.stats };
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
  }
}

export function linkName(from: string, to: string): string { return `${from}->${to}`; }
