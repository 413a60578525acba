/**
 * The dashboard's browser side: loads /api/state, follows /api/stream (Server-Sent Events) and
 * renders the protection banner, the replicas, the live charts, the timeline and the guest.
 * Actions ask for confirmation and send the admin token as a bearer token. No framework, no CDN:
 * esbuild bundles this file with uPlot into dist/dashboard/public/app.js.
 */
import type { ActionName, ClusterState, DashboardState, GuestInfo, MemberState, SeriesPoint, TimelineEvent } from '../model.js';
import { fmtBytes, fmtMs } from './chart-units.js';
import { Charts } from './charts.js';
import './style.css';

/** Timeline entries drawn at most. */
const TIMELINE_SHOWN = 300;
/** Chart points kept in the page. */
const POINTS_KEPT = 600;
const TOKEN_KEY = 'waterbear-admin-token';

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
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash !== null && fromHash !== '') {
  sessionStorage.setItem(TOKEN_KEY, fromHash);
  history.replaceState(null, '', location.pathname + location.search);
}
const tokenInput = $<HTMLInputElement>('token');
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? '';
tokenInput.addEventListener('input', () => { sessionStorage.setItem(TOKEN_KEY, tokenInput.value); if (state !== null) renderCluster(state.cluster); });
const token = (): string => tokenInput.value.trim();

// ---- rendering ----

function renderCluster(c: ClusterState): void {
  const banner = $('protection');
  const cls = c.protection === 'PROTECTED' ? 'protected' : c.protection === 'UNPROTECTED' ? 'unprotected' : 'no-primary';
  banner.className = `banner ${cls}`;
  banner.dataset.state = c.protection;
  banner.textContent = c.protection;
  const why = c.protection === 'PROTECTED' ? `backups ${c.backups.join(', ')} acknowledge every checkpoint before output leaves ${c.primary}`
    : c.protection === 'UNPROTECTED' ? `${c.primary} runs with no backup: a failure now loses state` : 'no replica answers as primary: the service is down';
  banner.append(el('small', why));
  // Parking is about reachability, not protection: said beside the protection state, not instead of it.
  const parked = c.primaryNumbers?.serviceParked === true;
  banner.dataset.parked = String(parked);
  if (parked) {
    banner.append(el('small', `SERVICE ADDRESS FREED: ${c.primary} lost its coordinator lease, cut its connections and stopped listening (state and held output kept); it listens again when the lease returns, or a backup takes over`, 'parked'));
  }
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
  const canAct = c.admin.enabled && token() !== '';
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
    cell('health').replaceChildren(el('span', m.up ? 'up' : `down${m.error !== null ? ` (${m.error.slice(0, 60)})` : ''}`, m.up ? 'up' : 'down'));
    cell('view').textContent = m.kind === 'witness' ? '–' : String(m.view);
    cell('epoch').textContent = m.kind === 'witness' ? '–' : String(m.epoch);
    cell('lag').textContent = m.lagEpochs === null ? '–' : `${m.lagEpochs} ep · ${fmtMs((m.lagSeconds ?? 0) * 1000)}`;
    cell('sync').replaceChildren(m.inSync === null ? el('span', '–') : el('span', m.inSync ? 'yes' : 'no', m.inSync ? 'yes' : 'no'));
    // Buttons are rebuilt only when they change, so a click is never lost to a re-render.
    const acts = actionsFor(m, c);
    const sig = JSON.stringify([canAct, c.admin.enabled, acts.map((a) => [a.label, a.enabled, a.confirm])]);
    const ac = cell('actions');
    if (ac.dataset.sig !== sig) {
      ac.dataset.sig = sig;
      ac.replaceChildren();
      if (c.admin.enabled) {
        for (const a of acts) {
          const b = el('button', a.label, a.danger === true ? 'danger' : undefined) as HTMLButtonElement;
          b.dataset.testid = `action-${a.action}-${m.id}`;
          b.disabled = !canAct || !a.enabled;
          b.title = !canAct ? 'enter the admin token first' : !a.enabled ? 'not possible now (not in sync / not up)' : '';
          b.addEventListener('click', () => { void runAction(a.action, a.body, a.confirm); });
          ac.append(b);
        }
      }
    }
  }
  for (const row of Array.from(body.querySelectorAll<HTMLTableRowElement>("tr"))) if (!seen.has(row.dataset.member ?? '')) row.remove();
}

