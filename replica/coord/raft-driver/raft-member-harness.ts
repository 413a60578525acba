/**
 * A harness that runs one coordinator member in a child process and controls it with JSON lines over
 * stdin/stdout, for the real-process tests, `bench:coord` and the chaos harness. Not used in production.
 *
 * Child side: `runMemberHarness(spec)` starts a RaftCoordinator (standalone server) with a test-only
 * network (`unsafeTestNetwork`) and answers requests `{"req": n, "op": …}` with `{"reply": n, "ok": …}`.
 * It prints `{"event":"ready",…}` once serving and `{"event":"view",…}` for every view when watching.
 * Times crossing processes are epoch milliseconds (`performance.timeOrigin + performance.now()`): on one
 * machine they are comparable to within about a millisecond.
 *
 * Parent side: `MemberProcess` spawns a child, sends requests with bounded waits, kills it by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { isWaterbearError, WaterbearError } from '../../../libos-host/errors.js';
import type { View } from '../coordinator.js';
import { createRaftCoordinator, type RaftCoordinator } from '../raft-coordinator.js';
import type { RaftPeer } from './raft-driver-options.js';

/** What a child member is started with (JSON on its command line). */
export interface MemberSpec {
  readonly selfId: string;
  readonly members: readonly RaftPeer[];
  readonly dataDir: string;
  readonly clusterName: string;
  readonly tickIntervalMs?: number;
  readonly electionTicks?: number;
  readonly leaseTtlMs?: number;
  readonly requestTimeoutMs?: number;
  readonly snapshotEveryEntries?: number;
  readonly leaseRevocationQuarantineMs?: number;
  /** Peers dropped from the start (test partition). */
  readonly dropped?: readonly string[];
}

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export function epochNowMs(): number {
  return performance.timeOrigin + performance.now();
}

type Request = { req: number; op: string; [k: string]: unknown };

function errorReply(err: unknown): Record<string, unknown> {
  if (isWaterbearError(err)) return { ok: false, code: err.code, message: err.message, details: err.details ?? null };
  return { ok: false, code: 'INTERNAL', message: (err as Error)?.stack ?? String(err) };
}

/** Child side: runs the member and serves the control protocol until `close` or stdin ends. */
export async function runMemberHarness(spec: MemberSpec): Promise<void> {
  const dropped = new Set<string>(spec.dropped ?? []);
  const out = (o: Record<string, unknown>): void => {
    process.stdout.write(JSON.stringify(o) + '\n');
  };
  const c: RaftCoordinator = await createRaftCoordinator({
    selfId: spec.selfId,
    members: spec.members,
    dataDir: spec.dataDir,
    clusterName: spec.clusterName,
    credentials: grpc.credentials.createInsecure(),
    tickIntervalMs: spec.tickIntervalMs,
    electionTicks: spec.electionTicks,
    leaseTtlMs: spec.leaseTtlMs,
    requestTimeoutMs: spec.requestTimeoutMs,
    snapshotEveryEntries: spec.snapshotEveryEntries,
    leaseRevocationQuarantineMs: spec.leaseRevocationQuarantineMs,
    unsafeTestNetwork: { dropped },
  });
  const loops = new Map<string, NodeJS.Timeout>();
  let unwatch: (() => void) | null = null;
  const toEpoch = (monoMs: number | null): number | null => (monoMs === null ? null : performance.timeOrigin + monoMs);

  const handlers: Record<string, (r: Request) => Promise<unknown> | unknown> = {
    propose: (r) => c.proposeView(r.expected as number, r.next as View),
    read: () => c.readView(),
    localView: () => c.member.localView(),
    status: () => ({ ...c.member.status(), transport: c.member.transportStats, pid: process.pid }),
    keepalive: async (r) => {
      const g = await c.keepAlive(r.replicaId as string);
      return { view: g.view, sentAtEpochMs: toEpoch(g.sentAtMs), validUntilEpochMs: toEpoch(g.validUntilMs) };
    },
    keepaliveLoop: (r) => {
      const id = r.replicaId as string;
      clearInterval(loops.get(id));
      loops.set(id, setInterval(() => { c.keepAlive(id).catch(() => undefined); }, r.intervalMs as number));
      return null;
    },
    stopKeepaliveLoop: (r) => {
      clearInterval(loops.get(r.replicaId as string));
      loops.delete(r.replicaId as string);
      const last = c.lastConfirmedMs(r.replicaId as string);
      return { lastConfirmedEpochMs: toEpoch(last), validUntilEpochMs: last === null ? null : toEpoch(last + c.leaseTiming.ttlMs * (1 - c.leaseTiming.maxDriftRate) - c.leaseTiming.marginMs) };
    },
    leaseExpired: (r) => ({ expired: c.leaseExpired(r.replicaId as string), lastConfirmedEpochMs: toEpoch(c.lastConfirmedMs(r.replicaId as string)), nowEpochMs: epochNowMs() }),
    awaitLeaseExpiry: async (r) => {
      const signal = AbortSignal.timeout(r.timeoutMs as number);
      await c.awaitLeaseExpiry(r.replicaId as string, signal);
      return { resolvedEpochMs: epochNowMs() };
    },
    watch: () => {
      unwatch?.();
      unwatch = c.watchViews((v) => out({ event: 'view', view: v, atEpochMs: epochNowMs() }));
      return null;
    },
    partition: (r) => {
      for (const p of r.peers as string[]) dropped.add(p);
      return [...dropped];
    },
    heal: () => {
      dropped.clear();
      return [];
    },
    close: async () => {
      for (const t of loops.values()) clearInterval(t);
      unwatch?.();
      await c.close();
      setImmediate(() => process.exit(0));
      return null;
    },
  };

  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let r: Request;
    try {
      r = JSON.parse(line) as Request;
    } catch {
      out({ event: 'bad-request', line });
      return;
    }
    const h = handlers[r.op];
    if (h === undefined) {
      out({ reply: r.req, ok: false, code: 'INTERNAL', message: `unknown op ${r.op}` });
      return;
    }
    const started = epochNowMs();
    Promise.resolve()
      .then(() => h(r))
      .then(
        (result) => out({ reply: r.req, ok: true, result: result ?? null, startedEpochMs: started, doneEpochMs: epochNowMs() }),
        (err: unknown) => out({ reply: r.req, ...errorReply(err), startedEpochMs: started, doneEpochMs: epochNowMs() }),
      );
  });
  rl.on('close', () => {
    void c.close().then(() => process.exit(0));
  });
  const shutdown = (): void => {
    void c.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  out({ event: 'ready', id: spec.selfId, pid: process.pid, port: c.port, atEpochMs: epochNowMs() });
}

