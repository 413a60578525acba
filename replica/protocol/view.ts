import type { View } from '../coord/coordinator.js';

/**
 * A view: the numbered configuration held by the coordinator (see coord/coordinator.ts). A
 * replica acts only in the current view; views change only by compare-and-set through it.
 */
export type { View };

/** True when `v` installs no backup: its primary runs unprotected (rule 1). */
export function isUnprotected(v: View): boolean {
  return v.backups.length === 0;
}

/** The view after `v` with `primary` and `backups` (the next number). */
export function nextView(v: View, primary: string, backups: readonly string[]): View {
  return { view: v.view + 1, primary, backups: [...new Set(backups)].filter((b) => b !== primary).sort() };
}

export function sameView(a: View | null, b: View | null): boolean {
  return a !== null && b !== null && a.view === b.view && a.primary === b.primary &&
    a.backups.length === b.backups.length && a.backups.every((x, i) => x === b.backups[i]);
}

export function formatView(v: View): string {
  return `view ${v.view} {primary ${v.primary}, backups [${v.backups.join(', ')}]}`;
}