function renderAdmin(c: ClusterState): void {
  const s = $('admin-state');
  const cp = $<HTMLButtonElement>('checkpoint');
  $('token-box').style.display = c.admin.enabled ? '' : 'none';
  cp.style.display = c.admin.enabled ? '' : 'none';
  s.textContent = !c.admin.enabled ? 'actions disabled: start with --admin-token or WATERBEAR_ADMIN_TOKEN'
    : token() === '' ? 'enter the admin token to enable actions' : 'actions enabled';
  cp.disabled = !c.admin.enabled || token() === '' || c.primary === null;
}

function renderNumbers(c: ClusterState): void {
  const n = c.primaryNumbers;
  const box = $('numbers');
  const items: Array<[string, string]> = n === null ? [['primary', 'none answering']] : [
    ['primary', `${n.replica}`], ['service address', n.serviceParked ? 'freed (lease lost)' : 'listening'], ['epoch captured / released', `${n.capturedEpoch} / ${n.releasedEpoch}`],
    ['checkpoints', String(n.checkpoints)], ['last checkpoint', fmtBytes(n.lastCheckpointBytes)], ['last pause', fmtMs(n.lastPauseUs / 1000)],
    ['pages sent as deltas', n.capturedPages === 0 ? '–' : `${Math.round((100 * n.deltaPages) / n.capturedPages)}%`],
    ['checkpoints refused by backups', String(n.refusals)],
    ['replication lag', `${n.lagEpochs} epochs · ${fmtMs(n.lagSeconds * 1000)}`], ['held output', fmtBytes(n.heldBytes)],
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

async function runAction(action: ActionName, body: Record<string, string>, confirmText: string): Promise<void> {
  if (!(await confirmDialog(confirmText))) return;
  toast(`${action}: sent…`);
  try {
    const res = await fetch(`api/actions/${action}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token()}` }, body: JSON.stringify(body) });
    const j = await res.json() as { ok?: boolean; result?: unknown; error?: { code: string; message: string } };
    if (!res.ok) toast(`${action} failed: ${j.error?.message ?? res.status} [${j.error?.code ?? res.status}]`, true);
    else toast(`${action}: done ${JSON.stringify(j.result)}`);
  } catch (err) {
    toast(`${action} failed: ${(err as Error).message}`, true);
  }
}

$('checkpoint').addEventListener('click', () => { void runAction('checkpoint', {}, 'Trigger a checkpoint on the primary now?'); });

// ---- live updates ----

function connect(): void {
  const live = $('live');
  const es = new EventSource('api/stream');
  es.addEventListener('open', () => { live.textContent = 'live'; live.className = 'live on'; });
  es.addEventListener('error', () => { live.textContent = 'disconnected: reconnecting…'; live.className = 'live off'; });
  es.addEventListener('state', (ev) => {
    state = JSON.parse((ev as MessageEvent<string>).data) as DashboardState;
    points = state.series.slice(-POINTS_KEPT);
    renderCluster(state.cluster);
    renderTimeline(state.timeline);
    renderGuest(state.guest);
    scheduleCharts();
  });
  es.addEventListener('cluster', (ev) => {
    if (state === null) return;
    const c = JSON.parse((ev as MessageEvent<string>).data) as ClusterState;
    const guestChanged = c.primaryNumbers?.imageSha256 !== state.cluster.primaryNumbers?.imageSha256 || c.primary !== state.cluster.primary;
    state.cluster = c;
    renderCluster(c);
    if (guestChanged) void fetch('api/guest').then((r) => r.json()).then((g: GuestInfo) => { if (state !== null) { state.guest = g; renderGuest(g); } });
  });
  es.addEventListener('timeline', (ev) => {
    const e = JSON.parse((ev as MessageEvent<string>).data) as TimelineEvent;
    if (state !== null) {
      state.timeline.push(e);
      if (state.timeline.length > 2 * TIMELINE_SHOWN) state.timeline.splice(0, state.timeline.length - TIMELINE_SHOWN);
    }
    addTimeline(e);
  });
  es.addEventListener('sample', (ev) => {
    points.push(JSON.parse((ev as MessageEvent<string>).data) as SeriesPoint);
    if (points.length > POINTS_KEPT) points.splice(0, points.length - POINTS_KEPT);
    scheduleCharts();
  });
}

charts = new Charts($('charts'));
connect();
