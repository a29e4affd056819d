// The status panel: overview, envelopes (live), envelope detail, dead
// letters, search. Hash routes (#/envelopes?state=completed…), one view at a
// time; a view's streams stop when another is shown.

import { api, ApiError, follow, setToken, token, withQuery } from './api.js?v={{v}}';
import {
  h, fill, table, badge, age, time, when, seconds, progress, notice, envelopeHref, attempts,
} from './views.js?v={{v}}';
import { chart, peak, rates } from './chart.js?v={{v}}';

const main = document.getElementById('main');
const link = document.getElementById('link');
const STATES = ['open', 'in_signing', 'completed', 'archived', 'cancelled'];
const PAGE = 50;
// Rows the live list keeps at most.
const MAX_ROWS = 200;
// How long a changed row stays marked (ms).
const MARKED_MS = 3000;
const enc = encodeURIComponent;

// What the current view must stop (its streams) before the next is shown.
let stops = [];
function leave() {
  for (const s of stops) s();
  stops = [];
  setLink('');
}

/** The live link's state: `up`, `down` (reconnecting) or '' (no stream). */
function setLink(state) {
  link.dataset.state = state;
  link.textContent = state === 'up' ? 'live' : state === 'down' ? 'reconnecting…' : '';
}

function stream(path, opts) {
  const stop = follow(path, {
    onLink: (up) => setLink(up ? 'up' : 'down'),
    onAuth: () => login('The token was refused.'),
    ...opts,
  });
  stops.push(stop);
}

// ---- routing ----

function route() {
  leave();
  outcome.text = '';
  outcome.kind = '';
  document.getElementById('logout').hidden = !token();
  const hash = location.hash || '#/';
  const [path, qs] = hash.slice(1).split('?');
  const params = new URLSearchParams(qs || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll('nav a')) {
    const on = a.getAttribute('href') === '#/' + (parts[0] || '');
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  let view;
  if (!parts.length) view = overview();
  else if (parts[0] === 'envelopes' && parts.length === 3) view = envelope(parts[1], parts[2]);
  else if (parts[0] === 'envelopes') view = envelopes(params);
  else if (parts[0] === 'dead-letters') view = deadLetters(params.get('endpoint'));
  else if (parts[0] === 'search') view = search(params.get('q') || '');
  else view = Promise.resolve(fill(main, h('h1', {}, 'Not found'), notice('No such page.', 'error')));
  view.catch(failed);
}

function failed(e) {
  if (e instanceof ApiError && e.status === 401) {
    login(token() ? 'The token was refused.' : null);
    return;
  }
  fill(main, h('h1', {}, 'Error'), notice(e.message || String(e), 'error'));
}

// ---- sign in ----

function login(message) {
  leave();
  document.getElementById('logout').hidden = true;
  const input = h('input', {
    id: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false',
  });
  fill(
    main,
    h('h1', {}, 'Sign in'),
    h(
      'form',
      {
        id: 'login',
        class: 'card',
        onsubmit: (ev) => {
          ev.preventDefault();
          setToken(input.value.trim());
          route();
        },
      },
      h('p', {}, 'This gateway needs its admin token (server.admin_token). It is kept for this tab only.'),
      message && h('p', { class: 'notice error', role: 'alert', id: 'login-error' }, message),
      h('label', { for: 'token' }, 'Admin token'),
      input,
      h('button', { type: 'submit' }, 'Sign in'),
    ),
  );
  input.focus();
}

// ---- confirmation ----

/** Asks before a change; resolves true when confirmed. */
function confirmAction(question, action) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = question;
  document.getElementById('confirm-ok').textContent = action;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
  });
}

/** The last action's outcome (kept while its view re-renders). */
const outcome = { text: '', kind: '' };

/** Shows the outcome of an action in the view's status line. */
function say(text, kind) {
  outcome.text = text;
  outcome.kind = kind || '';
  const el = document.getElementById('outcome');
  if (el) {
    el.className = 'notice ' + outcome.kind;
    el.textContent = text;
  }
}

// ---- overview ----

