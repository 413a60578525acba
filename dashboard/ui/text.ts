// Wording of the dashboard page: plain functions, no DOM (unit-tested in tests/dashboard/ui-text.test.ts).

/**
 * `text` cut to at most `max` characters at a word boundary, with an ellipsis when cut (the page
 * shows the whole text in a tooltip). A single word longer than `max` is cut inside it.
 */
export function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  const room = text.slice(0, Math.max(1, max - 1));
  const space = room.search(/\s\S*$/);
  const cut = space >= max / 2 ? room.slice(0, space) : room;
  return `${cut.replace(/[\s,;:.(-]+$/, '')}…`;
}

/** "b", "b and c", "b, c and d". */
export function listOf(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** Why the cluster is (not) protected, in one sentence, singular or plural as the backups are. */
export function protectionReason(c: { protection: string; primary: string | null; backups: readonly string[] }): string {
  if (c.protection === 'PROTECTED') {
    const one = c.backups.length === 1;
    return `${one ? 'backup' : 'backups'} ${listOf(c.backups)} ${one ? 'acknowledges' : 'acknowledge'} every checkpoint before output leaves ${c.primary ?? '?'}`;
  }
  return c.protection === 'UNPROTECTED' ? `${c.primary ?? '?'} runs with no backup: a failure now loses state` : 'no replica answers as primary: the service is down';
}

/** A duration for "… ago" and "for …": 0 s, 42 s, 3 min 5 s, 2 h 10 min. */
export function fmtAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 === 0 ? '' : ` ${s % 60} s`}`;
  return `${Math.floor(s / 3600)} h${Math.floor(s / 60) % 60 === 0 ? '' : ` ${Math.floor(s / 60) % 60} min`}`;
}

/** What an action's result (the `result` of a 200 answer) says, for a person. */
export function describeResult(action: string, result: unknown): string {
  const r = (typeof result === 'object' && result !== null ? result : {}) as Record<string, unknown>;
  const on = typeof r.replica === 'string' ? ` (run on ${r.replica})` : '';
  switch (action) {
    case 'checkpoint': if (typeof r.epoch === 'number') return `checkpoint taken: epoch ${r.epoch}${on}`; break;
    case 'switchover': if (typeof r.view === 'number') return `switchover done: view ${r.view}${on}`; break;
    case 'remove-backup': if (typeof r.view === 'number') return `backup removed: view ${r.view}${on}`; break;
    case 'add-backup': if (typeof r.accepted === 'boolean') return r.accepted ? `backup accepted: it catches up, then joins the view${on}` : `the backup was not accepted${on}`; break;
  }
  const rest = Object.entries(r).map(([k, v]) => `${k} ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `${action} done${rest.length > 0 ? `: ${rest.join(', ')}` : ''}`;
}

/**
 * What an HTTP error answer said: "401 WB_UNAUTHORIZED: wrong admin token" from the dashboard's
 * JSON error, else `fallback` (an answer without one: a proxy's page).
 */
export function httpProblem(status: number, error: { code?: string; message?: string } | undefined, fallback: string): string {
  return error?.message === undefined ? fallback : `${status} ${error.code ?? ''}: ${error.message}`.replace(' :', ':');
}

/** The page's title: the state first, so that a background tab shows it. */
export function pageTitle(state: string, cluster: string | null): string {
  return `${state}${cluster !== null && cluster !== '' ? ` · ${cluster}` : ''} · waterbear`;
}

/** `n` and the unit, plural unless n is 1 ("1 epoch", "3 epochs"). */
export function count(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}
