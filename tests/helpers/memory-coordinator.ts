import type { Coordinator, LeaseGrant, View } from '../../replica/coord/coordinator.js';
import { validateViewProposal, viewConflict } from '../../replica/coord/coordinator.js';

/**
 * TEST ONLY: a coordinator in one process's memory, shared by the replica nodes of an
 * in-process test. Real clusters use the embedded Raft or etcd; this exists so the replication
 * layer can be tested on its own. Leases: `ttlMs` since the last keepalive.
 */
export class MemoryCoordinatorGroup {
  view: View | null = null;
  readonly lastKeepAlive = new Map<string, number>();
  private readonly watchers = new Set<(v: View) => void>();
  constructor(readonly ttlMs = 300) {}

  client(): Coordinator {
    const g = this;
    return {
      async readView() { return g.view; },
      async proposeView(expected, next) {
        validateViewProposal(expected, next);
        if ((g.view?.view ?? 0) !== expected) throw viewConflict(g.view);
        g.view = next;
        for (const w of [...g.watchers]) queueMicrotask(() => w(next));
        return next;
      },
      watchViews(onView) {
        g.watchers.add(onView);
        if (g.view !== null) { const v = g.view; queueMicrotask(() => onView(v)); }
        return () => { g.watchers.delete(onView); };
      },
      async keepAlive(id): Promise<LeaseGrant> {
        const now = performance.now();
        g.lastKeepAlive.set(id, now);
        return { replicaId: id, sentAtMs: now, ttlMs: g.ttlMs, view: g.view?.view ?? 0, validUntilMs: now + g.ttlMs };
      },
      lastConfirmedMs(id) { return g.lastKeepAlive.get(id) ?? null; },
      leaseExpired(id) { const t = g.lastKeepAlive.get(id); return t === undefined || performance.now() - t > g.ttlMs; },
      async awaitLeaseExpiry(id, signal) {
        for (;;) {
          const t = g.lastKeepAlive.get(id);
          if (t === undefined || performance.now() - t > g.ttlMs * 1.5) return;
          if (signal?.aborted === true) throw new Error('aborted');
          await new Promise((r) => setTimeout(r, 20));
        }
      },
      onFatal() { return () => undefined; },
      async close() {},
    };
  }
}
