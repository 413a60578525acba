import { isUnprotected, nextView, sameView, type View } from './view.js';

/** What the primary's driver must do, in order. */
export type PrimaryAction =
  | { kind: 'release'; epoch: number } // output of epochs <= epoch may leave (network buffer)
  | { kind: 'passthrough'; on: boolean } // release output without acks (only in a view with no backups)
  | { kind: 'propose'; view: View } // compare-and-set the next view through the coordinator
  | { kind: 'fence'; reason: string } // stop acting: drop held output, stop the guest
  | { kind: 'stream-to'; backup: string } // start (or restart with a full image) streaming to a backup
  | { kind: 'stop-stream'; backup: string }
  | { kind: 'checkpoint' }; // capture as soon as the guest is suspended (even an idle guest)

/** A backup that is catching up before it is added to the view. */
interface Joiner {
  acked: number;
  /** Set once output is held for its sake: it must ack this epoch before the view is proposed. */
  holdAfterEpoch: number | null;
}

/**
 * The primary's side of primary/backup replication, as a pure state machine: events in,
 * actions out; no clock, no I/O (a driver does those). It decides when held output may be
 * released, when to run unprotected, when to add or drop a backup, and when to fence itself.
 *
 * Safety rule (DESIGN rule 1, strengthened): output of epoch N is released only when EVERY
 * backup of the current view has acknowledged N. Then any backup that is promoted later holds
 * everything a client could have seen, whatever the timing of view changes.
 */
export class PrimaryProtocol {
  private view: View;
  private readonly acked = new Map<string, number>();
  private readonly joiners = new Map<string, Joiner>();
  private released = 0;
  private captured = 0;
  private proposing: View | null = null;
  /**
   * Views we proposed whose proposal timed out: each may still commit (a Raft entry appended
   * before a leader change), until a view with its number or higher commits.
   */
  private uncertain: View[] = [];
  private fenced = false;
  private passthrough = false;
  /** Replicas an operator removed: their join requests are refused until they are added again. */
  private readonly excluded = new Set<string>();
  /** Join proposals that failed in a row, and ticks left before the next one (backoff). */
  private joinFailures = 0;
  private joinRetryInTicks = 0;

  /**
   * `capturedEpoch`: the epoch of the checkpoint the guest was restored from (0 for a fresh start).
   * `joinCatchUpEpochs`: how close to the head a joiner must get before output is held for it
   * (the driver passes its backpressure bound: a busy guest keeps a paced joiner about that far
   * behind, and a tighter bound would never be met).
   */
  constructor(readonly self: string, view: View, capturedEpoch = 0, private readonly joinCatchUpEpochs = JOIN_CATCH_UP_EPOCHS) {
    this.view = view;
    this.captured = capturedEpoch;
    this.released = capturedEpoch;
  }

  /** Actions to take when starting in `view` (the constructor's). */
  start(): PrimaryAction[] {
    if (this.view.primary !== this.self) return this.fence(`not the primary of view ${this.view.view}`);
    const out: PrimaryAction[] = [{ kind: 'passthrough', on: isUnprotected(this.view) }];
    this.passthrough = isUnprotected(this.view);
    for (const b of this.view.backups) out.push({ kind: 'stream-to', backup: b });
    return out;
  }

  get currentView(): View { return this.view; }
  get releasedEpoch(): number { return this.released; }
  get isFenced(): boolean { return this.fenced; }
  get isProtected(): boolean { return !this.fenced && !isUnprotected(this.view); }
  ackedBy(backup: string): number | undefined { return this.acked.get(backup) ?? this.joiners.get(backup)?.acked; }

  /** The checkpoint of `epoch` was captured (and queued to every backup and joiner). */
  onCaptured(epoch: number): PrimaryAction[] {
    if (this.fenced) return [];
    this.captured = Math.max(this.captured, epoch);
    // Unprotected, output leaves as it is produced: everything up to this epoch is out.
    if (this.passthrough) this.released = this.captured;
    const out: PrimaryAction[] = [];
    // A joiner close enough to the head: hold output from here on, so that once it acks this
    // epoch it has everything clients have seen, and only then propose the view with it. Only one
    // that acknowledged something (it holds a chain): in a young cluster (few epochs) a joiner
    // that had stored nothing counted as close, and an unprotected primary held every reply for a
    // joiner whose store was failing.
    for (const [id, j] of this.joiners) {
      if (j.holdAfterEpoch === null && this.proposing === null && j.acked > 0 && this.captured - j.acked <= this.joinCatchUpEpochs) {
        j.holdAfterEpoch = epoch;
        if (this.passthrough) { this.passthrough = false; out.push({ kind: 'passthrough', on: false }); }
      }
      out.push(...this.maybeProposeJoin(id));
    }
    return out;
  }