async function overview() {
  const chartBox = h('div', { id: 'rate-chart' });
  const totals = h('div', { id: 'totals', class: 'tiles' });
  const reasons = h('div', { id: 'reasons' });
  const kafka = h('div', { id: 'kafka' });
  const endpoints = h('div', { id: 'endpoints' });
  const states = h('div', { id: 'envelope-states', class: 'tiles' });
  fill(
    main,
    h('h1', {}, 'Overview'),
    h('section', { 'aria-labelledby': 'h-webhooks' },
      h('h2', { id: 'h-webhooks' }, 'Webhooks'), totals, chartBox,
      h('p', { class: 'legend' },
        h('span', { class: 'key key-accepted' }, 'accepted'), ' ',
        h('span', { class: 'key key-duplicate' }, 'duplicates'), ' ',
        h('span', { class: 'key key-rejected' }, 'rejected'), ' per second, last 5 minutes; top ',
        h('span', { id: 'chart-top' }, '1'), '/s'),
      reasons),
    h('section', { 'aria-labelledby': 'h-envelopes' },
      h('h2', { id: 'h-envelopes' }, 'Envelopes by state'), states),
    h('section', { 'aria-labelledby': 'h-delivery' },
      h('h2', { id: 'h-delivery' }, 'Delivery'), kafka, endpoints),
  );
  let samples = [];
  stream('/v1/overview/stream', {
    onMessage(m) {
      if (m.event !== 'overview') return;
      const o = JSON.parse(m.data);
      const lastT = samples.length ? samples[samples.length - 1].t : -Infinity;
      samples = samples.concat(o.samples.filter((s) => s.t > lastT)).slice(-301);
      drawOverview(o, samples, { chartBox, totals, reasons, kafka, endpoints, states });
    },
  });
}

function drawOverview(o, samples, el) {
  const idx = (name) => o.outcomes.indexOf(name);
  const ignored = new Set(['accepted', 'duplicate', 'handshake']);
  const rejected = o.outcomes.map((n, i) => (ignored.has(n) ? -1 : i)).filter((i) => i >= 0);
  const last = samples[samples.length - 1];
  const first = samples[0];
  const total = (ids) => ids.reduce((a, i) => a + last.counts[i], 0);
  const series = rates(samples, { accepted: [idx('accepted')], duplicate: [idx('duplicate')], rejected });
  const now = (name) => {
    const s = series[name];
    return s.length ? s[s.length - 1].v : 0;
  };
  const tile = (id, label, value, sub) =>
    h('div', { class: 'tile', id }, h('span', { class: 'label' }, label),
      h('strong', { class: 'value' }, String(value)), sub && h('span', { class: 'sub' }, sub));
  fill(
    el.totals,
    tile('total-accepted', 'Accepted', total([idx('accepted')]), `${now('accepted').toFixed(0)}/s now`),
    tile('total-duplicate', 'Duplicates', total([idx('duplicate')]), `${now('duplicate').toFixed(0)}/s now`),
    tile('total-rejected', 'Rejected', total(rejected), `${now('rejected').toFixed(0)}/s now`),
    tile('total-quarantined', 'Quarantined', o.quarantined, 'waiting for a decision'),
  );
  document.getElementById('chart-top').textContent = String(peak(series));
  fill(el.chartBox, chart(series, 5 * 60 * 1000,
    `Webhooks per second: ${now('accepted').toFixed(0)} accepted, ${now('duplicate').toFixed(0)} duplicates, ${now('rejected').toFixed(0)} rejected`));
  const byReason = rejected
    .map((i) => [o.outcomes[i], last.counts[i] - first.counts[i], last.counts[i]])
    .filter(([, , all]) => all > 0);
  fill(el.reasons, byReason.length
    ? table('Rejected by reason (last 5 minutes, since start)', ['Reason', 'Last 5 min', 'Since start'],
      byReason.map(([r, win, all]) => h('tr', {}, h('td', {}, r.replace(/_/g, ' ')), h('td', { class: 'num' }, win), h('td', { class: 'num' }, all))),
      { id: 'reasons-table' })
    : notice('No webhook was rejected since start.'));
  if (!o.envelopes) fill(el.states, notice('Envelope tracking is off (envelopes.enabled).'));
  else {
    fill(el.states, STATES.map((s) =>
      h('a', { class: 'tile', href: '#/envelopes?state=' + s, id: 'state-' + s },
        h('span', { class: 'label' }, badge(s)), h('strong', { class: 'value' }, String(o.envelopes[s] || 0)))));
  }
  fill(el.kafka, o.kafka
    ? h('p', { id: 'kafka-status' }, 'Kafka ', h('span', { class: 'badge', 'data-state': o.kafka.connected ? 'connected' : 'down' },
      o.kafka.connected ? 'connected' : 'not connected'),
    ` · outbox ${o.kafka.outbox}` + (o.kafka.outbox ? ` (oldest ${seconds(o.kafka.oldest_seconds)})` : ''))
    : h('p', { id: 'kafka-status' }, 'Kafka is off.'));
  fill(el.endpoints, o.endpoints.length
    ? table('HTTP endpoints', ['Endpoint', 'State', 'Pending', 'Dead letters', 'Delivery lag', 'Delivered'],
      o.endpoints.map((e) => h('tr', { 'data-endpoint': e.id },
        h('th', { scope: 'row' }, e.id),
        h('td', {}, badge(e.state === 'open' ? 'breaker open' : e.state)),
        h('td', { class: 'num' }, e.pending ?? '–'),
        h('td', { class: 'num' }, h('a', { href: '#/dead-letters?endpoint=' + enc(e.id) }, String(e.dead_letters ?? '–'))),
        h('td', { class: 'num' }, seconds(e.lag_seconds)),
        h('td', { class: 'num' }, e.delivered))),
      { id: 'endpoints-table' })
    : notice('No HTTP endpoints are configured.'));
}

