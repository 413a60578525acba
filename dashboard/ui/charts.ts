import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { SeriesPoint } from '../model.js';
import { BYTES, COUNT, fmtClock, isolatedPoints, MS, rangeFrom0, type Unit } from './chart-units.js';

/** One live chart: its title and the series (point fields) it draws, with their axis. */
interface ChartSpec {
  title: string;
  series: Array<{ label: string; field: keyof SeriesPoint; color: string; scale: 'a' | 'b' }>;
  axes: { a: Unit; b?: Unit };
}

const SPECS: ChartSpec[] = [
  { title: 'Checkpoints per second', series: [{ label: 'checkpoints/s', field: 'checkpointsPerSecond', color: '#0b5cad', scale: 'a' }], axes: { a: COUNT } },
  { title: 'Checkpoint size and guest pause', series: [
    { label: 'size (avg)', field: 'checkpointBytes', color: '#6f42c1', scale: 'a' },
    { label: 'pause (avg ms)', field: 'pauseMs', color: '#d9480f', scale: 'b' }], axes: { a: BYTES, b: MS } },
  { title: 'Replication lag', series: [
    { label: 'epochs', field: 'lagEpochs', color: '#0b7285', scale: 'a' },
    { label: 'ms', field: 'lagMs', color: '#c62828', scale: 'b' }], axes: { a: COUNT, b: MS } },
  { title: 'Held output and added reply latency', series: [
    { label: 'held bytes', field: 'heldBytes', color: '#b26a00', scale: 'a' },
    { label: 'commit latency (avg ms)', field: 'commitLatencyMs', color: '#c62828', scale: 'b' }], axes: { a: BYTES, b: MS } },
  { title: 'Guest connection throughput', series: [
    { label: 'received/s', field: 'receivedBytesPerSecond', color: '#1a7f37', scale: 'a' },
    { label: 'sent/s', field: 'sentBytesPerSecond', color: '#0b5cad', scale: 'a' }], axes: { a: BYTES } },
  { title: 'Guest memory', series: [{ label: 'linear memory', field: 'memoryBytes', color: '#495057', scale: 'a' }], axes: { a: BYTES } },
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
      const { a, b } = spec.axes;
      // Time of day only: uPlot's default adds the date on a second row, which overlaps at this width.
      const axes: uPlot.Axis[] = [{ values: (_u, ts) => ts.map(fmtClock), space: 70 }, { scale: 'a', values: (_u, vals) => vals.map((v) => a.fmt(v)), size: 70 }];
      if (b !== undefined) axes.push({ scale: 'b', side: 1, grid: { show: false }, values: (_u, vals) => vals.map((v) => b.fmt(v)), size: 70 });
      const range = (unit: Unit): uPlot.Range.Function => (_u, min, max) => rangeFrom0(unit, min, max);
      const plot = new uPlot({
        width, height: 170,
        scales: { x: { time: true }, a: { auto: true, range: range(a) }, b: { auto: true, range: range(b ?? a) } },
        series: [{}, ...spec.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, scale: s.scale, spanGaps: false, points: { filter: (u: uPlot, i: number, show: boolean) => (show ? null : isolatedPoints(u.data[i])) } }))],
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