  /** A backup (or joiner) acknowledged `epoch` in `view`. Acks of other views are ignored. */
  onAck(from: string, view: number, epoch: number): PrimaryAction[] {
    // An ack of an epoch never captured is nonsense (a bug or a forged peer): it must not release.
    if (this.fenced || view !== this.view.view || epoch > this.captured) return [];
    const j = this.joiners.get(from);
    if (j !== undefined) {
      j.acked = Math.max(j.acked, epoch);
      // Caught up: hold output from here on, and end the epoch now (an idle guest would not),
      // so that once the joiner acks it, it holds everything clients have seen.
      if (j.holdAfterEpoch === null && this.proposing === null && this.captured - j.acked <= this.joinCatchUpEpochs) {
        const out: PrimaryAction[] = [];
        if (this.passthrough) { this.passthrough = false; out.push({ kind: 'passthrough', on: false }); }
        j.holdAfterEpoch = this.captured + 1;
        out.push({ kind: 'checkpoint' });
        return out;
      }
      // Its ack may complete a release while a view adding it is proposed or may commit.
      return [...this.releasable(), ...this.maybeProposeJoin(from)];
    }
    if (!this.view.backups.includes(from)) return [];
    this.acked.set(from, Math.max(this.acked.get(from) ?? 0, epoch));
    return this.releasable();
  }

  /** A replica asks to be protected by this primary (re-protection). */
  onJoinRequest(from: string): PrimaryAction[] {
    if (this.fenced || from === this.self || this.excluded.has(from)) return [];
    if (this.view.backups.includes(from)) {
      // A backup of the view that restarted: its old chain is gone; resync it from a full image.
      this.acked.delete(from);
      return [{ kind: 'stream-to', backup: from }];
    }
    if (this.joiners.has(from)) return [];
    if (this.joiners.size === 0) this.joinFailures = this.joinRetryInTicks = 0;
    this.joiners.set(from, { acked: 0, holdAfterEpoch: null });
    return [{ kind: 'stream-to', backup: from }];
  }

  /** A backup stopped answering (heartbeat timeout or stream error): drop it from the view. */
  onBackupFailed(backup: string): PrimaryAction[] {
    if (this.fenced) return [];
    if (this.joiners.delete(backup)) return [{ kind: 'stop-stream', backup }, ...this.resumePassthrough()];
    if (!this.view.backups.includes(backup) || this.proposing !== null) return [];
    const next = nextView(this.view, this.self, this.view.backups.filter((b) => b !== backup));
    return this.proposeView(next);
  }

  /** True when `id` may join (not removed by an operator). */
  mayJoin(id: string): boolean { return !this.excluded.has(id); }

  /** Operator: drop backup `id` from the view and refuse its joins until `onAddBackup(id)`. */
  onRemoveBackup(id: string): PrimaryAction[] {
    if (this.fenced) return [];
    this.excluded.add(id);
    if (this.joiners.delete(id)) return [{ kind: 'stop-stream', backup: id }, ...this.resumePassthrough()];
    return this.proposeRemovals();
  }

  /**
   * Propose the view without every removed backup still in it. A removal that arrives while
   * another proposal is in flight waits for it: the tick tries again.
   */
  private proposeRemovals(): PrimaryAction[] {
    if (this.proposing !== null) return [];
    const kept = this.view.backups.filter((b) => !this.excluded.has(b));
    return kept.length === this.view.backups.length ? [] : this.proposeView(nextView(this.view, this.self, kept));
  }

  /** Operator: allow `id` to join again (it is added once caught up). */
  onAddBackup(id: string): PrimaryAction[] {
    this.excluded.delete(id);
    return [];
  }

