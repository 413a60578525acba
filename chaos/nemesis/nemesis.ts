import type { ChaosCluster } from '../cluster/chaos-cluster.js';
import type { ViewMonitor } from '../cluster/view-monitor.js';
import type { FaultEvent } from '../workload/history.js';
import { BULK_CHUNK_BYTES, clockMode, clockWithinBound, type ScheduleStep } from './schedule.js';

/** Longest wait for a whole cluster before the next fault (it is injected anyway after that, and noted). */
export const HEALTHY_WAIT_MS = 20_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/**
 * Carries out a schedule against the cluster: before each step it waits (bounded) until the
 * cluster is whole again, waits the step's gap, resolves the target (which replica is primary
 * now), injects the fault, holds it and heals it. Stops injecting at `endMs`; `healAll` undoes
 * anything still in effect.
 */
export class Nemesis {
  readonly events: FaultEvent[] = [];
  readonly notes: string[] = [];
  private readonly killed = new Set<string>();
  /** Store-fault counters of the target when a storage fault started (to count the commits it struck). */
  private readonly struckBefore = new Map<number, number>();
  private stopped = false;

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly monitor: ViewMonitor,
    private readonly nowMs: () => number,
    private readonly log: (line: string) => void = () => {},
  ) {}

  async run(steps: readonly ScheduleStep[], endMs: number): Promise<void> {
    for (const step of steps) {
      if (this.stopped || this.nowMs() >= endMs) break;
      const whole = await this.monitor.waitHealthy(Math.min(HEALTHY_WAIT_MS, endMs - this.nowMs()), () => this.stopped);
      if (this.nowMs() >= endMs || this.stopped) break;
      if (!whole) this.note(`step ${step.step}: the cluster was not whole after ${HEALTHY_WAIT_MS} ms; injecting anyway`);
      await sleep(Math.min(step.gapMs, endMs - this.nowMs()));
      if (this.nowMs() >= endMs || this.stopped) break;
      const ev = await this.inject(step);
      if (ev === null) continue;
      this.log(`nemesis: ${step.kind} ${step.target} → ${ev.applied.join(', ')}${ev.detail !== undefined ? ` (${ev.detail})` : ''}`);
      await sleep(Math.min(step.holdMs, endMs - this.nowMs()));
      await this.heal(step, ev);
    }
  }

  stop(): void { this.stopped = true; }

  private note(s: string): void {
    this.notes.push(s);
    this.log(`nemesis: ${s}`);
  }

  /** Resolve "primary"/"backup"/"witness" against the current view. */
  private async roles(): Promise<{ primary: string; backup: string } | null> {
    await this.monitor.poll();
    const p = this.monitor.latest.primary;
    if (p === null) return null;
    const backup = p.backups[0] ?? this.cluster.replicaIds.find((id) => id !== p.replicaId);
    return backup === undefined ? null : { primary: p.replicaId, backup };
  }

  private async inject(step: ScheduleStep): Promise<FaultEvent | null> {
    const roles = await this.roles();
    const member = (t: string): string | null => {
      if (t === 'witness') return this.cluster.witnessIds[0] ?? null;
      if (roles === null) return null;
      return t === 'primary' ? roles.primary : t === 'backup' ? roles.backup : null;
    };
    const ev: FaultEvent = { step: step.step, kind: step.kind, target: step.target, applied: [], startMs: 0, endMs: null };
    const start = (applied: string[], detail?: string): FaultEvent => {
      ev.applied = applied;
      ev.startMs = this.nowMs();
      if (detail !== undefined) ev.detail = detail;
      this.events.push(ev);
      return ev;
    };
    const mesh = this.cluster.mesh;
    const scope = (): string[] | null => (step.target === 'primary-links' ? (roles === null ? null : [roles.primary]) : null);
    switch (step.kind) {
      case 'kill': case 'pause': {
        const id = member(step.target);
        if (id === null || !this.cluster.isRunning(id)) { this.note(`step ${step.step}: no ${step.target} to ${step.kind}`); return null; }
        // A primary with no backup in its view holds the only copy of what clients were told:
        // killing it is a double failure no primary/backup pair survives, and the cluster then
        // rightly refuses to serve older state (the soak of seed 61703 ended so). Not injected.
        const p = this.monitor.latest.primary;
        if (step.kind === 'kill' && p !== null && p.replicaId === id && p.backups.length === 0) {
          this.note(`step ${step.step}: not killing ${id}: it is primary of view ${p.view} with no backup, the only holder of the acknowledged state`);
          return null;
        }
        if (step.kind === 'kill') {
          start([id], `kill -9 pid ${this.cluster.pid(id)}`);
          this.killed.add(id);
          await this.cluster.kill(id);
        } else {
          start([id], `SIGSTOP pid ${this.cluster.pid(id)}`);
          this.cluster.pause(id);
        }
        return ev;
      }
      case 'partition': {
        if (roles === null) { this.note(`step ${step.step}: no primary to partition around`); return null; }
        const { primary: p, backup: b } = roles;
        const others = this.cluster.memberIds;
        switch (step.target) {
          case 'primary-backup': mesh.cut(p, b); return start([`${p}<->${b}`]);
          case 'isolate-primary': for (const o of others) if (o !== p) mesh.cut(p, o); return start(others.filter((o) => o !== p).map((o) => `${p}<->${o}`));
          case 'isolate-backup': for (const o of others) if (o !== b) mesh.cut(b, o); return start(others.filter((o) => o !== b).map((o) => `${b}<->${o}`));
          case 'primary-to-backup': mesh.blockDirection(p, b); return start([`${p}->${b}`], 'one-way');
          case 'backup-to-primary': mesh.blockDirection(b, p); return start([`${b}->${p}`], 'one-way');
        }
        return null;
      }
      case 'delay':
        return start(mesh.setLinks(scope(), { delayMs: step.params.delayMs, jitterMs: step.params.jitterMs }), `+${step.params.delayMs} ms ±${step.params.jitterMs} ms per chunk`);
      case 'reorder':
        return start(mesh.setLinks(scope(), { jitterMs: step.params.jitterMs }), `independent 0–${step.params.jitterMs} ms per chunk (connections overtake each other)`);
      case 'corrupt': {
        const bulk = step.target === 'bulk';
        return start(mesh.setLinks(scope(), { corruptProbability: step.params.probability, corruptMinBytes: bulk ? BULK_CHUNK_BYTES : 0 }),
          `one bit flipped in ${(step.params.probability * 100).toFixed(2)}% of chunks${bulk ? ` of ≥ ${BULK_CHUNK_BYTES} bytes (checkpoint data)` : ''}`);
      }
      case 'drop':
        return start(mesh.setLinks(scope(), { resetProbability: step.params.probability }), `connection dropped after ${(step.params.probability * 100).toFixed(2)}% of chunks`);
      case 'duplicate':
        return start(mesh.setLinks(scope(), { replay: true }), 'earlier connections replayed every 700 ms');
      case 'disk-full': case 'fsync': case 'slow-disk': {
        const id = member(step.target);
        if (id === null || !this.cluster.isRunning(id) || this.cluster.isPaused(id)) { this.note(`step ${step.step}: no running ${step.target} for ${step.kind}`); return null; }
        const store = step.kind === 'disk-full' ? { errno: 'ENOSPC' as const } : step.kind === 'fsync' ? { errno: 'EIO' as const } : { delayMs: step.params.delayMs };
        const detail = step.kind === 'disk-full' ? 'every checkpoint-store commit fails with ENOSPC (disk full)'
          : step.kind === 'fsync' ? 'every checkpoint-store commit fails with EIO (fdatasync error)'
            : `every checkpoint-store commit takes ${step.params.delayMs} ms longer (slow disk)`;
        const applied = await this.cluster.control(id, { store });
        if (applied === null) this.note(`step ${step.step}: ${id} did not confirm the ${step.kind} fault within the wait; it applies when it reads its control file`);
        this.struckBefore.set(step.step, applied === null ? 0 : step.kind === 'slow-disk' ? applied.storeDelays : applied.storeFailures);
        return start([id], detail);
      }
      case 'clock': {
        const id = member(step.target);
        if (id === null || !this.cluster.isRunning(id) || this.cluster.isPaused(id)) { this.note(`step ${step.step}: no running ${step.target} for clock`); return null; }
        const { jumpMs, rate } = step.params;
        const applied = await this.cluster.control(id, { clock: { jumpMs, rate } });
        if (applied === null) this.note(`step ${step.step}: ${id} did not confirm the clock fault within the wait`);
        const mode = clockMode(step.params);
        const what = mode === 'jump-forward' || mode === 'jump-back' ? `clock jumps ${jumpMs > 0 ? '+' : ''}${jumpMs} ms` : `clock runs at ${rate}× real time`;
        return start([id], `${mode}: ${what} (${clockWithinBound(step.params) ? 'within the lease drift bound' : 'EXCEEDS the lease drift bound'})`);
      }
    }
  }

  private async heal(step: ScheduleStep, ev: FaultEvent): Promise<void> {
    switch (step.kind) {
      case 'kill':
        for (const id of ev.applied) { this.killed.delete(id); this.cluster.startMember(id); }
        break;
      case 'pause':
        for (const id of ev.applied) this.cluster.resume(id);
        break;
      case 'disk-full': case 'fsync': case 'slow-disk': case 'clock':
        for (const id of ev.applied) {
          const a = await this.cluster.clearControl(id);
          if (a === null || step.kind === 'clock') continue;
          const struck = Math.max(0, (step.kind === 'slow-disk' ? a.storeDelays : a.storeFailures) - (this.struckBefore.get(step.step) ?? 0));
          ev.struck = struck;
          ev.detail = `${ev.detail ?? ''}; it struck ${struck} commit(s)`;
        }
        break;
      default:
        this.cluster.mesh.healAll();
    }
    ev.endMs = this.nowMs();
  }

  /** Undo everything: links healed, paused members resumed, killed members started. */
  healAll(): void {
    this.cluster.mesh.healAll();
    this.cluster.clearAllControls();
    for (const id of this.cluster.memberIds) {
      if (this.cluster.isPaused(id)) this.cluster.resume(id);
      if (!this.cluster.isRunning(id)) this.cluster.startMember(id);
    }
    for (const ev of this.events) if (ev.endMs === null) ev.endMs = this.nowMs();
  }
}
