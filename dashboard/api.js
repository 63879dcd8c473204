/**
 * Calls to the admin API from the page: every request carries the session
 * cookie and the CSRF secret the server put in `<meta name="porthole-csrf">`.
 * A 401 anywhere means the session ended; listeners (the app shell) are told.
 */
import { SseParser } from './sse.js';

export const BASE = '/_porthole/';
export const API = '/_porthole/api/';

const csrf = document.querySelector('meta[name="porthole-csrf"]')?.getAttribute('content') ?? '';

/** @type {Set<() => void>} */
const endListeners = new Set();
let ended = false;

/** Calls `fn` once the server answers 401; returns the unsubscribe function. */
export function onSessionEnded(fn) {
  endListeners.add(fn);
  if (ended) fn();
  return () => endListeners.delete(fn);
}

/** Marks the session ended (a 401 here, or another tab that saw one). */
export function sessionEnded() {
  if (ended) return;
  ended = true;
  for (const fn of endListeners) fn();
}

/** An error answer of the admin API: `{ ok:false, error:{ code, status, message, problems?, fields? } }`. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{ code?: string, message?: string, problems?: string[], fields?: Record<string, string> }} error
   */
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code ?? '';
    this.problems = error.problems ?? [];
    this.fields = error.fields ?? {};
  }
}

function headers(json) {
  /** @type {Record<string, string>} */
  const h = { 'X-Porthole-CSRF': csrf, Accept: 'application/json' };
  if (json) h['Content-Type'] = 'application/json';
  return h;
}

/**
 * A JSON call to the admin API (`path` is relative to /_porthole/api/ unless it starts with /).
 * @param {string} path
 * @param {{ method?: string, body?: unknown, signal?: AbortSignal }} [opts]
 * @returns {Promise<any>}
 */
export async function api(path, opts = {}) {
  const url = path.startsWith('/') ? path : API + path;
  const res = await fetch(url, {
    method: opts.method ?? 'GET',
    headers: headers(opts.body !== undefined),
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    credentials: 'same-origin',
    cache: 'no-store',
    signal: opts.signal,
  });
  if (res.status === 401) sessionEnded();
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: reported below with the status */
  }
  if (!res.ok || json?.ok === false) {
    throw new ApiError(res.status, json?.error ?? { message: `${res.status} ${res.statusText}${text && !json ? `: ${text.slice(0, 200)}` : ''}` });
  }
  return json ?? {};
}

/** Ends the session on the server, then goes back to the login page. */
export async function logout() {
  try {
    await fetch(`${BASE}logout`, { method: 'POST', headers: headers(false), credentials: 'same-origin' });
  } finally {
    location.assign(BASE);
  }
}

/** `app` in a URL path. */
export const appPath = (name) => `apps/${encodeURIComponent(name)}`;

/**
 * @typedef {{ state: 'connecting' } | { state: 'open' } | { state: 'retrying', inMs: number, reason: string } | { state: 'ended' } | { state: 'stopped' } | { state: 'paused' }} StreamState
 */

const FIRST_DELAY = 500;
const MAX_DELAY = 15_000;

/**
 * Follows a Server-Sent Events endpoint through fetch (for the CSRF header),
 * reconnecting with exponential backoff when the stream fails or ends.
 * `onOpen` runs on every (re)connection before its first message, so a
 * caller can drop what a replayed tail would duplicate.
 * @param {string} path
 * @param {{ onOpen?: () => void, onMessage: (msg: import('./sse.js').SseMessage) => void, onState?: (s: StreamState) => void }} handlers
 * @returns {() => void} stops following
 */
export function follow(path, { onOpen, onMessage, onState = () => {} }) {
  const url = path.startsWith('/') ? path : API + path;
  let stopped = false;
  let delay = FIRST_DELAY;
  /** @type {AbortController | undefined} */
  let ctrl;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;

  async function connect() {
    ctrl = new AbortController();
    onState({ state: 'connecting' });
    let reason = 'the stream ended';
    try {
      const res = await fetch(url, { headers: { ...headers(false), Accept: 'text/event-stream' }, credentials: 'same-origin', cache: 'no-store', signal: ctrl.signal });
      if (res.status === 401) {
        stopped = true;
        sessionEnded();
        onState({ state: 'ended' });
        return;
      }
      if (!res.ok || !res.body) {
        reason = `HTTP ${res.status}`;
      } else {
        onOpen?.();
        onState({ state: 'open' });
        const parser = new SseParser((msg) => {
          if (!stopped) onMessage(msg);
        });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done || stopped) break;
          delay = FIRST_DELAY;
          parser.push(value);
        }
      }
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
    }
    if (stopped) return;
    onState({ state: 'retrying', inMs: delay, reason });
    timer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, MAX_DELAY);
  }

  // Once any call learns the session ended, a stream still open on it stops too.
  const offEnded = onSessionEnded(() => {
    if (stopped) return;
    stopped = true;
    clearTimeout(timer);
    ctrl?.abort();
    onState({ state: 'ended' });
  });
  if (!stopped) connect();
  return () => {
    offEnded();
    if (stopped) return;
    stopped = true;
    clearTimeout(timer);
    ctrl?.abort();
    onState({ state: 'stopped' });
  };
}