  /**
   * Operator: hand the primary role to backup `target`. Only when every backup acknowledged
   * everything captured (the driver has frozen the guest after a final checkpoint), so the new
   * primary starts from exactly the state whose output has all been released.
   */
  onSwitchover(target: string): PrimaryAction[] | string {
    if (this.fenced) return 'this replica is fenced';
    if (!this.view.backups.includes(target)) return `${target} is not a backup of view ${this.view.view}`;
    if (this.proposing !== null) return 'a view change is already in progress';
    for (const b of this.view.backups) {
      if ((this.acked.get(b) ?? 0) < this.captured) return `backup ${b} has not acknowledged epoch ${this.captured} yet`;
    }
    const next = nextView(this.view, target, [...this.view.backups.filter((b) => b !== target), this.self]);
    return this.proposeView(next);
  }

  /**
   * Our proposal failed. `outcomeKnown`: the coordinator refused it (someone else changed the view
   * first); false when it timed out or the coordinator was unreachable, so it may still commit.
   */
  onProposalFailed(outcomeKnown = true): PrimaryAction[] {
    const p = this.proposing;
    if (!outcomeKnown && p !== null && !this.uncertain.some((v) => sameView(v, p))) this.uncertain.push(p);
    this.proposing = null;
    // A coordinator that keeps failing (no leader, timeouts) would otherwise get a join proposal
    // at every capture and ack, hundreds a second: retry after 1, 2, 4… ticks instead.
    if (p !== null && p.primary === this.self && p.backups.some((b) => !this.view.backups.includes(b))) {
      this.joinFailures++;
      this.joinRetryInTicks = Math.min(2 ** (this.joinFailures - 1), JOIN_RETRY_MAX_TICKS);
    }
    // A view adding a joiner that may still commit must find it holding everything released:
    // release only what the joiner acknowledged too (releasable), and no passthrough.
    return [...this.releasable(), ...this.resumePassthrough()];
  }

  /**
   * A view we proposed that adds a backup timed out, and that backup is no longer joining (it
   * failed or was removed), so no retry of the join will settle it: while that view may commit,
   * output waits for the gone backup's acks. Propose the current membership again: once a view
   * with that number commits, the old proposal never can. The driver calls this periodically.
   */
  settleUncertainViews(): PrimaryAction[] {
    if (this.fenced || this.proposing !== null) return [];
    const unsettled = this.uncertain.some((v) => v.backups.some((b) => !this.view.backups.includes(b) && !this.joiners.has(b)));
    return unsettled ? this.proposeView(nextView(this.view, this.self, this.view.backups)) : [];
  }

  /**
   * The driver's periodic tick (its lease renewal): settles uncertain views, and proposes a join
   * whose previous proposal failed once its backoff is over (an idle guest captures nothing that
   * would retry it).
   */
  onTick(): PrimaryAction[] {
    if (this.fenced) return [];
    const out = [...this.settleUncertainViews(), ...this.proposeRemovals()];
    if (this.joinRetryInTicks > 0 && --this.joinRetryInTicks === 0) {
      for (const id of this.joiners.keys()) out.push(...this.maybeProposeJoin(id));
    }
    return out;
  }

  /** The coordinator committed `view` (ours or anyone's). */
  onViewCommitted(view: View): PrimaryAction[] {
    if (this.fenced || view.view <= this.view.view) return [];
    this.proposing = null;
    this.uncertain = this.uncertain.filter((v) => v.view > view.view);
    if (view.primary !== this.self) return this.fence(`view ${view.view} has primary ${view.primary}`);
    const out: PrimaryAction[] = [];
    const old = this.view;
    this.view = view;
    for (const b of old.backups) if (!view.backups.includes(b)) { this.acked.delete(b); out.push({ kind: 'stop-stream', backup: b }); }
    for (const b of view.backups) {
      const j = this.joiners.get(b);
      if (j !== undefined) { this.acked.set(b, j.acked); this.joiners.delete(b); this.joinFailures = this.joinRetryInTicks = 0; }
      else if (!old.backups.includes(b)) out.push({ kind: 'stream-to', backup: b });
    }
    const unprotected = isUnprotected(view);
    if (unprotected !== this.passthrough) {
      this.passthrough = unprotected;
      out.push({ kind: 'passthrough', on: unprotected });
      // Output leaves unheld again: a hold started for a joiner is void; it starts again once the
      // joiner is close (else maybeProposeJoin, which waits while passing through, never adds it).
      if (unprotected) for (const j of this.joiners.values()) j.holdAfterEpoch = null;
    }
    out.push(...this.releasable()); // nothing when unprotected: no view that may commit has a backup
    return out;
  }

