/**
 * The dashboard's browser side: loads /api/state, follows /api/stream (Server-Sent Events) and
 * renders the protection banner, the replicas, the live charts, the timeline and the guest.
 * Actions ask for confirmation and send the admin token as a bearer token. No framework, no CDN:
 * esbuild bundles this file with uPlot into dist/dashboard/public/app.js.
 *
 * The page never shows old data as current: with no update for STALE_AFTER_MS (the server sends
 * one every 250 ms) it says NO DATA, dims what it last saw and disables the actions; it reconnects
 * by itself, also after an HTTP error answer that makes a browser's EventSource give up.
 */
import type { ActionName, ClusterState, DashboardState, GuestInfo, MemberState, SeriesPoint, TimelineEvent } from '../model.js';
import { fmtBytes, fmtClock, fmtMs } from './chart-units.js';
import { Charts } from './charts.js';
import { clipText, count, describeResult, fmtAge, httpProblem, pageTitle, protectionReason } from './text.js';
import './style.css';

/** Timeline entries drawn at most. */
const TIMELINE_SHOWN = 300;
/** Chart points kept in the page. */
const POINTS_KEPT = 600;
const TOKEN_KEY = 'waterbear-admin-token';
/** The admin token the server refused (401), kept until another token is given. */
const REFUSED_TOKEN_KEY = 'waterbear-admin-token-refused';
/** No `state` or `cluster` event for this long: the page says NO DATA (the server sends `cluster` every 250 ms). */
const STALE_AFTER_MS = 2000;
/** So long without an update and the stream is dropped and opened again (a half-open connection, a stuck proxy). */
const STREAM_RESTART_AFTER_MS = 8000;
/** Reconnecting by hand (after an HTTP error answer, or a stream restart) waits this long at first… */
const RECONNECT_FIRST_MS = 1000;
/** …doubling at every failed try up to this long. */
const RECONNECT_MAX_MS = 10_000;
/** How often the page checks for staleness and updates its "… ago" texts. */
const WATCHDOG_INTERVAL_MS = 250;
/** A token typed in is checked with the server once typing paused this long. */
const TOKEN_CHECK_DELAY_MS = 300;
/** Characters of a member's error shown in its health cell (the whole text is its tooltip). */
const HEALTH_ERROR_CHARS = 60;

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const el = (tag: string, text?: string, cls?: string): HTMLElement => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls !== undefined) e.className = cls;
  return e;
};

let state: DashboardState | null = null;
let points: SeriesPoint[] = [];
let charts: Charts | null = null;
let chartsDirty = false;

