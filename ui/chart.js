// Line charts as inline SVG, built element by element. Colours come from dashboard.css classes.

import { h, s } from './dom.js';
import { formatClock, formatCompact } from './model.js';

const W = 480;
const H = 170;
const M = { left: 44, right: 10, top: 10, bottom: 22 };

/** The smallest 1/2/2.5/5 × 10^n at or above v, so the axis ends on a round number. */
export function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * `lines`: `{ label, kind: 'observed' | 'cap', points: [{ t, v }], step?: boolean, gapMs? }`.
 * A null v, or a gap longer than `gapMs` between points, breaks the line. Answers a figure with
 * the chart and its legend, or with `empty` as text when no line has a point.
 */
export function lineChart({ title, fromMs, toMs, lines, empty }) {
  const drawn = lines.filter((l) => l.points.some((p) => p.v !== null));
  const figure = h('figure', { class: 'chart', 'data-chart': title });
  figure.append(h('figcaption', {}, title));
  if (drawn.length === 0) {
    figure.append(h('p', { class: 'empty' }, empty));
    return figure;
  }

  const max = niceCeil(Math.max(...drawn.flatMap((l) => l.points.map((p) => p.v ?? 0))) * 1.1);
  const x = (t) => M.left + ((t - fromMs) / Math.max(1, toMs - fromMs)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - (v / max) * (H - M.top - M.bottom);

  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title, class: 'chart-svg' });
  svg.append(s('title', {}, title));
  for (const v of [0, max / 2, max]) {
    svg.append(s('line', { class: 'grid', x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }));
    svg.append(s('text', { class: 'axis', x: M.left - 4, y: y(v) + 3, 'text-anchor': 'end' }, formatCompact(v)));
  }
  for (let i = 0; i <= 4; i++) {
    const t = fromMs + ((toMs - fromMs) * i) / 4;
    const anchor = i === 0 ? 'start' : i === 4 ? 'end' : 'middle';
    svg.append(s('text', { class: 'axis', x: x(t), y: H - 6, 'text-anchor': anchor }, formatClock(t).slice(0, 5)));
  }
  for (const line of drawn) {
    const d = pathData(line, x, y);
    if (d)
      svg.append(
        s('path', {
          class: `line line-${line.kind}`,
          d,
          'data-points': line.points.filter((p) => p.v !== null).length,
        }),
      );
  }
  figure.append(svg);

  const legend = h('ul', { class: 'legend' });
  for (const line of lines) {
    const has = drawn.includes(line);
    legend.append(
      h('li', { class: `key key-${line.kind}` }, has ? line.label : `${line.label}: ${line.none ?? 'no data'}`),
    );
  }
  figure.append(legend);
  return figure;
}

function pathData(line, x, y) {
  // Split into runs of consecutive points (a null value or a long gap ends a run).
  const runs = [];
  let run = null;
  for (const p of line.points) {
    if (p.v === null) {
      run = null;
      continue;
    }
    const prev = run?.[run.length - 1];
    if (!prev || (line.gapMs !== undefined && p.t - prev.t > line.gapMs)) runs.push((run = []));
    run.push(p);
  }
  return runs
    .map((points) => {
      const [first, ...rest] = points;
      let d = `M${r(x(first.t))},${r(y(first.v))}`;
      for (const p of rest) d += line.step ? `H${r(x(p.t))}V${r(y(p.v))}` : `L${r(x(p.t))},${r(y(p.v))}`;
      // A lone point would be invisible as a path: draw it as a short tick.
      return rest.length === 0 ? `${d}h2` : d;
    })
    .join('');
}

const r = (v) => Math.round(v * 10) / 10;