// ---- envelopes ----

function envelopeKey(source, id) {
  return source + '\u0000' + id;
}

function envelopeRow(e) {
  const tr = h('tr', {
    'data-source': e.source, 'data-envelope': e.envelope_id, 'data-state': e.state, 'data-seq': e.sequence,
  });
  drawRow(tr, e);
  return tr;
}

function drawRow(tr, e) {
  tr.dataset.state = e.state;
  fill(
    tr,
    h('th', { scope: 'row' }, h('a', { href: envelopeHref(e.source, e.envelope_id) }, e.envelope_id)),
    h('td', {}, e.reference || ''),
    h('td', {}, e.source),
    h('td', { class: 'state' }, badge(e.state)),
    h('td', { class: 'progress' }, progress(e.progress, e.signers)),
    h('td', {}, h('time', { datetime: e.created_at, title: e.created_at }, age(e.created_at))),
    h('td', {}, e.deadline ? time(e.deadline) : ''),
  );
}

/** Whether a stream message's envelope belongs in a list with `f`. */
function matches(m, f) {
  if (f.state && m.to !== f.state) return false;
  if (f.source && m.source !== f.source) return false;
  if (f.reference && m.reference !== f.reference) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    const hay = [m.envelope_id, m.reference || ''].join(' ').toLowerCase();
    if (!hay.includes(q)) return false;
  }
  return true;
}