  /**
   * The primary's coordinator lease has been lost for long (isolated from the coordinator): step
   * down, freeing the service address for a backup's takeover. Not while this replica may be the
   * only holder of the guest's state: in a view without backups, or while a proposal of one may
   * still commit. Nobody could take over then, and stepping down would throw the only copy away
   * and leave the view naming a primary that holds nothing (chaos finding 8: the cluster stayed
   * down for good). It keeps the state and holds output (the release gate needs the lease) until
   * its lease returns or a newer view fences it.
   */
  onLeaseLost(): PrimaryAction[] {
    if (this.fenced || !this.mayStepDown) return [];
    return this.fence('coordinator lease lapsed: cannot prove this replica is still primary');
  }

  /** False while this replica may hold the only copy of the guest's state (see onLeaseLost). */
  get mayStepDown(): boolean { return ![this.view, ...this.mayCommit()].some(isUnprotected); }

  /** Views of ours that may still commit: the one being proposed, and the uncertain ones. */
  private mayCommit(): View[] { return this.proposing === null ? this.uncertain : [...this.uncertain, this.proposing]; }

  /**
   * Output may leave once every backup of every view that is or may become committed holds it:
   * the current view, the one being proposed, and proposals whose outcome is unknown. A view
   * adding a joiner thus finds it holding everything released, whenever it commits.
   */
  private releasable(): PrimaryAction[] {
    const holders = new Set(this.view.backups);
    for (const v of this.mayCommit()) {
      for (const b of v.backups) if (b !== this.self) holders.add(b);
    }
    if (holders.size === 0) return []; // unprotected: passthrough, or held for a joiner not yet proposed
    let min = Infinity;
    for (const b of holders) min = Math.min(min, this.ackedBy(b) ?? 0);
    if (min > this.released) {
      this.released = min;
      return [{ kind: 'release', epoch: min }];
    }
    return [];
  }

  /**
   * An unprotected primary that held output for a joiner that is gone (failed, refused to store,
   * removed) releases without acknowledgements again, or its replies would wait for good. Not
   * while another joiner is held for, nor while a view adding one is proposed: that joiner must
   * hold everything released by the time its view commits.
   */
  private resumePassthrough(): PrimaryAction[] {
    if (this.passthrough || this.fenced || !isUnprotected(this.view) || this.proposing !== null) return [];
    if (this.uncertain.some((v) => !isUnprotected(v))) return [];
    for (const j of this.joiners.values()) if (j.holdAfterEpoch !== null) return [];
    this.passthrough = true;
    this.released = this.captured;
    return [{ kind: 'passthrough', on: true }];
  }

  private maybeProposeJoin(id: string): PrimaryAction[] {
    const j = this.joiners.get(id);
    if (j === undefined || j.holdAfterEpoch === null || this.passthrough || this.proposing !== null || this.joinRetryInTicks > 0) return [];
    // It must hold every state whose output has left: the hold point, and all released epochs.
    if (j.acked < j.holdAfterEpoch || j.acked < this.released) return [];
    const next = nextView(this.view, this.self, [...this.view.backups, id]);
    return this.proposeView(next);
  }

  private proposeView(next: View): PrimaryAction[] {
    this.proposing = next;
    return [{ kind: 'propose', view: next }];
  }

  private fence(reason: string): PrimaryAction[] {
    this.fenced = true;
    this.joiners.clear();
    return [{ kind: 'fence', reason }];
  }
}

/** Longest wait, in driver ticks, before a join whose proposals keep failing is proposed again. */
export const JOIN_RETRY_MAX_TICKS = 10;

/** A joiner this close (in epochs) to the primary's head is considered caught up (default). */
export const JOIN_CATCH_UP_EPOCHS = 2;
