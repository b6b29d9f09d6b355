// Small line charts as inline SVG (no library, nothing inline to execute):
// one polyline of the points, scaled to the series' own maximum.
import type { Point } from './metrics';

const SVG = 'http://www.w3.org/2000/svg';
export const WIDTH = 240;
export const HEIGHT = 60;

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

/** The polyline's `points` for a series: x by time across the chart, y by value. */
export function polylinePoints(points: Point[], width = WIDTH, height = HEIGHT): string {
  if (points.length === 0) return '';
  const t0 = points[0].t;
  const span = Math.max(1, points[points.length - 1].t - t0);
  const max = Math.max(1, ...points.map((p) => p.v));
  return points
    .map((p) => {
      const x = points.length === 1 ? width : ((p.t - t0) / span) * width;
      const y = height - 2 - (p.v / max) * (height - 4);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
}

function fmt(v: number): string {
  return v >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1);
}

/** A figure with a titled SVG chart and the last value; `id` names it for tests and labels. */
export function renderChart(id: string, label: string, points: Point[]): HTMLElement {
  const fig = document.createElement('figure');
  fig.className = 'chart';
  fig.id = `chart-${id}`;
  const last = points.length ? points[points.length - 1].v : null;
  const max = points.length ? Math.max(...points.map((p) => p.v)) : null;
  const cap = document.createElement('figcaption');
  cap.id = `chart-${id}-caption`;
  const name = document.createElement('span');
  name.className = 'chart-name';
  name.textContent = label;
  const now = document.createElement('span');
  now.className = 'chart-value';
  now.textContent = last === null ? 'no data yet' : `now ${fmt(last)}, max ${fmt(max!)}`;
  cap.append(name, ' ', now);
  const svg = el('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    width: String(WIDTH),
    height: String(HEIGHT),
    role: 'img',
    'aria-labelledby': cap.id,
  });
  svg.append(el('line', { x1: '0', y1: String(HEIGHT - 1), x2: String(WIDTH), y2: String(HEIGHT - 1), class: 'axis' }));
  if (points.length) svg.append(el('polyline', { points: polylinePoints(points), class: 'line', fill: 'none' }));
  fig.append(cap, svg);
  return fig;
}