async function envelopes(params) {
  const f = {
    state: params.get('state') || '',
    source: params.get('source') || '',
    reference: params.get('reference') || '',
    q: params.get('q') || '',
  };
  const go = (change) => {
    location.hash = withQuery('#/envelopes', { ...f, ...change });
  };
  const select = h('select', { id: 'f-state', onchange: (ev) => go({ state: ev.target.value }) },
    h('option', { value: '' }, 'any state'),
    STATES.map((s) => h('option', { value: s, selected: s === f.state }, s.replace('_', ' '))));
  const text = (id, label, value) => [
    h('label', { for: id }, label),
    h('input', { id, name: id, type: 'search', value }),
  ];
  const form = h('form', {
    id: 'filters', class: 'filters', role: 'search',
    onsubmit: (ev) => {
      ev.preventDefault();
      go({
        source: form.querySelector('#f-source').value.trim(),
        reference: form.querySelector('#f-reference').value.trim(),
        q: form.querySelector('#f-q').value.trim(),
      });
    },
  },
  h('label', { for: 'f-state' }, 'State'), select,
  text('f-source', 'Source', f.source),
  text('f-reference', 'Reference', f.reference),
  text('f-q', 'Search', f.q),
  h('button', { type: 'submit' }, 'Filter'));
  const tbody = h('tbody', { id: 'envelope-rows' });
  const more = h('button', { id: 'more', type: 'button', hidden: true }, 'Older envelopes');
  const counter = h('p', { class: 'sub', id: 'list-status', role: 'status' });
  fill(main,
    h('h1', {}, 'Envelopes'), form,
    h('div', { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': 'Envelopes' }, h('table', { id: 'envelopes', class: 'fixed' },
      h('caption', {}, 'Envelopes, newest first; rows change live'),
      h('thead', {}, h('tr', {}, ['Envelope', 'Reference', 'Source', 'State', 'Signers', 'Age', 'Deadline']
        .map((t) => h('th', { scope: 'col' }, t)))),
      tbody)),
    counter, more);

  const rows = new Map();
  let next = null;
  const load = async (before) => {
    const page = await api(withQuery('/v1/envelopes', { ...f, limit: PAGE, before }));
    for (const e of page.envelopes) {
      const key = envelopeKey(e.source, e.envelope_id);
      if (rows.has(key)) continue;
      const tr = envelopeRow(e);
      rows.set(key, tr);
      tbody.appendChild(tr);
    }
    next = page.next_before ?? null;
    more.hidden = next === null;
    counter.textContent = rows.size ? `${rows.size} shown` : 'No envelopes match.';
    return page;
  };
  // A filter whose matches are sparse gets bounded answers (possibly empty):
  // go on by itself for a moment, so a rare match shows without clicks.
  const fillPage = async (before) => {
    const started = performance.now();
    let page = await load(before);
    const head = page.log_head;
    while (rows.size < PAGE && next !== null && performance.now() - started < 2000) {
      counter.textContent = rows.size ? `${rows.size} shown; searching older envelopes…` : 'Searching older envelopes…';
      page = await load(next);
    }
    if (!rows.size) counter.textContent = next === null ? 'No envelopes match.' : 'No match among the newest envelopes; search older ones below.';
    return { ...page, log_head: head };
  };
  more.addEventListener('click', () => fillPage(next).catch(failed));
  const first = await fillPage(params.get('before') || undefined);

  // Live: every change after the page was read, batched into one repaint
  // per frame. Rows are kept in creation order (`data-seq`); a new envelope
  // (or an older one entering the filter) is put in its place if it falls
  // within the shown range; at most MAX_ROWS rows stay (the oldest go, and
  // "Older envelopes" goes on from there).
  const queued = new Map();
  let scheduled = false;
  const stats = liveStats();
  const place = (tr, seq) => {
    let at = null;
    for (const row of tbody.children) {
      if (Number(row.dataset.seq) < seq) {
        at = row;
        break;
      }
    }
    tbody.insertBefore(tr, at);
  };
  const trim = () => {
    while (tbody.children.length > MAX_ROWS) {
      const last = tbody.lastElementChild;
      rows.delete(envelopeKey(last.dataset.source, last.dataset.envelope));
      marked.delete(last);
      last.remove();
      // `before` is exclusive: the next page starts with the row let go.
      next = Number(last.dataset.seq) + 1;
      more.hidden = false;
    }
  };
  const flush = () => {
    scheduled = false;
    const batch = [...queued.values()];
    queued.clear();
    const oldest = tbody.lastElementChild ? Number(tbody.lastElementChild.dataset.seq) : 0;
    for (const m of batch) {
      const key = envelopeKey(m.source, m.envelope_id);
      let tr = rows.get(key);
      if (!tr) {
        const inRange = next === null || (m.envelope_seq || 0) > oldest;
        if (params.get('before') || !matches(m, f) || !inRange) continue;
        tr = h('tr', { 'data-source': m.source, 'data-envelope': m.envelope_id, 'data-seq': m.envelope_seq || 0 });
        rows.set(key, tr);
        drawRow(tr, {
          source: m.source, envelope_id: m.envelope_id, reference: m.reference,
          state: m.to, progress: m.progress, created_at: m.at,
        });
        place(tr, m.envelope_seq || 0);
      } else {
        tr.dataset.state = m.to;
        fill(tr.querySelector('.state'), badge(m.to));
        fill(tr.querySelector('.progress'), progress(m.progress));
        if (m.reference && !tr.children[1].textContent) tr.children[1].textContent = m.reference;
      }
      // Marked for a while (no animation: a busy list would repaint all the
      // time); one timer unmarks what is due.
      tr.classList.add('changed');
      marked.set(tr, performance.now() + MARKED_MS);
    }
    trim();
    counter.textContent = `${rows.size} shown`;
    // The changes are on screen once the next frame starts.
    requestAnimationFrame(() => stats.painted(batch));
  };
  const marked = new Map();
  const unmark = setInterval(() => {
    const now = performance.now();
    for (const [tr, until] of marked) {
      if (until <= now) {
        tr.classList.remove('changed');
        marked.delete(tr);
      }
    }
  }, 500);
  stops.push(() => clearInterval(unmark));
  stream(withQuery('/v1/stream', { source: f.source, reference: f.reference }), {
    lastId: first.log_head,
    onMessage(m) {
      if (m.event === 'close') {
        const why = JSON.parse(m.data);
        if (why.reason === 'replay_too_long') route();
        return;
      }
      if (m.event !== 'message') return;
      const e = JSON.parse(m.data);
      e.receivedAt = performance.now();
      const key = envelopeKey(e.source, e.envelope_id);
      stats.received(queued.has(key));
      queued.set(key, e);
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(flush);
      }
    },
  });
}