// ---- admin token: from #token=… (never sent to the server in the URL) or typed in ----
const tokenInput = $<HTMLInputElement>('token');
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
const token = (): string => tokenInput.value.trim();
/** Why the server refused the token now typed in (401), or null. */
let tokenRefused: string | null = null;
const refusedToken = sessionStorage.getItem(REFUSED_TOKEN_KEY);
if (refusedToken !== null && refusedToken === token() && token() !== '') tokenRefused = 'the server refused it earlier';
/** The token the server is being asked about (POST api/admin/check), or null. */
let tokenChecking: string | null = null;
let tokenCheckTimer = 0;
function setToken(value: string, checkAfterMs: number): void {
  sessionStorage.setItem(TOKEN_KEY, value);
  if (value.trim() !== sessionStorage.getItem(REFUSED_TOKEN_KEY)) { tokenRefused = null; sessionStorage.removeItem(REFUSED_TOKEN_KEY); }
  scheduleTokenCheck(checkAfterMs);
  if (state !== null) renderCluster(state.cluster);
}
/** The server refused `sent` (401): said, and remembered across reloads, while it is the token given. */
function refuseToken(sent: string, why: string): void {
  if (token() !== sent) return;
  tokenRefused = why;
  sessionStorage.setItem(REFUSED_TOKEN_KEY, sent);
}
/** Asks the server about the token given, so that a wrong one is said before any action is tried. */
function scheduleTokenCheck(afterMs: number): void {
  clearTimeout(tokenCheckTimer);
  const sent = token();
  tokenChecking = sent === '' || tokenRefused !== null ? null : sent;
  if (tokenChecking !== null) tokenCheckTimer = window.setTimeout(() => { void checkToken(sent); }, afterMs);
}
async function checkToken(sent: string): Promise<void> {
  try {
    const res = await fetch('api/admin/check', { method: 'POST', headers: { authorization: `Bearer ${sent}` } });
    if (res.status === 401) {
      const j = await res.json().catch(() => ({})) as { error?: { code: string; message: string } };
      refuseToken(sent, httpProblem(res.status, j.error, `${res.status}: ${res.statusText}`));
    }
    // 200: accepted; 403: actions are disabled (the state says so); anything else: an action will say.
  } catch {
    // No answer: the link state says so, and an action refused later still says why.
  } finally {
    if (tokenChecking === sent) { tokenChecking = null; rerender(); }
  }
}
function tokenFromHash(): void {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash === null || fromHash === '') return;
  history.replaceState(null, '', location.pathname + location.search);
  tokenInput.value = fromHash;
  setToken(fromHash, 0);
}
tokenFromHash();
if (tokenChecking === null) scheduleTokenCheck(0); // a token kept in session storage
window.addEventListener('hashchange', tokenFromHash);
tokenInput.addEventListener('input', () => setToken(tokenInput.value, TOKEN_CHECK_DELAY_MS));

// ---- the link to the server: is what the page shows current? ----

/** live: updates arrive; stale: the stream is open but nothing came for STALE_AFTER_MS; down: no stream. */
type Link = 'connecting' | 'live' | 'stale' | 'down';
let link: Link = 'connecting';
/** When the page last had an update (its own clock), 0 before the first. */
let lastUpdateAt = 0;
/** When the page stopped being live (at first: when it loaded), 0 while live. */
let noDataSince = Date.now();
/** Why the stream failed, as the server (or a proxy) said, or null. */
let streamProblem: string | null = null;
const fresh = (): boolean => link === 'live';
/** The action in flight (one at a time: a switchover can take seconds), or null. */
let running: { action: ActionName; at: number } | null = null;

// ---- rendering ----

function renderCluster(c: ClusterState): void {
  renderBanner();
  $('cluster-name').textContent = c.cluster;
  $('view').textContent = String(c.view);
  const p = $('primary');
  p.textContent = c.primary ?? 'none';
  p.dataset.primary = c.primary ?? '';
  $('served-by').textContent = c.servedBy === null ? 'served by waterbear dashboard' : `served by replica ${c.servedBy}`;
  renderMembers(c);
  renderAdmin(c);
  renderNumbers(c);
}

/** What the page knows: the protection state while live, else NO DATA with what it last saw and since when. */
function renderBanner(): void {
  const banner = $('protection');
  const c = state?.cluster ?? null;
  if (!fresh()) {
    const since = noDataSince;
    banner.className = 'banner no-data';
    banner.dataset.state = 'NO-DATA';
    banner.dataset.lastState = c?.protection ?? '';
    const first = link === 'connecting' && c === null;
    banner.textContent = first ? 'CONNECTING…' : c === null ? 'NO DATA' : `NO DATA — last seen ${c.protection} ${fmtAge(Date.now() - lastUpdateAt)} ago`;
    banner.append(el('small', first && streamProblem === null ? 'waiting for the first update from the dashboard server' : `${link === 'stale' ? 'the dashboard server sends nothing' : 'not connected to the dashboard server'} since ${fmtClock(since / 1000)} (${fmtAge(Date.now() - since)}): reconnecting; what the page shows below is old and actions are disabled${streamProblem !== null ? ` — ${streamProblem}` : ''}`));
    document.body.dataset.link = link;
    document.title = pageTitle('NO DATA', c?.cluster ?? null);
    return;
  }
  document.body.dataset.link = link;
  if (c === null) return;
  const cls = c.protection === 'PROTECTED' ? 'protected' : c.protection === 'UNPROTECTED' ? 'unprotected' : 'no-primary';
  banner.className = `banner ${cls}`;
  banner.dataset.state = c.protection;
  banner.dataset.lastState = c.protection;
  banner.textContent = c.protection;
  banner.append(el('small', protectionReason(c)));
  // Parking is about reachability, not protection: said beside the protection state, not instead of it.
  const parked = c.primaryNumbers?.serviceParked === true;
  banner.dataset.parked = String(parked);
  if (parked) {
    banner.append(el('small', `SERVICE ADDRESS FREED: ${c.primary} lost its coordinator lease, cut its connections and stopped listening (state and held output kept); it listens again when the lease returns, or a backup takes over`, 'parked'));
  }
  document.title = pageTitle(parked ? `${c.protection} · SERVICE ADDRESS FREED` : c.protection, c.cluster);
}

