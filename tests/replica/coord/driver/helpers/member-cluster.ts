/**
 * Real coordinator members as child processes on loopback, for the driver tests. Every process is
 * started here and killed here, by PID; every wait is bounded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { MemberProcess, type MemberSpec } from '../../../../../replica/coord/raft-driver/raft-member-harness.js';
import { DRIVER_ELECTION_TICKS, DRIVER_TICK_INTERVAL_MS, type RaftPeer } from '../../../../../replica/coord/raft-driver/raft-driver-options.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/member-process.ts', import.meta.url));
export const MEMBER_COMMAND = [process.execPath, '--import', 'tsx', FIXTURE] as const;

/** The longest randomized election timeout of the members under test (driver defaults): [E, 2E) ticks. */
export const MAX_ELECTION_TIMEOUT_MS = 2 * DRIVER_ELECTION_TICKS * DRIVER_TICK_INTERVAL_MS;

/** `n` distinct free loopback ports (bound to port 0 and released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export type SpecTunables = Omit<MemberSpec, 'selfId' | 'members' | 'dataDir' | 'clusterName'>;

export class MemberCluster {
  readonly members = new Map<string, MemberProcess>();
  private constructor(
    readonly peers: readonly RaftPeer[],
    readonly dir: string,
    readonly clusterName: string,
    private readonly tunables: SpecTunables,
  ) {}

  /** Starts `ids.length` members and waits until each is serving. Registers teardown that kills them. */
  static async start(t: ExecutionContext, ids: readonly string[] = ['a', 'b', 'c'], tunables: SpecTunables = {}): Promise<MemberCluster> {
    const ports = await freePorts(ids.length);
    const dir = mkdtempSync(join(tmpdir(), 'wb-coord-driver-'));
    const cluster = new MemberCluster(ids.map((id, i) => ({ id, address: `127.0.0.1:${ports[i]}` })), dir, 'test', tunables);
    t.teardown(async () => {
      await Promise.all([...cluster.members.values()].map((m) => m.kill('SIGKILL')));
      rmSync(dir, { recursive: true, force: true });
    });
    await Promise.all(ids.map((id) => cluster.startMember(id)));
    return cluster;
  }

  spec(id: string, extra: SpecTunables = {}): MemberSpec {
    return { selfId: id, members: this.peers, dataDir: join(this.dir, id), clusterName: this.clusterName, ...this.tunables, ...extra };
  }

  /** (Re)starts member `id` from its data directory. */
  async startMember(id: string, extra: SpecTunables = {}): Promise<MemberProcess> {
    const m = new MemberProcess(this.spec(id, extra), MEMBER_COMMAND);
    this.members.set(id, m);
    await m.ready();
    return m;
  }

  get(id: string): MemberProcess {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  running(): MemberProcess[] {
    return [...this.members.values()].filter((m) => m.running);
  }

  /** Waits (bounded) until every running member (optionally: among `among`) agrees on one leader; returns its id. */
  async waitLeader(timeoutMs = 10_000, among: readonly string[] = [...this.members.keys()]): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const sts = await Promise.all(
        among.map((id) => this.get(id)).filter((m) => m.running).map((m) => m.request<{ leader: string; role: string }>('status', {}, 2_000)),
      );
      const leaders = new Set(sts.map((s) => (s.ok ? s.result.leader : '?')));
      if (leaders.size === 1) {
        const [l] = leaders;
        if (l !== '' && l !== '?' && among.includes(l)) return l;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no agreed leader within ${timeoutMs} ms`);
  }
}

export function view(n: number, primary: string, backups: string[] = []): { view: number; primary: string; backups: string[] } {
  return { view: n, primary, backups };
}
