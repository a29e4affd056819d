// DOM helpers: every value from the API goes into the page as text (never
// as HTML), so nothing an event carries can run in the panel.

/** An element: `h('a', {href: '#/'}, 'text', child)`. `on*` attributes are listeners. */
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces `el`'s children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table with a caption, column heads and rows of cells. */
export function table(caption, heads, rows, attrs) {
  // Focusable, so a keyboard can scroll a table wider than the screen.
  return h(
    'div',
    { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': caption },
    h(
      'table',
      attrs || {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows),
    ),
  );
}

/** A state as a badge (its colour from `data-state`). */
export function badge(state) {
  return h('span', { class: 'badge', 'data-state': state }, state.replace('_', ' '));
}

/** "3 min ago" from an RFC 3339 time. */
export function age(rfc3339) {
  if (!rfc3339) return '';
  const s = Math.max(0, (Date.now() - Date.parse(rfc3339)) / 1000);
  if (s < 60) return Math.floor(s) + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min';
  if (s < 86400) return Math.floor(s / 3600) + ' h';
  return Math.floor(s / 86400) + ' d';
}

/** A time as the reader's local date and time. */
export function when(rfc3339) {
  if (!rfc3339) return '';
  const d = new Date(rfc3339);
  return isNaN(d) ? rfc3339 : d.toLocaleString();
}

/** A `time` element with the local time, and the exact time as its datetime. */
export function time(rfc3339) {
  return h('time', { datetime: rfc3339 }, when(rfc3339));
}

/** A delivery's attempts, oldest first: when, the answer, how long, what went wrong. */
export function attempts(history) {
  return h('ol', { class: 'attempts' }, history.map((a) => h('li', {},
    time(a.at), ` ${a.status ?? 'no answer'} in ${a.latency_ms} ms`, a.error ? ` — ${a.error}` : '')));
}

/** Seconds as "1.2 s" / "3 min". */
export function seconds(s) {
  if (!s) return '0 s';
  if (s < 60) return s.toFixed(1) + ' s';
  if (s < 3600) return Math.round(s / 60) + ' min';
  return Math.round(s / 3600) + ' h';
}

/** "2/3 signed" (expected signers when registered, else the known ones). */
export function progress(p, signers) {
  const total = p.expected || (signers ? signers.length : 0) || p.signed;
  return total ? `${p.signed}/${total} signed` : 'no signers yet';
}

/** A message in the main area (an error or an empty result). */
export function notice(text, kind) {
  return h('p', { class: 'notice ' + (kind || ''), role: kind === 'error' ? 'alert' : null }, text);
}

/** The hash route of an envelope. */
export function envelopeHref(source, id) {
  return '#/envelopes/' + encodeURIComponent(source) + '/' + encodeURIComponent(id);
}