/**
 * The live list's own counters, on `window.countersignPanel` (what the
 * benchmark reads): messages received, coalesced (a newer one of the same
 * envelope came before the repaint) and painted, repaints, the largest
 * batch, and each painted message's delay from its arrival and from the
 * gateway's receipt of its webhook (ms, the last 10 000).
 */
function liveStats() {
  const s = {
    received: 0, coalesced: 0, painted: 0, repaints: 0, maxBatch: 0, arrivalToPaint: [], receiptToPaint: [],
  };
  window.countersignPanel = s;
  const keep = (arr, v) => {
    arr.push(v);
    if (arr.length > 10000) arr.splice(0, arr.length - 10000);
  };
  return {
    /** One message; `replaces`: it replaces a queued one of its envelope. */
    received(replaces) {
      s.received++;
      if (replaces) s.coalesced++;
    },
    painted(batch) {
      const now = performance.now();
      const wall = Date.now();
      s.repaints++;
      s.maxBatch = Math.max(s.maxBatch, batch.length);
      s.painted += batch.length;
      for (const m of batch) {
        keep(s.arrivalToPaint, now - m.receivedAt);
        keep(s.receiptToPaint, wall - Date.parse(m.at));
      }
    },
  };
}

// ---- one envelope ----

async function envelope(source, id) {
  const path = `/v1/envelopes/${enc(source)}/${enc(id)}`;
  const box = h('div', { id: 'envelope' });
  fill(main, box);
  let env = await api(path);
  drawEnvelope(box, env, false);
  // Live: the envelope again whenever one of its changes commits (and once
  // the stream is up, for what changed before it was).
  let timer = null;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      try {
        const now = await api(path);
        const moved = now.updated_at !== env.updated_at || now.history.length !== env.history.length;
        env = now;
        drawEnvelope(box, env, moved);
      } catch (e) {
        failed(e);
      }
    }, 150);
  };
  stream(withQuery('/v1/stream', { source }), {
    onLink: (up) => {
      setLink(up ? 'up' : 'down');
      if (up) refresh();
    },
    onMessage(m) {
      if (m.event !== 'message') return;
      const e = JSON.parse(m.data);
      if (e.source === source && e.envelope_id === id) refresh();
    },
  });
  stops.push(() => clearTimeout(timer));
}

function drawEnvelope(box, e, changed) {
  const reg = e.registration;
  const facts = [
    ['State', badge(e.state)],
    ['Source', `${e.source} (${e.provider})`],
    ['Reference', reg ? reg.reference : 'not registered'],
    ['Signers', progress(e.progress, e.signers)],
    ['Created', time(e.created_at)],
    ['Updated', time(e.updated_at)],
    ['Deadline', e.deadline ? time(e.deadline) : 'none'],
    e.cancel_reason && ['Cancelled by', e.cancel_reason],
    e.completed_by && ['Completed by', e.completed_by],
    ['Emitted', e.emitted.length ? e.emitted.join(', ') : 'nothing yet'],
    e.anomalies && ['Anomalies', e.anomalies],
  ].filter(Boolean);
  // A refresh keeps what the sections showed until their new content loads.
  const kept = (id, fallback) => {
    const old = box.querySelector('#' + id);
    return old ? [...old.childNodes].map((n) => n.cloneNode(true)) : fallback;
  };
  const events = h('div', { id: 'deliveries' }, kept('deliveries', null));
  const audit = h('div', { id: 'audit' }, kept('audit', h('p', { class: 'sub' }, 'Reading the audit trail…')));
  fill(
    box,
    h('p', {}, h('a', { href: '#/envelopes' }, '← Envelopes')),
    h('h1', { 'data-state': e.state, class: changed ? 'changed' : null }, 'Envelope ', h('code', {}, e.envelope_id)),
    h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    reg && h('section', { 'aria-labelledby': 'h-reg' },
      h('h2', { id: 'h-reg' }, 'Registration'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Reference'), h('dd', {}, reg.reference),
        reg.document_sha256 && [h('dt', {}, 'Document SHA-256'), h('dd', {}, h('code', {}, reg.document_sha256))],
        reg.metadata && [h('dt', {}, 'Metadata'), h('dd', {}, h('pre', {}, JSON.stringify(reg.metadata, null, 2)))])),
    h('section', { 'aria-labelledby': 'h-signers' },
      h('h2', { id: 'h-signers' }, 'Signers'),
      e.signers.length
        ? table('Signers', ['Signer', 'Role', 'State', 'Expected'], e.signers.map((s) => h('tr', {},
          h('th', { scope: 'row' }, s.name || s.email || s.id || '?', s.name && s.email ? ` <${s.email}>` : ''),
          h('td', {}, s.role || ''), h('td', {}, badge(s.state)), h('td', {}, s.expected ? 'yes' : 'no'))))
        : notice('No signer is known yet.')),
    h('section', { 'aria-labelledby': 'h-timeline' },
      h('h2', { id: 'h-timeline' }, 'Timeline'),
      table('Provider and derived events, oldest first', ['When', 'Event', 'Origin', 'State', 'Signer', 'Event id'],
        e.history.map((x) => h('tr', { class: x.changed ? 'moved' : null },
          h('td', {}, time(x.at)),
          h('td', {}, x.kind),
          h('td', {}, x.origin),
          h('td', {}, x.from === x.to ? badge(x.to) : [badge(x.from), ' → ', badge(x.to)]),
          h('td', {}, x.signer ? `${x.signer.email || x.signer.name || x.signer.id || ''} ${x.signer.to}` : ''),
          h('td', {}, x.event_id ? h('code', {}, x.event_id) : ''))),
        { id: 'timeline' })),
    h('section', { 'aria-labelledby': 'h-deliveries' },
      h('h2', { id: 'h-deliveries' }, 'Routing and deliveries'), events),
    h('section', { 'aria-labelledby': 'h-audit' },
      h('h2', { id: 'h-audit' }, 'Audit trail'), audit),
  );
  drawDeliveries(events, e);
  drawAudit(audit, e);
}

