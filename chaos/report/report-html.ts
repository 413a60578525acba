import type { Schedule } from '../nemesis/schedule.js';
import type { ChaosSummary } from '../run/chaos-run.js';
import type { FaultEvent, Op } from '../workload/history.js';

/** Plot width and lane heights (px). */
const WIDTH = 1180;
const LEFT = 90;
const RIGHT = 20;
const LANE_FAULTS = 54;
const LANE_VIEW = 26;
const LANE_EVENTS = 18;
const LAT_HEIGHT = 280;
const TPUT_HEIGHT = 70;
const GAP = 14;

const FAULT_COLORS: Record<string, string> = {
  kill: '#d62728', pause: '#9467bd', partition: '#ff7f0e', delay: '#8c564b', drop: '#e377c2',
  duplicate: '#17becf', reorder: '#bcbd22', corrupt: '#7f0000',
  'disk-full': '#393b79', fsync: '#637939', 'slow-disk': '#8c6d31', clock: '#ad494a',
};
const PRIMARY_COLORS = ['#1f77b4', '#2ca02c', '#9467bd', '#8c564b', '#17becf'];
const OP_COLORS: Record<string, string> = { read: '#1f77b4', write: '#2ca02c', incr: '#9467bd', fail: '#ff7f0e', unknown: '#d62728' };

function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!));
}

function sec(ms: number | null | undefined, digits = 2): string {
  return ms === null || ms === undefined ? '—' : `${(ms / 1000).toFixed(digits)} s`;
}

function opText(op: Op | undefined): string {
  if (op === undefined) return '—';
  const what = op.f === 'write' ? `SET ${op.key} ${op.value}` : op.f === 'read' ? `GET ${op.key}` : `INCR ${op.key}`;
  const out = op.status === 'ok' ? (op.f === 'write' ? 'OK' : JSON.stringify(op.result ?? null)) : `${op.status}${op.error !== undefined ? ` (${op.error})` : ''}`;
  return `#${op.id} p${op.process} ${what} → ${out} [${sec(op.invokeMs, 3)} – ${op.completeMs === null ? '∞' : sec(op.completeMs, 3)}]`;
}