/** Why the actions are disabled now (the same for every button), or null when they may run. */
function actionsBlocked(c: ClusterState): string | null {
  if (!c.admin.enabled) return 'actions disabled: start with --admin-token or WATERBEAR_ADMIN_TOKEN';
  if (!fresh()) return 'no live data from the dashboard server: actions are disabled until it reconnects';
  if (running !== null) return `${running.action} running (sent ${fmtAge(Date.now() - running.at)} ago): wait for it to finish`;
  if (token() === '') return 'enter the admin token to enable actions';
  if (tokenChecking !== null) return 'checking the admin token…';
  if (tokenRefused !== null) return `the admin token was refused (${tokenRefused}): enter the right one, or open the page with #token=…`;
  return null;
}

function actionsFor(m: MemberState, c: ClusterState): Array<{ label: string; action: ActionName; body: Record<string, string>; confirm: string; enabled: boolean; danger?: boolean }> {
  if (m.kind !== 'replica' || c.primary === null || m.id === c.primary) return [];
  const out = [];
  if (m.inView) {
    out.push({ label: 'Switch over here', action: 'switchover' as const, body: { target: m.id }, enabled: m.inSync === true,
      confirm: `Planned switchover: move the primary from ${c.primary} to ${m.id}? The guest pauses after a final checkpoint until ${m.id} serves; no output is lost.` });
    out.push({ label: 'Remove backup', action: 'remove-backup' as const, body: { replica: m.id }, enabled: true, danger: true,
      confirm: `Remove backup ${m.id} from the view? If it is the only backup, ${c.primary} runs UNPROTECTED.` });
  } else {
    out.push({ label: 'Add as backup', action: 'add-backup' as const, body: { replica: m.id }, enabled: m.up,
      confirm: `Add ${m.id} as a backup? It catches up (full image, then increments) and joins the view.` });
  }
  return out;
}