async function drawDeliveries(box, e) {
  const ids = [...new Set(e.history.map((x) => x.event_id).filter(Boolean))].slice(0, 50);
  if (!ids.length) {
    fill(box, notice('No event of this envelope is stored.'));
    return;
  }
  const views = await Promise.all(ids.map((id) =>
    api(withQuery('/v1/events/' + enc(id), { source: e.source })).catch(() => null)));
  fill(box, views.filter(Boolean).map((v) => {
    const ev = v.event;
    const kafka = v.state.kafka.map((k) => h('li', {},
      `Kafka ${k.topic}: `, badge(k.status),
      k.status === 'published' ? ` partition ${k.partition}, offset ${k.offset}` : '',
      k.reason ? ` (${k.reason})` : ''));
    const http = v.state.http.map((d) => h('li', {},
      `HTTP ${d.endpoint}: `, badge(d.status), ` after ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`,
      d.reason ? ` (${d.reason})` : '',
      d.history.length ? attempts(d.history) : ''));
    return h('article', { class: 'delivery', 'data-event': ev.id },
      h('h3', {}, h('code', {}, ev.id), ` ${ev.kind}`, ev.origin === 'countersign' ? ' (derived)' : ''),
      v.routes && v.routes.length
        ? h('p', { class: 'routes' }, 'Routes it matches (current config): ', v.routes.join(', '))
        : null,
      kafka.length || http.length
        ? h('ul', {}, kafka, http)
        : h('p', { class: 'sub' }, v.state.quarantine ? `quarantined (${v.state.quarantine.status})` : 'No route matched it.'));
  }));
}

async function drawAudit(box, e) {
  let r;
  try {
    r = await api(withQuery('/v1/audit/verify', { envelope: `${e.source}/${e.envelope_id}` }));
  } catch (err) {
    fill(box, notice(err.status === 409 ? 'The audit trail is off (audit.enabled).' : err.message,
      err.status === 409 ? '' : 'error'));
    return;
  }
  const verdict = r.verified
    ? `Verified: ${r.links} links, ${r.checkpoints} signed checkpoint${r.checkpoints === 1 ? '' : 's'}`
      + (r.unsigned_tail ? `, ${r.unsigned_tail} entries not signed yet` : '')
    : `Broken: ${r.failure}`;
  fill(box,
    h('p', { id: 'audit-verdict', class: 'notice ' + (r.verified ? 'ok' : 'error') }, verdict),
    r.entries.length
      ? table('Audit entries of this envelope', ['#', 'When', 'Entry'], r.entries.map((x) => h('tr', {},
        h('td', { class: 'num' }, x.seq), h('td', {}, time(new Date(x.at_ms).toISOString())), h('td', {}, x.kind))))
      : notice('No audit entry names this envelope yet.'));
}

// ---- dead letters ----

/** What the endpoints' dead letters look like (a change re-reads the list). */
function deadLetterShape(endpoints) {
  return JSON.stringify(endpoints.map((e) => [e.id, e.dead_letters, e.state]));
}

/**
 * The dead letters of one endpoint. Live: the overview stream carries every
 * endpoint's dead-letter count and state; when they change (a delivery gave
 * up, another operator replayed), the list is read again.
 */
