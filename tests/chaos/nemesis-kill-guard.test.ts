import test from 'ava';
import type { ChaosCluster } from '../../chaos/cluster/chaos-cluster.js';
import type { ViewMonitor } from '../../chaos/cluster/view-monitor.js';
import { Nemesis } from '../../chaos/nemesis/nemesis.js';
import type { ScheduleStep } from '../../chaos/nemesis/schedule.js';

/*
 * The nemesis against a stand-in cluster and view monitor (the real ones are exercised by the
 * scenario tests): which kills it injects depends only on the view the monitor reports.
 */
function nemesisWithView(backups: string[]): { nemesis: Nemesis; killed: string[] } {
  const killed: string[] = [];
  const cluster = {
    witnessIds: ['w'], replicaIds: ['a', 'b'], memberIds: ['a', 'b', 'w'],
    isRunning: () => true, isPaused: () => false, pid: () => 1,
    kill: async (id: string) => { killed.push(id); },
    startMember: () => {},
  } as unknown as ChaosCluster;
  const monitor = {
    latest: { atMs: 0, primary: { replicaId: 'a', view: 5, backups, protected: backups.length > 0 } },
    waitHealthy: async () => true,
    poll: async () => {},
  } as unknown as ViewMonitor;
  return { nemesis: new Nemesis(cluster, monitor, () => performance.now()), killed };
}

const KILL_PRIMARY: ScheduleStep = { step: 1, kind: 'kill', target: 'primary', gapMs: 0, holdMs: 0, params: {} };

test('the nemesis does not kill a primary that has no backup in its view: it holds the only copy of the state', async (t) => {
  const { nemesis, killed } = nemesisWithView([]);
  await nemesis.run([KILL_PRIMARY], performance.now() + 5000);
  t.deepEqual(killed, []);
  t.regex(nemesis.notes.join('\n'), /not killing a: it is primary of view 5 with no backup/);
});

test('the nemesis kills a protected primary as scheduled', async (t) => {
  const { nemesis, killed } = nemesisWithView(['b']);
  await nemesis.run([KILL_PRIMARY], performance.now() + 5000);
  t.deepEqual(killed, ['a']);
  t.is(nemesis.events.length, 1);
});