function renderMembers(c: ClusterState): void {
  const body = document.querySelector('#members tbody')!;
  const seen = new Set<string>();
  const blocked = actionsBlocked(c);
  for (const m of c.members) {
    seen.add(m.id);
    let row = body.querySelector<HTMLTableRowElement>(`tr[data-member="${CSS.escape(m.id)}"]`);
    if (row === null) {
      row = document.createElement('tr');
      row.dataset.member = m.id;
      row.dataset.testid = `member-${m.id}`;
      for (const k of ['id', 'role', 'address', 'health', 'view', 'epoch', 'lag', 'sync', 'actions']) { const td = el('td'); td.dataset.col = k; row.append(td); }
      body.append(row);
    }
    const cell = (k: string): HTMLElement => row!.querySelector<HTMLElement>(`td[data-col=${k}]`)!;
    cell('id').textContent = m.id;
    const role = cell('role');
    role.replaceChildren(el('span', m.serviceParked ? `${m.role} · parked` : m.role, `role ${m.role}${m.serviceParked ? ' parked' : ''}`));
    role.dataset.testid = 'role';
    role.dataset.role = m.role;
    role.dataset.parked = String(m.serviceParked);
    role.title = m.serviceParked ? 'lost its coordinator lease: the service address is freed until the lease returns' : '';
    cell('address').textContent = m.address + (m.dashboard !== null ? `  ·  dashboard ${m.dashboard}` : '');
    const health = el('span', m.up ? 'up' : `down${m.error !== null ? ` (${clipText(m.error, HEALTH_ERROR_CHARS)})` : ''}`, m.up ? 'up' : 'down');
    if (!m.up && m.error !== null) health.title = m.error;
    cell('health').replaceChildren(health);
    cell('view').textContent = m.kind === 'witness' ? '–' : String(m.view);
    cell('epoch').textContent = m.kind === 'witness' ? '–' : String(m.epoch);
    cell('lag').textContent = m.lagEpochs === null ? '–' : `${m.lagEpochs} ep · ${fmtMs((m.lagSeconds ?? 0) * 1000)}`;
    cell('sync').replaceChildren(m.inSync === null ? el('span', '–') : el('span', m.inSync ? 'yes' : 'no', m.inSync ? 'yes' : 'no'));
    // Buttons are rebuilt only when they change, so a click is never lost to a re-render; whether
    // they may be clicked is set on every render.
    const acts = actionsFor(m, c);
    const sig = JSON.stringify([c.admin.enabled, acts.map((a) => [a.label, a.confirm])]);
    const ac = cell('actions');
    if (ac.dataset.sig !== sig) {
      ac.dataset.sig = sig;
      ac.replaceChildren();
      if (c.admin.enabled) {
        for (const a of acts) {
          const b = el('button', a.label, a.danger === true ? 'danger' : undefined) as HTMLButtonElement;
          b.dataset.testid = `action-${a.action}-${m.id}`;
          b.addEventListener('click', () => { void runAction(a.action, a.body, a.confirm); });
          ac.append(b);
        }
      }
    }
    ac.querySelectorAll('button').forEach((b, i) => {
      const a = acts[i];
      setAllowed(b as HTMLButtonElement, blocked ?? (a?.enabled === true ? null : 'not possible now (not in sync / not up)'));
    });
  }
  for (const row of Array.from(body.querySelectorAll<HTMLTableRowElement>("tr"))) if (!seen.has(row.dataset.member ?? '')) row.remove();
}

/** Enable a button, or disable it saying why (its tooltip, and its accessible description). */
function setAllowed(b: HTMLButtonElement, whyNot: string | null): void {
  b.disabled = whyNot !== null;
  b.title = whyNot ?? '';
  if (whyNot === null) b.removeAttribute('aria-description'); else b.setAttribute('aria-description', whyNot);
}

function renderAdmin(c: ClusterState): void {
  const s = $('admin-state');
  const cp = $<HTMLButtonElement>('checkpoint');
  $('token-box').style.display = c.admin.enabled ? '' : 'none';
  cp.style.display = c.admin.enabled ? '' : 'none';
  const blocked = actionsBlocked(c);
  s.textContent = blocked ?? 'actions enabled';
  s.dataset.refused = String(tokenRefused !== null);
  s.className = tokenRefused !== null || (blocked !== null && !fresh()) ? 'refused' : '';
  setAllowed(cp, blocked ?? (c.primary === null ? 'no primary to checkpoint' : null));
}

