/** Shared setup of the tests that run against a real etcd (tests/helpers/etcd-server.ts). */
import diagnosticsChannel from 'node:diagnostics_channel';
import test from 'ava';
import { isWaterbearError } from '../../../../libos-host/errors.js';
import { EtcdCoordinator, ETCD_DIAGNOSTICS_CHANNEL } from '../../../../replica/coord/etcd/etcd-coordinator.js';
import type { EtcdCoordinatorOptions } from '../../../../replica/coord/etcd/etcd-options.js';
import type { EtcdServer } from '../../../helpers/etcd-server.js';
import { toolAvailable } from '../../../helpers/tools.js';

/** True when the etcd tests run (etcd installed, or WB_REQUIRE_TOOLS=1 so that a missing etcd fails). */
export const HAVE_ETCD = toolAvailable('etcd', 'the etcd coordinator tests run against a real etcd server');

/** `test` when etcd runs, `test.skip` otherwise (the reason was printed by toolAvailable). */
export const etcdTest = HAVE_ETCD ? test : test.skip;

/**
 * Options of the etcd servers of these tests: a 500 ms election timeout lets etcd grant 1 s leases
 * (its minimum TTL is ceil(1.5 × election timeout)).
 */
export const ETCD_SERVER_OPTIONS = { electionTimeoutMs: 500, heartbeatIntervalMs: 50 } as const;

/** Lease TTL of these tests. */
export const TEST_TTL_MS = 1_000;

let clusters = 0;

/** A cluster name no other test of this process uses, so tests can share one etcd. */
export function uniqueCluster(name: string): string {
  clusters++;
  return `${name.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 80)}-${process.pid}-${clusters}`;
}

/** Creates coordinators and closes them all at the end of the test. */
export class Coordinators {
  private readonly all: EtcdCoordinator[] = [];

  constructor(
    private readonly server: EtcdServer,
    readonly cluster: string,
    private readonly defaults: Partial<EtcdCoordinatorOptions> = {},
  ) {}

  /** A new client (its own connection) on the same cluster. */
  client(overrides: Partial<EtcdCoordinatorOptions> = {}): EtcdCoordinator {
    const c = new EtcdCoordinator({
      endpoints: [this.server.endpoint],
      cluster: this.cluster,
      lease: { ttlMs: TEST_TTL_MS },
      ...this.defaults,
      ...overrides,
    });
    this.all.push(c);
    return c;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.all.map((c) => c.close()));
  }
}

/** Collects the coordinator's diagnostics events while subscribed. */
export function collectEvents(): { events: Array<Record<string, unknown>>; stop(): void } {
  const events: Array<Record<string, unknown>> = [];
  const onMessage = (m: unknown): void => {
    events.push(m as Record<string, unknown>);
  };
  diagnosticsChannel.subscribe(ETCD_DIAGNOSTICS_CHANNEL, onMessage);
  return { events, stop: () => diagnosticsChannel.unsubscribe(ETCD_DIAGNOSTICS_CHANNEL, onMessage) };
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every 10 ms until true or `timeoutMs` passed; returns whether it became true. */
export async function eventually(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > until) return false;
    await delay(10);
  }
  return true;
}

/** True when `err` is one of the codes an unreachable coordinator may fail with. */
export function isUnavailable(err: unknown): boolean {
  return isWaterbearError(err, 'WB_COORD_UNAVAILABLE') || isWaterbearError(err, 'WB_TIMEOUT');
}