/** The timeline: faults, views, member events, every operation's latency, throughput, unavailable windows. */
function timeline(s: ChaosSummary, ops: readonly Op[], faults: readonly FaultEvent[]): string {
  const lastOp = ops.reduce((m, o) => Math.max(m, o.completeMs ?? o.invokeMs), 0);
  const t0 = Math.max(0, s.window.startMs - 2000);
  const t1 = Math.max(lastOp, s.window.endMs) + 500;
  const plotW = WIDTH - LEFT - RIGHT;
  const x = (t: number): number => LEFT + ((t - t0) / (t1 - t0)) * plotW;
  const parts: string[] = [];
  let y = 24;
  const totalH = 24 + LANE_FAULTS + GAP + LANE_VIEW + GAP + LANE_EVENTS + GAP + LAT_HEIGHT + GAP + TPUT_HEIGHT + 40;

  // Unavailable windows, behind everything.
  for (const u of s.availability.unavailable) {
    parts.push(`<rect x="${x(u.fromMs).toFixed(1)}" y="20" width="${Math.max(1, x(u.toMs) - x(u.fromMs)).toFixed(1)}" height="${totalH - 56}" fill="#ffd6d6" opacity="0.7"><title>no successful operation for ${sec(u.toMs - u.fromMs)} (${sec(u.fromMs)} – ${sec(u.toMs)})</title></rect>`);
  }
  // Workload window bounds.
  for (const t of [s.window.startMs, s.window.endMs]) parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="20" y2="${totalH - 36}" stroke="#888" stroke-dasharray="4 3"/>`);
  parts.push(`<text x="${x(s.window.startMs) + 3}" y="16" font-size="10" fill="#666">workload starts</text>`);
  parts.push(`<text x="${x(s.window.endMs) + 3}" y="16" font-size="10" fill="#666">heal all · final reads</text>`);

  // Faults lane: one row per overlapping fault (they are sequential, so one row usually).
  parts.push(`<text x="${LEFT - 8}" y="${y + 20}" text-anchor="end" font-size="12" font-weight="bold">faults</text>`);
  const rowsEnd: number[] = [];
  for (const f of faults) {
    const end = f.endMs ?? s.window.endMs;
    let row = rowsEnd.findIndex((e) => e <= f.startMs);
    if (row < 0) { row = rowsEnd.length; rowsEnd.push(end); } else rowsEnd[row] = end;
    const ry = y + 4 + row * 24;
    const w = Math.max(3, x(end) - x(f.startMs));
    const label = `${f.kind} ${f.kind === 'kill' || f.kind === 'pause' ? f.applied.join(',') : f.target}`;
    parts.push(`<g><title>${esc(`step ${f.step}: ${f.kind} ${f.target} → ${f.applied.join(', ')} ${f.detail ?? ''}\n${sec(f.startMs)} – ${sec(f.endMs)}`)}</title>` +
      `<rect x="${x(f.startMs).toFixed(1)}" y="${ry}" width="${w.toFixed(1)}" height="18" rx="3" fill="${FAULT_COLORS[f.kind] ?? '#555'}" opacity="0.85"/>` +
      `<text x="${(x(f.startMs) + 3).toFixed(1)}" y="${ry + 13}" font-size="11" fill="#fff" clip-path="none">${esc(w > 40 ? label : f.kind[0])}</text></g>`);
  }
  y += LANE_FAULTS + GAP;

  // View lane: who is primary, which view, protected or not.
  parts.push(`<text x="${LEFT - 8}" y="${y + 17}" text-anchor="end" font-size="12" font-weight="bold">primary</text>`);
  const ids = s.cluster.members;
  const views = s.views;
  for (let i = 0; i < views.length; i++) {
    const v = views[i];
    const from = Math.max(v.atMs, t0);
    const to = i + 1 < views.length ? views[i + 1].atMs : t1;
    if (to <= t0) continue;
    const color = v.primary === null ? '#bbb' : PRIMARY_COLORS[Math.max(0, ids.indexOf(v.primary)) % PRIMARY_COLORS.length];
    const w = Math.max(1, x(to) - x(from));
    const label = v.primary === null ? 'none' : `${v.primary} · v${v.view}${v.protected ? '' : ' · UNPROTECTED'}`;
    parts.push(`<g><title>${esc(`${label}; backups [${v.backups.join(', ')}]; ${sec(v.atMs)} – ${sec(to)}`)}</title>` +
      `<rect x="${x(from).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${LANE_VIEW - 4}" fill="${color}" ${v.protected || v.primary === null ? '' : 'fill-opacity="0.45" stroke="#d62728" stroke-dasharray="3 2"'}/>` +
      (w > 46 ? `<text x="${(x(from) + 3).toFixed(1)}" y="${y + 15}" font-size="11" fill="#fff">${esc(label)}</text>` : '') + '</g>');
  }
  y += LANE_VIEW + GAP;

  // Member events: crashes (red), spawns (grey ticks).
  parts.push(`<text x="${LEFT - 8}" y="${y + 12}" text-anchor="end" font-size="12" font-weight="bold">members</text>`);
  for (const e of s.cluster.events) {
    if (e.atMs < t0) continue;
    const cx = x(e.atMs);
    if (e.kind === 'crash') parts.push(`<path d="M${cx - 6},${y + 14} L${cx},${y + 2} L${cx + 6},${y + 14} Z" fill="#d62728"><title>${esc(`${sec(e.atMs)} ${e.member} crashed: ${e.detail}`)}</title></path>`);
    else parts.push(`<line x1="${cx}" x2="${cx}" y1="${y + 3}" y2="${y + 13}" stroke="${e.kind === 'spawn' ? '#2ca02c' : '#555'}" stroke-width="2"><title>${esc(`${sec(e.atMs)} ${e.member} ${e.kind} ${e.detail}`)}</title></line>`);
  }
  y += LANE_EVENTS + GAP;

  // Latency: every operation at its invocation time (deduplicated per pixel), log scale.
  const latTop = y;
  const lats = ops.filter((o) => o.completeMs !== null).map((o) => o.completeMs! - o.invokeMs);
  // A loop, not Math.max(...lats): a long history overflows the stack as spread arguments.
  const maxLat = lats.reduce((m, v) => (v > m ? v : m), 10);
  const minLat = 0.1;
  const ly = (ms: number): number => latTop + LAT_HEIGHT - (Math.log10(Math.max(minLat, ms) / minLat) / Math.log10(maxLat * 1.2 / minLat)) * LAT_HEIGHT;
  parts.push(`<text x="${LEFT - 8}" y="${latTop + 12}" text-anchor="end" font-size="12" font-weight="bold">latency</text>`);
  parts.push(`<rect x="${LEFT}" y="${latTop}" width="${plotW}" height="${LAT_HEIGHT}" fill="none" stroke="#ccc"/>`);
  for (let d = 0.1; d <= maxLat * 1.2; d *= 10) {
    const yy = ly(d);
    parts.push(`<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${yy}" y2="${yy}" stroke="#eee"/><text x="${LEFT - 6}" y="${yy + 4}" text-anchor="end" font-size="10" fill="#666">${d >= 1000 ? `${d / 1000} s` : `${d} ms`}</text>`);
  }
  const seen = new Set<string>();
  const dots: string[] = [];
  // Failures and unknowns last, so they are drawn on top.
  const order = (o: Op): number => (o.status === 'ok' ? 0 : o.status === 'fail' ? 1 : 2);
  for (const o of [...ops].sort((a, b) => order(a) - order(b))) {
    const cls = o.status === 'ok' ? o.f : o.status === 'fail' ? 'fail' : 'unknown';
    const lat = (o.completeMs ?? s.window.endMs) - o.invokeMs;
    const px = Math.round(x(o.invokeMs));
    const py = Math.round(ly(lat));
    const k = `${cls}:${px}:${py}`;
    if (seen.has(k)) continue;
    seen.add(k);
    if (cls === 'unknown') dots.push(`<path d="M${px - 3},${py - 3}L${px + 3},${py + 3}M${px - 3},${py + 3}L${px + 3},${py - 3}" stroke="${OP_COLORS.unknown}" stroke-width="1.5"/>`);
    else dots.push(`<circle cx="${px}" cy="${py}" r="${cls === 'fail' ? 2.2 : 1.5}" fill="${OP_COLORS[cls]}" fill-opacity="${cls === 'fail' ? 0.9 : 0.55}"/>`);
  }
  parts.push(`<g>${dots.join('')}</g>`);
  y += LAT_HEIGHT + GAP;

  // Throughput: successful operations per bucket.
  const bucketMs = Math.max(100, Math.round((t1 - t0) / 240 / 50) * 50);
  const buckets = new Map<number, number>();
  for (const o of ops) if (o.status === 'ok') { const b = Math.floor(o.completeMs! / bucketMs); buckets.set(b, (buckets.get(b) ?? 0) + 1); }
  const maxB = Math.max(1, ...buckets.values());
  parts.push(`<text x="${LEFT - 8}" y="${y + 12}" text-anchor="end" font-size="12" font-weight="bold">ok ops</text>`);
  parts.push(`<text x="${LEFT - 8}" y="${y + 26}" text-anchor="end" font-size="10" fill="#666">per ${bucketMs} ms</text>`);
  parts.push(`<text x="${LEFT - 8}" y="${y + TPUT_HEIGHT}" text-anchor="end" font-size="10" fill="#666">max ${maxB}</text>`);
  for (const [b, n] of buckets) {
    const bx = x(b * bucketMs);
    if (bx < LEFT) continue;
    const h = (n / maxB) * TPUT_HEIGHT;
    parts.push(`<rect x="${bx.toFixed(1)}" y="${(y + TPUT_HEIGHT - h).toFixed(1)}" width="${Math.max(1, x((b + 1) * bucketMs) - bx - 0.5).toFixed(1)}" height="${h.toFixed(1)}" fill="#4c78a8"/>`);
  }
  y += TPUT_HEIGHT + 6;

  // Time axis.
  const span = (t1 - t0) / 1000;
  const step = span > 600 ? 60 : span > 240 ? 30 : span > 90 ? 10 : span > 30 ? 5 : 2;
  parts.push(`<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${y}" y2="${y}" stroke="#333"/>`);
  for (let t = Math.ceil(t0 / 1000 / step) * step; t * 1000 <= t1; t += step) {
    parts.push(`<line x1="${x(t * 1000)}" x2="${x(t * 1000)}" y1="${y}" y2="${y + 5}" stroke="#333"/><text x="${x(t * 1000)}" y="${y + 17}" text-anchor="middle" font-size="10">${t} s</text>`);
  }
  parts.push(`<text x="${LEFT + plotW}" y="${y + 30}" text-anchor="end" font-size="10" fill="#666">time since the harness started</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${totalH}" font-family="system-ui, sans-serif">${parts.join('')}</svg>`;
}