function renderNumbers(c: ClusterState): void {
  const n = c.primaryNumbers;
  const box = $('numbers');
  const items: Array<[string, string]> = n === null ? [['primary', 'none answering']] : [
    ['primary', `${n.replica}`], ['service address', n.serviceParked ? 'freed (lease lost)' : 'listening'], ['epoch captured / released', `${n.capturedEpoch} / ${n.releasedEpoch}`],
    ['checkpoints', String(n.checkpoints)], ['last checkpoint', fmtBytes(n.lastCheckpointBytes)], ['last pause', fmtMs(n.lastPauseUs / 1000)],
    ['pages sent as deltas', n.capturedPages === 0 ? '–' : `${Math.round((100 * n.deltaPages) / n.capturedPages)}%`],
    ['checkpoints refused by backups', String(n.refusals)],
    ['replication lag', `${count(n.lagEpochs, 'epoch')} · ${fmtMs(n.lagSeconds * 1000)}`], ['held output', fmtBytes(n.heldBytes)],
    ['added reply latency (avg, last minute)', n.recentCommitLatencyMs === null ? '–' : fmtMs(n.recentCommitLatencyMs)],
    ['guest memory', fmtBytes(n.memoryBytes)], ['connections accepted', String(n.connectionsAccepted)],
    ['received / sent', `${fmtBytes(n.bytesReceived)} / ${fmtBytes(n.bytesSent)}`],
  ];
  box.replaceChildren(...items.map(([k, v]) => { const d = el('div'); d.append(el('b', v), el('span', k)); return d; }));
}

function timelineItem(e: TimelineEvent): HTMLElement {
  const li = el('li');
  li.dataset.kind = e.kind;
  li.dataset.seq = String(e.seq);
  li.dataset.at = String(e.at);
  const t = el('time', new Date(e.at).toLocaleTimeString(undefined, { hour12: false }) + `.${String(e.at % 1000).padStart(3, '0')}`);
  li.append(t, el('span', e.kind.replace(/-/g, ' '), 'kind'), el('span', e.message), el('span', e.durationMs !== undefined ? ` (${fmtMs(e.durationMs)})` : ''), el('span', e.source, 'src'));
  return li;
}

/** Newest first by time (events replicas report arrive later than they happened). */
function renderTimeline(events: TimelineEvent[]): void {
  const sorted = [...events].sort((a, b) => b.at - a.at || b.seq - a.seq).slice(0, TIMELINE_SHOWN);
  $('timeline').replaceChildren(...sorted.map(timelineItem));
}

function addTimeline(e: TimelineEvent): void {
  const ol = $('timeline');
  const item = timelineItem(e);
  let before: Element | null = ol.firstElementChild;
  while (before !== null && Number((before as HTMLElement).dataset.at) > e.at) before = before.nextElementSibling;
  ol.insertBefore(item, before);
  while (ol.children.length > TIMELINE_SHOWN) ol.lastElementChild!.remove();
}

function renderGuest(g: GuestInfo): void {
  const dl = el('dl');
  const row = (k: string, v: string | HTMLElement): void => { dl.append(el('dt', k)); const dd = el('dd'); if (typeof v === 'string') dd.textContent = v; else dd.append(v); dl.append(dd); };
  row('module', `${g.module} (${fmtBytes(g.moduleBytes)})`);
  row('module sha256', g.moduleSha256 || '–');
  row('image sha256 (prepared)', g.imageSha256 ?? 'no primary running');
  row('memory', `${g.memory.initialPages} pages initial${g.memory.maximumPages !== null ? `, ${g.memory.maximumPages} max` : ''}; limit ${fmtBytes(g.memory.limitBytes)}; now ${fmtBytes(g.memory.currentBytes)}`);
  row('listeners', g.listeners.join(', ') || '–');
  row('arguments', g.args.join(' ') || '–');
  row('environment', g.envNames.join(', ') || '–');
  row('directories', g.dirs.map((d) => `${d.guestPath} → ${d.hostPath ?? '(empty)'}`).join(', ') || '–');
  row('extension stack', g.extensionStack.length === 0 ? 'no primary running' : g.extensionStack.join(' → '));
  row('dirty-page tracker', g.tracker);
  const imports = el('div', undefined, 'imports');
  imports.textContent = g.imports.map((i) => `${i.supported ? '✓' : '✗'} ${i.module}.${i.name}`).join('\n');
  imports.style.whiteSpace = 'pre';
  row(`imports (${g.imports.length})`, imports);
  if (g.problems.length > 0) row('problems', g.problems.join('; '));
  $('guest').replaceChildren(dl);
}