/** A reply from the child: `ok` with `result`, or a WaterbearError `code`. */
export interface HarnessReply<T = unknown> {
  readonly ok: boolean;
  readonly result: T;
  readonly code?: string;
  readonly message?: string;
  readonly details?: Record<string, unknown> | null;
  readonly startedEpochMs: number;
  readonly doneEpochMs: number;
}

/** Parent side: one child member process. */
export class MemberProcess {
  readonly child: ChildProcess;
  readonly events: Array<Record<string, unknown>> = [];
  private readonly waiting = new Map<number, (r: HarnessReply) => void>();
  private readonly eventWaiters: Array<{ match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }> = [];
  private nextReq = 0;
  private stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  /**
   * Spawns `command[0]` with `command.slice(1)` and the spec as its last argument (JSON).
   * @param command e.g. [process.execPath, '--import', 'tsx', 'member-process.ts']
   */
  constructor(readonly spec: MemberSpec, command: readonly string[]) {
    this.child = spawn(command[0], [...command.slice(1), JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-20_000);
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
    this.exited.then(() => {
      for (const [, w] of this.waiting) w({ ok: false, result: null, code: 'EXITED', message: 'the member process exited', startedEpochMs: 0, doneEpochMs: 0 });
      this.waiting.clear();
    }, () => undefined);
    const rl = createInterface({ input: this.child.stdout! });
    rl.on('line', (line) => {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (typeof o.reply === 'number') {
        const w = this.waiting.get(o.reply);
        this.waiting.delete(o.reply);
        w?.(o as unknown as HarnessReply);
        return;
      }
      this.events.push(o);
      for (const ew of [...this.eventWaiters]) {
        if (ew.match(o)) {
          this.eventWaiters.splice(this.eventWaiters.indexOf(ew), 1);
          ew.resolve(o);
        }
      }
    });
  }

  get id(): string {
    return this.spec.selfId;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The last 20 kB the child wrote on stderr (for failure messages). */
  get stderrTail(): string {
    return this.stderr;
  }

  /** Resolves with the first event (past or future) that `match` accepts; rejects after `timeoutMs`. */
  waitEvent(match: (e: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
    const past = this.events.find(match);
    if (past !== undefined) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const entry = { match, resolve: (e: Record<string, unknown>) => { clearTimeout(timer); resolve(e); } };
      const timer = setTimeout(() => {
        this.eventWaiters.splice(this.eventWaiters.indexOf(entry), 1);
        reject(new Error(`member ${this.id}: no matching event within ${timeoutMs} ms; stderr: ${this.stderr.slice(-2000)}`));
      }, timeoutMs);
      this.eventWaiters.push(entry);
    });
  }

  /** Waits for the ready line. */
  ready(timeoutMs = 20_000): Promise<Record<string, unknown>> {
    return this.waitEvent((e) => e.event === 'ready', timeoutMs);
  }

  /** Sends one request; resolves with the reply, or a reply with code 'HARNESS_TIMEOUT' after `timeoutMs`. */
  request<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<HarnessReply<T>> {
    const req = ++this.nextReq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(req);
        resolve({ ok: false, result: null as T, code: 'HARNESS_TIMEOUT', message: `no reply to ${op} within ${timeoutMs} ms`, startedEpochMs: 0, doneEpochMs: 0 });
      }, timeoutMs);
      this.waiting.set(req, (r) => {
        clearTimeout(timer);
        resolve(r as HarnessReply<T>);
      });
      if (this.child.exitCode !== null || this.child.signalCode !== null || this.child.stdin === null || this.child.stdin.destroyed) {
        this.waiting.get(req)?.({ ok: false, result: null, code: 'EXITED', message: 'the member process exited', startedEpochMs: 0, doneEpochMs: 0 });
        return;
      }
      this.child.stdin.write(JSON.stringify({ req, op, ...args }) + '\n');
    });
  }

  /** Like `request` but throws unless the reply is ok. */
  async call<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<T> {
    const r = await this.request<T>(op, args, timeoutMs);
    if (!r.ok) throw new WaterbearError('WB_COORD_UNAVAILABLE', `member ${this.id}: ${op} failed: ${r.code} ${r.message ?? ''}`, { details: { code: r.code } });
    return r.result;
  }

  /** Sends `signal` to this child (by PID) and waits (bounded) for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 5_000): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, timeoutMs))]);
  }

  /** True while the child runs. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
}
