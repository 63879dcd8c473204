/** Numbers and times as the dashboard shows them. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 0 B, 812 B, 1.4 KiB, 23 MiB */
export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 || v >= 100 ? Math.round(v) : v.toFixed(1)} ${UNITS[i]}`;
}

/** 1,234,567 */
export function formatCount(n) {
  return typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en') : '—';
}

/** 850 ms, 12 s, 4 m 05 s, 3 h 02 m, 2 d 5 h */
export function formatDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${String(m % 60).padStart(2, '0')} m`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** An uptime, counted in whole seconds (it is redrawn once a second): 0 s, 42 s, 4 m 05 s */
export function formatUptime(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  return formatDuration(Math.max(0, Math.floor(ms / 1000) * 1000)).replace(/^0 ms$/, '0 s');
}

/** Milliseconds since epoch from an ISO string or a number (null when neither). */
export function toMs(at) {
  if (typeof at === 'number') return at;
  if (typeof at === 'string') {
    const t = Date.parse(at);
    return Number.isNaN(t) ? null : t;
  }
  return null;
}

/** 14:03:27 (local time) */
export function formatClock(at) {
  const t = toMs(at);
  if (t === null) return '—';
  const d = new Date(t);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((x) => String(x).padStart(2, '0')).join(':');
}

/** The full local date and time, for a title attribute. */
export function formatFull(at) {
  const t = toMs(at);
  return t === null ? '' : new Date(t).toLocaleString();
}

/** "12 s ago" */
export function formatAgo(at, now = Date.now()) {
  const t = toMs(at);
  return t === null ? '—' : `${formatDuration(Math.max(0, now - t))} ago`;
}

/** What a WebSocket close code means (RFC 6455 §7.4.1, and the IANA registry). */
const CLOSE_CODES = {
  1000: 'normal',
  1001: 'going away',
  1002: 'protocol error',
  1003: 'unsupported data',
  1005: 'no code sent',
  1006: 'abnormal (no close frame)',
  1007: 'invalid payload',
  1008: 'policy violation',
  1009: 'message too big',
  1010: 'extension required',
  1011: 'server error',
  1012: 'service restart',
  1013: 'try again later',
  1014: 'bad gateway',
  1015: 'TLS handshake failed',
};

export function closeCodeMeaning(code) {
  if (typeof code !== 'number') return 'no close frame';
  if (CLOSE_CODES[code]) return CLOSE_CODES[code];
  if (code >= 4000 && code <= 4999) return 'application-defined';
  if (code >= 3000 && code <= 3999) return 'registered (library/framework)';
  return '';
}

/** ISO 8601, for a `<time datetime>` (undefined when `at` is not a time). */
export function formatIso(at) {
  const t = toMs(at);
  return t === null ? undefined : new Date(t).toISOString();
}
