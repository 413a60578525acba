import { Counter, Gauge, Registry } from 'prom-client';
import type { ClusterMonitor } from './cluster-monitor.js';
import type { TimelineEvent } from './model.js';

/**
 * The metrics of `waterbear dashboard` (no replica of its own): the cluster as its Status polls
 * see it, under waterbear_cluster_*. Documented in README.md and docs/dashboard.md.
 */
export function clusterMetrics(monitor: ClusterMonitor, cluster: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ cluster });
  const registers = [registry];
  new Gauge({ name: 'waterbear_cluster_view', help: 'Highest view any replica reports', registers, collect() { this.set(monitor.state().view); } });
  new Gauge({ name: 'waterbear_cluster_protected', help: '1 when the primary has a backup acknowledging checkpoints (PROTECTED), else 0', registers,
    collect() { this.set(monitor.state().protection === 'PROTECTED' ? 1 : 0); } });
  new Gauge({ name: 'waterbear_cluster_member_up', help: 'Member answered its Status request', labelNames: ['member', 'kind'], registers,
    collect() { for (const m of monitor.state().members) this.set({ member: m.id, kind: m.kind }, m.up ? 1 : 0); } });
  new Gauge({ name: 'waterbear_cluster_replication_lag_seconds', help: 'Age of the oldest checkpoint each backup has not acknowledged', labelNames: ['backup'], registers,
    collect() { this.reset(); for (const m of monitor.state().members) if (m.inView && m.lagSeconds !== null) this.set({ backup: m.id }, m.lagSeconds); } });
  const failovers = new Counter({ name: 'waterbear_cluster_failovers_total', help: 'Failovers this dashboard saw (the primary changed without a planned switchover)', registers });
  const switchovers = new Counter({ name: 'waterbear_cluster_switchovers_total', help: 'Planned switchovers this dashboard saw', registers });
  monitor.on('timeline', (e: TimelineEvent) => {
    if (e.source !== 'dashboard') return;
    if (e.kind === 'failover') failovers.inc();
    else if (e.kind === 'switchover') switchovers.inc();
  });
  return registry;
}