function scheduleCharts(): void {
  if (chartsDirty) return;
  chartsDirty = true;
  requestAnimationFrame(() => { chartsDirty = false; charts?.update(points); });
}

// ---- actions ----

function confirmDialog(text: string): Promise<boolean> {
  const d = $<HTMLDialogElement>('confirm');
  $('confirm-text').textContent = text;
  d.returnValue = '';
  d.showModal();
  return new Promise((resolve) => d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true }));
}

let toastTimer = 0;
function toast(text: string, error = false): void {
  const t = $('toast');
  t.textContent = text;
  t.className = `toast show${error ? ' error' : ''}`;
  clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => { t.className = 'toast'; }, 6000);
}

function rerender(): void { if (state !== null) renderCluster(state.cluster); else renderBanner(); }

async function runAction(action: ActionName, body: Record<string, string>, confirmText: string): Promise<void> {
  if (running !== null) return;
  if (!(await confirmDialog(confirmText))) return;
  // The page may have gone stale, or another action started, while the dialog was open.
  const blocked = state === null ? 'no data from the dashboard server' : actionsBlocked(state.cluster);
  if (blocked !== null) { toast(`${action} not sent: ${blocked}`, true); return; }
  running = { action, at: Date.now() };
  rerender();
  toast(`${action}: sent…`);
  try {
    const sentToken = token();
    const res = await fetch(`api/actions/${action}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${sentToken}` }, body: JSON.stringify(body) });
    const j = await res.json().catch(() => ({})) as { ok?: boolean; result?: unknown; error?: { code: string; message: string } };
    if (res.status === 401) refuseToken(sentToken, httpProblem(res.status, j.error, `${res.status}: ${res.statusText}`));
    if (!res.ok) toast(`${action} failed: ${j.error?.message ?? `HTTP ${res.status}`} [${j.error?.code ?? res.status}]`, true);
    else toast(describeResult(action, j.result));
  } catch (err) {
    toast(`${action} failed: ${(err as Error).message}`, true);
  } finally {
    running = null;
    rerender();
  }
}

$('checkpoint').addEventListener('click', () => { void runAction('checkpoint', {}, 'Trigger a checkpoint on the primary now?'); });

// ---- live updates ----

let es: EventSource | null = null;
let reconnectDelay = RECONNECT_FIRST_MS;
let reconnectTimer = 0;
/** The page's own clock when the current stream was opened (a restart waits for its first update). */
let streamOpenedAt = 0;

function setLink(next: Link): void {
  if (next === link) return;
  if (next === 'live') noDataSince = 0;
  else if (link === 'live') noDataSince = lastUpdateAt; // no data since the last update
  link = next;
  rerender();
  renderLive();
}

/** The small live/stale/disconnected note beside the summary. */
function renderLive(): void {
  const live = $('live');
  live.dataset.link = link;
  if (link === 'live') { live.textContent = 'live'; live.className = 'live on'; return; }
  live.className = 'live off';
  const since = noDataSince === 0 ? '' : ` for ${fmtAge(Date.now() - noDataSince)}`;
  const retry = reconnectTimer !== 0 ? ' (reconnecting)' : '';
  live.textContent = link === 'connecting' ? `connecting…${since}` : link === 'stale' ? `STALE: no update${since}${retry}` : `disconnected${since}: reconnecting…`;
  if (streamProblem !== null) live.textContent += ` — ${streamProblem}`;
}

/** An update arrived: the page is current again. */
function updated(): void {
  lastUpdateAt = Date.now();
  reconnectDelay = RECONNECT_FIRST_MS;
  streamProblem = null;
  setLink('live');
}

