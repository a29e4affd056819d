// The overview's live chart: webhooks per second over the last minutes, as
// an SVG drawn from the cumulative samples of /v1/overview/stream.

import { h } from './views.js?v={{v}}';

const W = 600;
const H = 160;
const PAD = 4;

/** Per-second rates of the outcomes in `groups` ({name: [outcome indexes]}). */
export function rates(samples, groups) {
  const out = {};
  for (const name of Object.keys(groups)) out[name] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    const dt = Math.max(0.001, (b.t - a.t) / 1000);
    for (const [name, idx] of Object.entries(groups)) {
      let d = 0;
      for (const j of idx) d += Math.max(0, b.counts[j] - a.counts[j]);
      out[name].push({ t: b.t, v: d / dt });
    }
  }
  return out;
}

/** The highest rate in `series` (the chart's top). */
export function peak(series) {
  let max = 1;
  for (const pts of Object.values(series)) for (const p of pts) max = Math.max(max, p.v);
  return Math.ceil(max);
}

/** The chart of `series` ({name: [{t, v}]}) over `windowMs` ending now. */
export function chart(series, windowMs, label) {
  const now = Date.now();
  let max = 1;
  for (const pts of Object.values(series)) for (const p of pts) max = Math.max(max, p.v);
  const x = (t) => PAD + ((W - 2 * PAD) * (t - (now - windowMs))) / windowMs;
  const y = (v) => H - PAD - ((H - 2 * PAD) * v) / max;
  const lines = Object.entries(series).map(([name, pts]) =>
    h('svg:polyline', {
      class: 'line line-' + name,
      points: pts
        .filter((p) => p.t >= now - windowMs)
        .map((p) => x(p.t).toFixed(1) + ',' + y(p.v).toFixed(1))
        .join(' '),
    }),
  );
  return h(
    'svg:svg',
    {
      viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'chart', role: 'img',
      'aria-label': `${label}; the chart's top is ${Math.ceil(max)} per second`,
    },
    h('svg:line', { class: 'axis', x1: 0, y1: H - PAD, x2: W, y2: H - PAD }),
    lines,
  );
}
