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

/** Narrowest a chart is drawn (px): fits a 320 px phone screen with the page's margins. */
const MIN_CHART_WIDTH = 240;
const CHART_HEIGHT = 170;

/** A chart's width for its box (the box's padding left out). */
const widthIn = (box: HTMLElement | null | undefined): number => Math.max(MIN_CHART_WIDTH, (box?.clientWidth ?? 320) - 12);

/** A value axis of `unit` on `scale` (left, or right for the second unit). */
function valueAxis(scale: 'a' | 'b', unit: Unit): uPlot.Axis {
  return {
    scale, values: (_u, vals) => vals.map((v) => unit.fmt(v)), size: 70,
    ...(scale === 'b' ? { side: 1, grid: { show: false } } : {}),
    ...(unit.incrs !== undefined ? { incrs: unit.incrs } : {}),
  };
}

/** One sentence for a screen reader: the latest and the largest value of each series shown. */
function summary(spec: ChartSpec, points: SeriesPoint[]): string {
  if (points.length === 0) return `${spec.title}: no data yet.`;
  const parts = spec.series.map((s) => {
    const unit = spec.axes[s.scale] ?? spec.axes.a;
    const vals = points.map((p) => p[s.field] as number | null).filter((v): v is number => v !== null && Number.isFinite(v));
    const last = points[points.length - 1][s.field] as number | null;
    return vals.length === 0 ? `${s.label}: no values` : `${s.label}: now ${last === null ? 'none' : unit.fmt(last)}, at most ${unit.fmt(Math.max(...vals))}`;
  });
  const minutes = Math.max(1, Math.round((points[points.length - 1].t - points[0].t) / 60));
  return `${spec.title}, the last ${minutes} min: ${parts.join('; ')}.`;
}

/** The six live charts, drawn with uPlot into `container`. */
export class Charts {
  private readonly plots: Array<{ spec: ChartSpec; plot: uPlot; text: HTMLElement }> = [];

  constructor(container: HTMLElement) {
    SPECS.forEach((spec, i) => {
      const box = document.createElement('figure');
      box.className = 'chart';
      box.dataset.testid = 'chart';
      const h = document.createElement('h3');
      h.textContent = spec.title;
      h.id = `chart-title-${i}`;
      // The canvas says nothing to a screen reader: the figure is named by its title and described by a text summary.
      const text = document.createElement('p');
      text.className = 'sr-only';
      text.id = `chart-summary-${i}`;
      text.dataset.testid = 'chart-summary';
      text.textContent = summary(spec, []);
      box.setAttribute('aria-labelledby', h.id);
      box.setAttribute('aria-describedby', text.id);
      box.append(h, text);
      container.append(box);
      const { a, b } = spec.axes;
      // Time of day only: uPlot's default adds the date on a second row, which overlaps at this width.
      const axes: uPlot.Axis[] = [{ values: (_u, ts) => ts.map(fmtClock), space: 70 }, valueAxis('a', a)];
      if (b !== undefined) axes.push(valueAxis('b', b));
      const range = (unit: Unit): uPlot.Range.Function => (_u, min, max) => rangeFrom0(unit, min, max);
      const plot = new uPlot({
        width: widthIn(box), height: CHART_HEIGHT,
        scales: { x: { time: true }, a: { auto: true, range: range(a) }, b: { auto: true, range: range(b ?? a) } },
        series: [{}, ...spec.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, scale: s.scale, spanGaps: false, points: { filter: (u: uPlot, i: number, show: boolean) => (show ? null : isolatedPoints(u.data[i])) } }))],
        axes,
        legend: { live: true },
      }, [[], ...spec.series.map(() => [])] as uPlot.AlignedData, box);
      plot.root.setAttribute('aria-hidden', 'true');
      this.plots.push({ spec, plot, text });
    });
    window.addEventListener('resize', () => {
      for (const { plot } of this.plots) plot.setSize({ width: widthIn(plot.root.parentElement), height: CHART_HEIGHT });
    });
  }

  /** Redraw every chart from the points (oldest first). */
  update(points: SeriesPoint[]): void {
    const t = points.map((p) => p.t);
    for (const { spec, plot, text } of this.plots) {
      plot.setData([t, ...spec.series.map((s) => points.map((p) => p[s.field] as number | null))] as uPlot.AlignedData);
      text.textContent = summary(spec, points);
    }
  }
}