/** Close the stream and open a new one after the backoff delay (doubling up to RECONNECT_MAX_MS). */
function reconnectLater(): void {
  es?.close();
  es = null;
  if (reconnectTimer !== 0) return;
  reconnectTimer = window.setTimeout(() => { reconnectTimer = 0; connect(); }, reconnectDelay);
  reconnectDelay = Math.min(RECONNECT_MAX_MS, reconnectDelay * 2);
  renderLive();
}

/**
 * An EventSource gives up for good on an HTTP error answer (a 503 "too many live streams", a
 * proxy's 502): ask the stream URL once more to read why, and let go of it at once if it answers.
 */
async function readStreamProblem(): Promise<void> {
  const abort = new AbortController();
  try {
    const res = await fetch('api/stream', { signal: abort.signal, cache: 'no-store' });
    if (res.ok) { abort.abort(); return; }
    const text = await res.text();
    let error: { code?: string; message?: string } | undefined;
    try { error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error; } catch { /* not JSON: a proxy's page */ }
    streamProblem = `the server answered ${httpProblem(res.status, error, `HTTP ${res.status}${res.statusText !== '' ? ` ${res.statusText}` : ''}`)}`;
  } catch (err) {
    if (!abort.signal.aborted) streamProblem = `cannot reach the server (${(err as Error).message})`;
  }
  rerender();
  renderLive();
}

function connect(): void {
  es?.close();
  const source = new EventSource('api/stream');
  es = source;
  streamOpenedAt = Date.now();
  // Events of a stream that was replaced are ignored.
  const on = (name: string, f: (data: string) => void): void => source.addEventListener(name, (ev) => { if (es === source) f((ev as MessageEvent<string>).data); });
  source.addEventListener('error', () => {
    if (es !== source) return;
    if (source.readyState === EventSource.CLOSED) { reconnectLater(); void readStreamProblem(); }
    setLink('down');
  });
  on('state', (data) => {
    state = JSON.parse(data) as DashboardState;
    points = state.series.slice(-POINTS_KEPT);
    updated();
    renderCluster(state.cluster);
    renderTimeline(state.timeline);
    renderGuest(state.guest);
    scheduleCharts();
  });
  on('cluster', (data) => {
    if (state === null) return;
    const c = JSON.parse(data) as ClusterState;
    const guestChanged = c.primaryNumbers?.imageSha256 !== state.cluster.primaryNumbers?.imageSha256 || c.primary !== state.cluster.primary;
    state.cluster = c;
    updated();
    renderCluster(c);
    if (guestChanged) void fetch('api/guest').then((r) => r.json()).then((g: GuestInfo) => { if (state !== null) { state.guest = g; renderGuest(g); } });
  });
  on('timeline', (data) => {
    const e = JSON.parse(data) as TimelineEvent;
    if (state !== null) {
      state.timeline.push(e);
      if (state.timeline.length > 2 * TIMELINE_SHOWN) state.timeline.splice(0, state.timeline.length - TIMELINE_SHOWN);
    }
    addTimeline(e);
  });
  on('sample', (data) => {
    points.push(JSON.parse(data) as SeriesPoint);
    if (points.length > POINTS_KEPT) points.splice(0, points.length - POINTS_KEPT);
    scheduleCharts();
  });
}

/** Every WATCHDOG_INTERVAL_MS: stale after STALE_AFTER_MS without an update; a new stream after STREAM_RESTART_AFTER_MS. */
function watchdog(): void {
  const now = Date.now();
  const quietFor = now - Math.max(lastUpdateAt, streamOpenedAt);
  if (link === 'live' && now - lastUpdateAt > STALE_AFTER_MS) setLink('stale');
  if (es !== null && es.readyState !== EventSource.CLOSED && quietFor > STREAM_RESTART_AFTER_MS) reconnectLater();
  // The "… ago" texts move on while nothing arrives.
  if (link !== 'live') { renderBanner(); renderLive(); }
}

charts = new Charts($('charts'));
connect();
window.setInterval(watchdog, WATCHDOG_INTERVAL_MS);
