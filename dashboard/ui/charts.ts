import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { SeriesPoint } from '../model.js';

/** One live chart: its title and the series (point fields) it draws, with their axis. */
interface ChartSpec {
  title: string;
  series: Array<{ label: string; field: keyof SeriesPoint; color: string; scale: 'a' | 'b' }>;
  axes: { a: (v: number) => string; b?: (v: number) => string };
}

/** Human units for axis labels and the numbers panel. */
export function fmtBytes(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  let x = v;
  while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i++; }
  return `${x >= 100 || i === 0 ? Math.round(x) : x.toFixed(1)} ${units[i]}`;
}
export function fmtMs(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '–';
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : v >= 10 ? `${Math.round(v)} ms` : `${v.toFixed(2)} ms`;
}
const fmtNum = (v: number): string => (Math.abs(v) >= 100 ? String(Math.round(v)) : String(Math.round(v * 100) / 100));

const SPECS: ChartSpec[] = [
  { title: 'Checkpoints per second', series: [{ label: 'checkpoints/s', field: 'checkpointsPerSecond', color: '#0b5cad', scale: 'a' }], axes: { a: fmtNum } },
  { title: 'Checkpoint size and guest pause', series: [
    { label: 'size (avg)', field: 'checkpointBytes', color: '#6f42c1', scale: 'a' },
    { label: 'pause (avg ms)', field: 'pauseMs', color: '#d9480f', scale: 'b' }], axes: { a: fmtBytes, b: fmtMs } },
  { title: 'Replication lag', series: [
    { label: 'epochs', field: 'lagEpochs', color: '#0b7285', scale: 'a' },
    { label: 'ms', field: 'lagMs', color: '#c62828', scale: 'b' }], axes: { a: fmtNum, b: fmtMs } },
  { title: 'Held output and added reply latency', series: [
    { label: 'held bytes', field: 'heldBytes', color: '#b26a00', scale: 'a' },
    { label: 'commit latency (avg ms)', field: 'commitLatencyMs', color: '#c62828', scale: 'b' }], axes: { a: fmtBytes, b: fmtMs } },
  { title: 'Guest connection throughput', series: [
    { label: 'received/s', field: 'receivedBytesPerSecond', color: '#1a7f37', scale: 'a' },
    { label: 'sent/s', field: 'sentBytesPerSecond', color: '#0b5cad', scale: 'a' }], axes: { a: fmtBytes } },
  { title: 'Guest memory', series: [{ label: 'linear memory', field: 'memoryBytes', color: '#495057', scale: 'a' }], axes: { a: fmtBytes } },
];

/** The six live charts, drawn with uPlot into `container`. */
export class Charts {
  private readonly plots: Array<{ spec: ChartSpec; plot: uPlot }> = [];

  constructor(container: HTMLElement) {
    for (const spec of SPECS) {
      const box = document.createElement('div');
      box.className = 'chart';
      box.dataset.testid = 'chart';
      const h = document.createElement('h3');
      h.textContent = spec.title;
      box.append(h);
      container.append(box);
      const width = Math.max(300, box.clientWidth - 12);
      const axes: uPlot.Axis[] = [{}, { scale: 'a', values: (_u, vals) => vals.map((v) => spec.axes.a(v)), size: 70 }];
      if (spec.axes.b !== undefined) { const b = spec.axes.b; axes.push({ scale: 'b', side: 1, grid: { show: false }, values: (_u, vals) => vals.map((v) => b(v)), size: 70 }); }
      const plot = new uPlot({
        width, height: 170,
        scales: { x: { time: true }, a: { auto: true, range: (_u, min, max) => [Math.min(0, min), Math.max(1e-9, max)] }, b: { auto: true, range: (_u, min, max) => [Math.min(0, min), Math.max(1e-9, max)] } },
        series: [{}, ...spec.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, scale: s.scale, spanGaps: false }))],
        axes,
        legend: { live: true },
      }, [[], ...spec.series.map(() => [])] as uPlot.AlignedData, box);
      this.plots.push({ spec, plot });
    }
    window.addEventListener('resize', () => {
      for (const { plot } of this.plots) plot.setSize({ width: Math.max(300, (plot.root.parentElement?.clientWidth ?? 320) - 12), height: 170 });
    });
  }

  /** Redraw every chart from the points (oldest first). */
  update(points: SeriesPoint[]): void {
    const t = points.map((p) => p.t);
    for (const { spec, plot } of this.plots) {
      plot.setData([t, ...spec.series.map((s) => points.map((p) => p[s.field] as number | null))] as uPlot.AlignedData);
    }
  }
}
