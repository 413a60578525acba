import { nextView, type View } from './view.js';

/** What the backup's driver must do. */
export type BackupAction =
  | { kind: 'apply'; epoch: number; full: boolean } // store this checkpoint atomically, then call onApplied
  | { kind: 'ack'; view: number; epoch: number }
  | { kind: 'nack'; view: number; epoch: number; code: string; reason: string }
  | { kind: 'propose'; view: View } // take over: compare-and-set the next view
  | { kind: 'promote'; view: View; epoch: number } // restore `epoch` and run as primary of `view`
  | { kind: 'join'; primary: string; view: number } // ask the primary to protect this replica
  | { kind: 'demote'; reason: string }; // stop following (fenced out of the view)

export type BackupRole = 'backup' | 'joining' | 'promoting' | 'primary' | 'idle';

/**
 * The backup's side of replication, as a pure state machine. It accepts checkpoints only from
 * the primary of its current view (views fence), in order; acknowledges what is durable; and
 * proposes a takeover when the primary is silent and its coordinator lease has lapsed.
 */
export class BackupProtocol {
  private view: View | null;
  /** Highest epoch stored completely, in the chain of `chainPrimary`. 0 = no usable state. */
  private durable = 0;
  /**
   * Checkpoints accepted and being applied, in epoch order. Several may be pending at once so the
   * driver can store them in one transaction (group commit); each is acknowledged only once
   * `onApplied` says it is stored, and always in order.
   */
  private applying: Array<{ epoch: number; full: boolean }> = [];
  /** The primary whose chain the store holds, and in which view that chain started. */
  private chainPrimary: string | null = null;
  private proposing = false;
  private promoted = false;

  /** The view the restored chain's last checkpoint arrived in (see the constructor). */
  private restoredView: number | null = null;

  /**
   * `restored`: the chain found in this replica's store at start (its latest epoch, whose chain it
   * is and the view its last checkpoint arrived in), so that after a whole-cluster restart a
   * backup can still take over. It counts only if the first view this replica learns is that
   * same view: a later view may have the same primary on a NEW chain (it was primary, lost the
   * role and got it back), and taking over with the old chain would send clients back in time
   * (found: a switchover back to the old primary, then a takeover by the replica that had just
   * handed over, restored the chain it had stored two views earlier).
   */
  constructor(readonly self: string, view: View | null = null, restored?: { durable: number; chainPrimary: string; chainView: number }) {
    this.view = view;
    if (restored !== undefined && restored.durable > 0) {
      this.durable = restored.durable;
      this.chainPrimary = restored.chainPrimary;
      this.restoredView = restored.chainView;
    }
    if (view !== null) this.checkRestored(view);
  }

  private checkRestored(first: View): void {
    if (this.restoredView !== null && first.view !== this.restoredView) this.forgetChain();
    this.restoredView = null;
  }

  private forgetChain(): void {
    this.durable = 0;
    this.chainPrimary = null;
    this.applying = [];
  }

  /** Whose chain the store holds (null: none usable). */
  get chainOf(): string | null { return this.chainPrimary; }

  get role(): BackupRole {
    if (this.promoted) return 'primary';
    if (this.proposing) return 'promoting';
    if (this.view === null) return 'idle';
    if (this.view.backups.includes(this.self)) return 'backup';
    return this.view.primary === this.self ? 'promoting' : 'joining';
  }

  get durableEpoch(): number { return this.durable; }
  get currentView(): View | null { return this.view; }

  /** The coordinator committed `view`. */
  onViewCommitted(view: View): BackupAction[] {
    if (this.promoted || (this.view !== null && view.view <= this.view.view)) return [];
    const previous = this.view;
    this.view = view;
    this.proposing = false;
    if (previous === null) this.checkRestored(view);
    if (view.primary === this.self) {
      // Promote only from a backup of the previous view holding that primary's chain. A replica
      // that finds itself primary after a restart may have served past what its store holds.
      if (this.durable === 0 || previous === null || !previous.backups.includes(this.self) || this.chainPrimary !== previous.primary) {
        return [{ kind: 'demote', reason: `primary of view ${view.view} but holding no checkpoint of the previous primary's chain` }];
      }
      this.promoted = true;
      return [{ kind: 'promote', view, epoch: this.durable }];
    }
    // A new primary starts a new chain: what we hold is of no use to it. So may the same primary
    // in a view we did not see (another primary's tenure may lie in between): forget it then too.
    if (previous !== null && (previous.primary !== view.primary || view.view !== previous.view + 1)) this.forgetChain();
    if (view.backups.includes(this.self)) return [];
    return [{ kind: 'join', primary: view.primary, view: view.view }];
  }