let deadLettersShown = '';

async function deadLetters(endpointId, following) {
  const { endpoints } = await api('/v1/endpoints');
  // What the page shows now: a stream message saying the same changes nothing.
  deadLettersShown = deadLetterShape(endpoints);
  if (!following) {
    let timer = null;
    stream('/v1/overview/stream', {
      onMessage(m) {
        if (m.event !== 'overview') return;
        const now = deadLetterShape(JSON.parse(m.data).endpoints);
        if (now === deadLettersShown) return;
        deadLettersShown = now;
        clearTimeout(timer);
        timer = setTimeout(() => deadLetters(endpointId, true).catch(failed), 200);
      },
    });
    stops.push(() => clearTimeout(timer));
  }
  if (!endpoints.length) {
    fill(main, h('h1', {}, 'Dead letters'), notice('No HTTP endpoints are configured.'));
    return;
  }
  const ep = endpoints.find((e) => e.id === endpointId) || endpoints[0];
  const list = h('div', { id: 'dead-letters' });
  const actions = h('div', { class: 'actions' });
  fill(main,
    h('h1', {}, 'Dead letters'),
    h('nav', { 'aria-label': 'Endpoints', class: 'tabs' }, endpoints.map((e) =>
      h('a', { href: '#/dead-letters?endpoint=' + enc(e.id), 'aria-current': e.id === ep.id ? 'page' : null },
        `${e.id} (${e.dead_letters ?? 0})`))),
    h('p', {}, 'Endpoint ', h('strong', {}, ep.id), ' ', badge(ep.state === 'open' ? 'breaker open' : ep.state), ` · ${ep.url}`),
    ep.disabled && h('p', { class: 'notice error' }, `Disabled since ${when(ep.disabled.at)}: ${ep.disabled.reason}`),
    actions,
    h('p', { id: 'outcome', class: 'notice ' + outcome.kind, role: 'status' }, outcome.text),
    list);
  const reload = () => deadLetters(ep.id, true).catch(failed);
  fill(actions,
    h('button', {
      id: 'replay-all', type: 'button', disabled: !ep.dead_letters,
      onclick: async () => {
        if (!(await confirmAction(`Replay all dead letters of ${ep.id}?`, 'Replay all'))) return;
        const r = await api(withQuery('/v1/dead-letters/replay', { endpoint: ep.id }), { method: 'POST' });
        await reload();
        say(`Replayed ${r.replayed} dead letter${r.replayed === 1 ? '' : 's'}.`, 'ok');
      },
    }, 'Replay all'),
    ep.disabled && h('button', {
      id: 'enable', type: 'button',
      onclick: async () => {
        if (!(await confirmAction(`Deliver to ${ep.id} again?`, 'Re-enable'))) return;
        await api(`/v1/endpoints/${enc(ep.id)}/enable`, { method: 'POST' });
        await reload();
        say(`${ep.id} is enabled again.`, 'ok');
      },
    }, 'Re-enable endpoint'));
  const page = await api(withQuery('/v1/dead-letters', { endpoint: ep.id, limit: 100 }));
  if (!page.dead_letters.length) {
    fill(list, notice(`No dead letters for ${ep.id}.`));
    return;
  }
  const rows = page.dead_letters.map((d) => {
    const detail = h('tr', { class: 'detail', hidden: true }, h('td', { colspan: 6 }));
    const act = async (verb) => {
      const replay = verb === 'replay';
      const ok = await confirmAction(
        replay ? `Replay ${d.id} to ${d.endpoint}?` : `Discard ${d.id}? It will not be delivered.`,
        replay ? 'Replay' : 'Discard');
      if (!ok) return;
      try {
        if (replay) await api(`/v1/dead-letters/${enc(d.id)}/replay`, { method: 'POST' });
        else await api(`/v1/dead-letters/${enc(d.id)}`, { method: 'DELETE' });
        tr.remove();
        detail.remove();
        say(`${replay ? 'Replayed' : 'Discarded'} ${d.id}.`, 'ok');
      } catch (e) {
        say(e.message, 'error');
      }
    };
    const tr = h('tr', { 'data-id': d.id },
      h('th', { scope: 'row' }, h('code', {}, d.event_id)),
      h('td', {}, d.envelope ? h('a', { href: envelopeHref(d.source, d.envelope) }, d.envelope) : ''),
      h('td', {}, time(d.dead_lettered_at)),
      h('td', {}, d.reason),
      h('td', { class: 'num' }, d.attempts),
      h('td', { class: 'row-actions' },
        h('button', {
          type: 'button', class: 'attempts-toggle', 'aria-expanded': 'false',
          'aria-label': `Attempts of ${d.id}`,
          onclick: async (ev) => {
            const open = detail.hidden;
            detail.hidden = !open;
            ev.target.setAttribute('aria-expanded', String(open));
            if (open) {
              const full = await api(`/v1/dead-letters/${enc(d.id)}`);
              fill(detail.firstChild, attempts(full.history));
            }
          },
        }, 'Attempts'),
        h('button', { type: 'button', class: 'replay', 'aria-label': `Replay ${d.id}`, onclick: () => act('replay') }, 'Replay'),
        h('button', { type: 'button', class: 'discard danger', 'aria-label': `Discard ${d.id}`, onclick: () => act('discard') }, 'Discard')));
    return [tr, detail];
  });
  fill(list, table(`Dead letters of ${ep.id}, oldest first`, ['Event', 'Envelope', 'Dead-lettered', 'Reason', 'Attempts', 'Actions'],
    rows, { id: 'dead-letter-table' }));
  if (page.next_after) list.appendChild(notice('More dead letters follow; replay or discard these to see them.'));
}