function legend(): string {
  const item = (color: string, label: string, shape = 'dot'): string =>
    `<span class="lg"><svg width="14" height="12">${shape === 'x' ? `<path d="M2,2L10,10M2,10L10,2" stroke="${color}" stroke-width="2"/>` : shape === 'box' ? `<rect width="12" height="10" y="1" fill="${color}"/>` : `<circle cx="6" cy="6" r="4" fill="${color}"/>`}</svg>${esc(label)}</span>`;
  return `<div class="legend">${item(OP_COLORS.read, 'GET ok')}${item(OP_COLORS.write, 'SET ok')}${item(OP_COLORS.incr, 'INCR ok')}${item(OP_COLORS.fail, 'failed (not executed)')}${item(OP_COLORS.unknown, 'unknown outcome', 'x')}` +
    `${item('#ffd6d6', `no success for > 0.5 s`, 'box')}` + Object.entries(FAULT_COLORS).map(([k, c]) => item(c, k, 'box')).join('') + '</div>';
}

function table(head: string[], rows: Array<Array<string | number>>): string {
  if (rows.length === 0) return '<p class="muted">none</p>';
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** The whole report page: one self-contained HTML file (inline SVG and CSS, no scripts, no network). */
export function renderReport(s: ChaosSummary, schedule: Schedule, ops: readonly Op[], faults: readonly FaultEvent[]): string {
  const a = s.availability;
  const color = s.verdict === 'pass' ? '#1b7f3b' : s.verdict === 'fail' ? '#b00020' : '#a86b00';
  const checks: Array<Array<string | number>> = [];
  if (s.kv !== null) {
    checks.push(['linearizability (per key, WGL + P-compositionality)', s.kv.linearizable, s.kv.keys.map((k) => `${k.key}: ${k.verdict} (${k.ops} ops, ${k.elapsedMs} ms)`).join('; ')]);
    checks.push(['no acknowledged write lost (final reads)', s.kv.lostWrites.length === 0 ? 'ok' : `${s.kv.lostWrites.length} lost`, s.kv.keysWithoutFinalRead.length > 0 ? `no final read of ${s.kv.keysWithoutFinalRead.join(', ')}` : '']);
    checks.push(['no value that no write produced', s.kv.phantomReads.length === 0 ? 'ok' : `${s.kv.phantomReads.length} phantom`, `${s.kv.unobservedUnknownWritesDropped} unknown writes never observed (left out of the search)`]);
  }
  if (s.counter !== null) {
    const c = s.counter;
    checks.push(['counter: final = acknowledged + at most unknown INCRs', String(c.boundsOk), `final ${c.finalValue}, acknowledged ${c.acknowledgedIncrs}, unknown ${c.unknownIncrs}`]);
    checks.push(['counter: no INCR result returned twice', c.duplicateResults.length === 0 ? 'ok' : `${c.duplicateResults.length}`, '']);
    checks.push(['counter: never backwards in real time', c.wentBackwards.length === 0 ? 'ok' : `${c.wentBackwards.length}+`, '']);
  }
  checks.push(['availability', `${(a.okShare * 100).toFixed(1)}% ok`, `${a.ok} ok, ${a.fail} failed, ${a.unknown} unknown of ${a.ops}; longest gap ${sec(a.longestGapMs)}; unavailable ${sec(a.unavailableTotalMs)} in ${a.unavailable.length} window(s)`]);

  let violationDetail = '';
  if (s.kv !== null) {
    for (const k of s.kv.keys) {
      if (k.verdict !== 'not-linearizable') continue;
      const failed = k.failedOp as Op | undefined;
      const tail = (k.prefixTail as Op[] | undefined) ?? [];
      const around = failed === undefined ? [] : ops.filter((o) => o.key === k.key && o.status !== 'fail' && o.invokeMs <= (failed.completeMs ?? failed.invokeMs) && (o.completeMs ?? Infinity) >= failed.invokeMs - 300).slice(-25);
      violationDetail += `<h3>key ${esc(k.key)}: not linearizable</h3><p>Operation <b>${esc(opText(failed))}</b> cannot be linearized: after the longest linearizable prefix the key could hold ${esc((k.statesAtFailure as string[] | undefined)?.join(' or ') ?? '?')}.</p>` +
        `<p>Last operations of that prefix:</p><pre>${esc(tail.map(opText).join('\n'))}</pre><p>Operations on ${esc(k.key)} overlapping it:</p><pre>${esc(around.map(opText).join('\n'))}</pre>`;
    }
    for (const l of s.kv.lostWrites.slice(0, 10)) violationDetail += `<p>Lost: <b>${esc(opText(l.write))}</b>; final read ${esc(opText(l.finalRead))}; value written by ${esc(opText(l.origin ?? undefined))}</p>`;
  }
  if (s.counter !== null) {
    for (const w of s.counter.wentBackwards) violationDetail += `<p>Backwards: ${esc(opText(w.earlier))} then ${esc(opText(w.later))}</p>`;
    for (const d of s.counter.duplicateResults) violationDetail += `<p>INCR result ${d.value} returned to: ${esc(d.ops.map(opText).join('; '))}</p>`;
  }

  const proxies = Object.entries(s.proxies).map(([name, p]) => [name, p.connections, p.bytesForward, p.bytesBackward, p.corruptedChunks, p.resets, p.replays]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>waterbear chaos — ${esc(s.run)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 18px 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 8px; } h2 { font-size: 16px; margin: 22px 0 6px; } h3 { font-size: 14px; }
.verdict { padding: 10px 14px; color: #fff; background: ${color}; border-radius: 6px; font-size: 15px; }
.meta { margin: 8px 0; color: #444; font-size: 13px; } .meta code { background: #f3f3f3; padding: 1px 4px; }
table { border-collapse: collapse; font-size: 12.5px; margin: 4px 0; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } .muted { color: #888; } pre { background: #f7f7f7; padding: 8px; font-size: 12px; overflow-x: auto; }
.legend { font-size: 12px; margin: 4px 0 0 90px; } .lg { margin-right: 12px; white-space: nowrap; } .lg svg { vertical-align: middle; margin-right: 3px; }
ul, p { font-size: 13px; }
</style></head><body>
<h1>waterbear chaos — ${esc(s.run)}</h1>
<div class="verdict">${esc(s.verdictLine)}</div>
<div class="meta">seed <b>${s.seed}</b> · workload <b>${esc(s.workload)}</b> · faults ${esc(s.faults.join(', '))} · ${sec(s.durationMs, 0)} of faults · started ${esc(s.startedAt)} · total ${sec(s.timings.totalMs, 1)}${s.unsafeReleaseEarly ? ' · <b style="color:#b00020">UNSAFE BUILD: output released before acknowledgement</b>' : ''}<br>
reproduce: <code>${esc(s.command)}</code></div>
${s.violations.length > 0 ? `<h2>Violations</h2><ul>${s.violations.map((v) => `<li>${esc(v)}</li>`).join('')}</ul>` : ''}
${s.warnings.length > 0 ? `<h2>Warnings</h2><ul>${s.warnings.map((v) => `<li>${esc(v)}</li>`).join('')}</ul>` : ''}
<h2>Timeline</h2>
${timeline(s, ops, faults)}
${legend()}
<h2>Checks</h2>
${table(['check', 'result', 'details'], checks)}
${violationDetail}
<h2>Failovers</h2>
${table(['seen at', 'from', 'to', 'view', 'after fault', 'clients waited'], a.failovers.map((f) => [sec(f.seenAtMs), f.fromPrimary ?? '—', f.toPrimary, f.view, f.faultStep === null ? '—' : `#${f.faultStep} ${f.faultKind}`, sec(f.durationMs)]))}
<h2>Faults</h2>
${table(['#', 'fault', 'target', 'applied to', 'start', 'healed', 'first success after start'], a.faults.map((f) => [f.step, f.kind, f.target, f.applied.join(', '), sec(f.startMs), sec(f.endMs), sec(f.firstSuccessAfterMs)]))}
<p class="muted">${schedule.steps.length} steps planned, ${s.nemesis.injected} injected. ${s.nemesis.notes.map(esc).join(' ')}</p>
<h2>Timings</h2>
${table(['startup', 'workload', 'recovery after heal', 'final reads', 'checking', 'total'], [[sec(s.timings.startupMs), sec(s.timings.workloadMs), sec(s.timings.recoveryMs), sec(s.timings.finalReadsMs), sec(s.timings.checkMs), sec(s.timings.totalMs)]])}
<h2>Fault proxies</h2>
${table(['link', 'connections', 'bytes →', 'bytes ←', 'corrupted chunks', 'dropped connections', 'replays'], proxies)}
<h2>Member events</h2>
${table(['time', 'member', 'event', 'detail'], s.cluster.events.map((e) => [sec(e.atMs), e.member ?? '', e.kind, e.detail]))}
<p class="muted">Files: history.jsonl (every invocation and completion), schedule.json, summary.json, logs/ (member stderr), cluster*.yaml (generated cluster files).</p>
</body></html>
`;
}