  /** A checkpoint arrived from `from` in `view`. */
  onCheckpoint(from: string, view: number, epoch: number, full: boolean): BackupAction[] {
    if (this.promoted || this.view === null) return [];
    if (view !== this.view.view || from !== this.view.primary) {
      return [{ kind: 'nack', view, epoch, code: 'WB_STALE_VIEW', reason: `this replica is in view ${this.view.view} with primary ${this.view.primary}` }];
    }
    // What the store will hold once everything accepted so far is applied.
    const tail = this.applying.at(-1);
    const tailEpoch = tail?.epoch ?? this.durable;
    const tailChain = this.applying.some((a) => a.full) ? this.view.primary : this.chainPrimary;
    // A replayed or reordered image must never move the store backwards: we acknowledged newer.
    if (tailChain === from && epoch <= tailEpoch) {
      return [{ kind: 'nack', view, epoch, code: 'WB_PROTOCOL', reason: `checkpoint ${epoch} is not newer than stored ${tailEpoch}` }];
    }
    if (!full && (tailChain !== from || epoch !== tailEpoch + 1)) {
      return [{ kind: 'nack', view, epoch, code: 'WB_PROTOCOL', reason: `expected checkpoint ${tailEpoch + 1} of ${from}'s chain or a full image, got ${epoch}` }];
    }
    this.applying.push({ epoch, full });
    return [{ kind: 'apply', epoch, full }];
  }

  /**
   * Pre-copy pages from `from` in `view` may be staged: the same fence as checkpoints (the
   * primary of our current view). Staging never touches the chain, so no order applies here;
   * the final full checkpoint goes through `onCheckpoint`.
   */
  mayStage(from: string, view: number): boolean {
    return !this.promoted && this.view !== null && view === this.view.view && from === this.view.primary;
  }

  /** Epochs accepted and not yet applied or failed, oldest first. */
  get pendingEpochs(): number[] { return this.applying.map((a) => a.epoch); }

  /**
   * The driver stored checkpoint `epoch` (durably, or in memory with --ack-after memory). Only
   * the oldest pending epoch can be applied: anything else is ignored.
   */
  onApplied(epoch: number, full: boolean): BackupAction[] {
    if (this.applying[0]?.epoch !== epoch || this.view === null) return [];
    this.applying.shift();
    this.durable = epoch;
    if (full) this.chainPrimary = this.view.primary;
    return this.promoted ? [] : [{ kind: 'ack', view: this.view.view, epoch }];
  }

  /**
   * Applying `epoch` failed (corrupt, torn, disk full): nothing of it was stored. Every later
   * pending epoch builds on it and is dropped too; the nack asks the primary for a full image.
   */
  onApplyFailed(epoch: number, code: string, reason: string): BackupAction[] {
    const i = this.applying.findIndex((a) => a.epoch === epoch);
    if (i < 0 || this.view === null) return [];
    this.applying.splice(i);
    return [{ kind: 'nack', view: this.view.view, epoch, code, reason }];
  }

  /**
   * The store lost epochs already acknowledged from memory (--ack-after memory, then the write
   * failed): what this replica could restore is older than what clients may have seen, so it
   * must never take over with it. It holds no usable chain until a full image is stored.
   */
  onStoreLost(): BackupAction[] {
    this.forgetChain();
    return [];
  }

  /**
   * The primary has been silent past the heartbeat timeout and its coordinator lease has lapsed:
   * if this replica is a backup of the view holding a complete chain, propose taking over.
   */
  onPrimaryDead(): BackupAction[] {
    const v = this.view;
    if (v === null || this.promoted || this.proposing || !v.backups.includes(this.self)) return [];
    if (this.durable === 0 || this.chainPrimary !== v.primary) return [];
    this.proposing = true;
    return [{ kind: 'propose', view: nextView(v, this.self, v.backups.filter((b) => b !== this.self)) }];
  }

  /** Our takeover proposal lost the compare-and-set. */
  onProposalFailed(): BackupAction[] {
    this.proposing = false;
    return [];
  }
}
