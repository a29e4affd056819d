// The admin API as the panel uses it: JSON calls and Server-Sent Event
// streams, both with the admin token as a bearer header. The token lives in
// this tab's sessionStorage only (no cookie: nothing a other site can make
// the browser send, so no CSRF).

const KEY = 'countersign.token';

export function token() {
  return sessionStorage.getItem(KEY) || '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

/** A call the API refused; `status` and the API's own message. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function headers(extra) {
  const h = new Headers(extra || {});
  const t = token();
  if (t) h.set('Authorization', 'Bearer ' + t);
  return h;
}

/** Calls the API; the JSON answer, or an ApiError (401: sign in). */
export async function api(path, { method = 'GET', body } = {}) {
  const init = { method, headers: headers(body ? { 'Content-Type': 'application/json' } : {}) };
  if (body !== undefined) init.body = JSON.stringify(body);
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'the gateway cannot be reached', null);
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (e) {
    json = null;
  }
  if (!res.ok) {
    const message = (json && json.error) || res.statusText || 'request failed';
    throw new ApiError(res.status, message, json);
  }
  return json;
}

/** `path` with the non-empty `params` as its query string. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? path + '?' + s : path;
}

/**
 * Follows a Server-Sent Event stream (read with fetch, so the token goes in
 * a header, which EventSource cannot send). Reconnects after a cut with
 * `Last-Event-ID`, so nothing is missed; `onLink(up)` reports the link,
 * `onMessage({id, event, data})` each message, `onAuth()` a refused token.
 * Returns a function that stops it.
 */
export function follow(path, { lastId, onMessage, onLink, onAuth }) {
  const ctl = new AbortController();
  let last = lastId === undefined || lastId === null ? null : String(lastId);
  let stopped = false;
  let delay = 500;

  async function once() {
    const h = headers({ Accept: 'text/event-stream' });
    if (last !== null) h.set('Last-Event-ID', last);
    const res = await fetch(path, { headers: h, signal: ctl.signal, cache: 'no-store' });
    if (res.status === 401) {
      stopped = true;
      onAuth && onAuth();
      return;
    }
    if (!res.ok || !res.body) throw new Error('stream answered ' + res.status);
    onLink && onLink(true);
    delay = 500;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const msg = { id: null, event: 'message', data: '' };
        const data = [];
        for (const line of frame.split('\n')) {
          if (line.startsWith(':')) continue;
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'id') msg.id = val;
          else if (field === 'event') msg.event = val;
          else if (field === 'data') data.push(val);
        }
        if (!data.length) continue;
        msg.data = data.join('\n');
        if (msg.id !== null) last = msg.id;
        if (msg.event === 'close') {
          try {
            const seq = JSON.parse(msg.data).last_seq;
            if (seq !== undefined && seq !== null) last = String(seq);
          } catch (e) {
            /* keep the last id seen */
          }
        }
        onMessage(msg);
      }
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
      } catch (e) {
        if (stopped) return;
      }
      if (stopped) return;
      onLink && onLink(false);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  })();

  return () => {
    stopped = true;
    ctl.abort();
  };
}