// ---- search ----

async function search(q) {
  document.getElementById('search-q').value = q;
  if (!q) {
    fill(main, h('h1', {}, 'Search'), notice('Search by event id, envelope id or reference.'));
    return;
  }
  const event = (source) => api(withQuery('/v1/events/' + enc(q), { source })).then((v) => [v]);
  const envelopesBy = (params) => api(withQuery('/v1/envelopes', { ...params, limit: PAGE })).catch((e) => {
    if (e.status === 409) return { envelopes: [] };
    throw e;
  });
  const [events, exact, found] = await Promise.all([
    event().catch((e) => {
      if (e.status === 404) return [];
      if (e.status === 409 && e.body && e.body.sources) {
        return Promise.all(e.body.sources.map((s) => event(s).then((v) => v[0])));
      }
      throw e;
    }),
    // A reference exactly (indexed: found at any depth), then parts of ids,
    // references and signers among the newest envelopes.
    envelopesBy({ reference: q }),
    envelopesBy({ q }),
  ]);
  const seen = new Set(exact.envelopes.map((e) => envelopeKey(e.source, e.envelope_id)));
  found.envelopes = exact.envelopes.concat(
    found.envelopes.filter((e) => !seen.has(envelopeKey(e.source, e.envelope_id))));
  fill(main,
    h('h1', {}, 'Search: ', h('q', {}, q)),
    h('section', { 'aria-labelledby': 'h-events' },
      h('h2', { id: 'h-events' }, 'Events'),
      events.length
        ? table('Events with this id', ['Event', 'Source', 'Kind', 'Envelope', 'Received', 'Deliveries'], events.map((v) => {
          const ev = v.event;
          return h('tr', { 'data-event': ev.id },
            h('th', { scope: 'row' }, h('code', {}, ev.id)),
            h('td', {}, ev.source),
            h('td', {}, ev.kind),
            h('td', {}, ev.envelope_id ? h('a', { href: envelopeHref(ev.source, ev.envelope_id) }, ev.envelope_id) : ''),
            h('td', {}, time(ev.received_at)),
            h('td', {}, [...v.state.kafka.map((k) => `${k.topic}: ${k.status}`),
              ...v.state.http.map((d) => `${d.endpoint}: ${d.status}`)].join(', ') || 'none'));
        }), { id: 'event-results' })
        : notice('No event has this id.')),
    h('section', { 'aria-labelledby': 'h-found' },
      h('h2', { id: 'h-found' }, 'Envelopes'),
      found.envelopes.length
        ? table('Envelopes whose id, reference or signer matches', ['Envelope', 'Reference', 'Source', 'State', 'Signers', 'Age', 'Deadline'],
          found.envelopes.map(envelopeRow), { id: 'envelope-results' })
        : notice(found.next_before ? 'None among the newest envelopes; narrow the search on the Envelopes page.' : 'No envelope matches.')),
  );
}

// ---- start ----

document.getElementById('search').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const q = document.getElementById('search-q').value.trim();
  location.hash = withQuery('#/search', { q });
});
document.getElementById('logout').addEventListener('click', () => {
  setToken('');
  login(null);
});
document.getElementById('confirm').addEventListener('cancel', () => {
  document.getElementById('confirm').returnValue = '';
});
window.addEventListener('hashchange', route);
if (token()) document.getElementById('logout').hidden = false;
route();
