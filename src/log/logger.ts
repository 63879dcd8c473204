/**
 * The log: one line per event, subscribed to the core's events. JSON lines
 * when the output is not a terminal (for collectors), short readable lines
 * when it is.
 */
import { EVENT_NAMES, subscribe, type EventMap, type EventName } from '../events.js';

export type LogFormat = 'json' | 'text';

export interface LoggerOptions {
  format?: LogFormat | 'auto';
  write?: (line: string) => void;
  /** Drop the lines of requests that succeed (very busy gateways); failures, which carry a code, stay. */
  quietRequests?: boolean;
}

/** Query parameters whose values are secrets (Jupyter's and websockify's `token`, OAuth's `access_token`…). */
const SECRET_PARAM = /([?&](?:token|access_token|auth|key|password|secret|sig|signature|login|code)=)[^&#]*/gi;

/** A request path fit for a log: secret query values replaced by `…`. */
export function redactPath(path: string): string {
  return path.includes('=') ? path.replace(SECRET_PARAM, '$1…') : path;
}

/** A batch is written at most once per FLUSH_MS… */
const FLUSH_MS = 25;
/** …or at once when this much is waiting. */
const FLUSH_BYTES = 64 * 1024;

/**
 * Writes lines to stdout in batches. A pipe write is a synchronous system call
 * that also wakes the reader: one per line halved the gateway's request rate,
 * and one per turn of the event loop was still a sixth of a WebSocket
 * handshake's CPU. So a line is written at the end of its turn of the event
 * loop, as before, when the last write was FLUSH_MS ago or more (a quiet
 * gateway logs at once); under load, lines wait for the rest of those FLUSH_MS
 * and go out together. Lines still pending when the process exits are written
 * then. A reader that went away (EPIPE) never crashes the gateway: lines are
 * dropped from then on.
 */
function stdoutWriter(): { write: (line: string) => void; flush: () => void } {
  let pending: string[] = [];
  let bytes = 0;
  let scheduled: 'immediate' | 'timer' | null = null;
  let timer: NodeJS.Timeout | null = null;
  let lastWrite = 0;
  let broken = false;
  process.stdout.on('error', () => {
    broken = true;
    pending = [];
  });
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    scheduled = null;
    if (broken || pending.length === 0) return;
    const text = `${pending.join('\n')}\n`;
    pending = [];
    bytes = 0;
    lastWrite = performance.now();
    process.stdout.write(text);
  };
  // process.exit() and the end of the program: stdout is synchronous for files and pipes on Linux.
  process.on('exit', flush);
  return {
    write: (line) => {
      if (broken) return;
      pending.push(line);
      bytes += line.length + 1;
      if (bytes >= FLUSH_BYTES) return flush();
      if (scheduled) return;
      const wait = FLUSH_MS - (performance.now() - lastWrite);
      if (wait <= 0) {
        scheduled = 'immediate';
        setImmediate(flushIfImmediate);
      } else {
        scheduled = 'timer';
        // Unref'd: a pending line never keeps the process alive (the exit hook writes it).
        timer = setTimeout(flush, wait);
        timer.unref();
      }
    },
    flush,
  };
  function flushIfImmediate(): void {
    if (scheduled === 'immediate') flush();
  }
}

export function startLogger(opts: LoggerOptions = {}): () => void {
  const out = opts.write ? null : stdoutWriter();
  const write = opts.write ?? out!.write;
  const format: LogFormat = !opts.format || opts.format === 'auto' ? (process.stdout.isTTY ? 'text' : 'json') : opts.format;
  const offs = EVENT_NAMES.map((name) =>
    subscribe(name, (data) => {
      // Quiet drops the lines of requests that went well; a failure (it carries a code) is always logged.
      if (opts.quietRequests && name === 'request' && (data as { code?: string }).code === undefined) return;
      const path = (data as { path?: unknown }).path;
      if (typeof path === 'string') {
        const redacted = redactPath(path);
        if (redacted !== path) data = { ...data, path: redacted };
      }
      write(format === 'json' ? jsonLine(name, data) : textLine(name, data));
    }),
  );
  return () => {
    offs.forEach((off) => off());
    if (out) {
      out.flush();
      process.off('exit', out.flush);
    }
  };
}

let isoSecond = -1;
let isoPrefix = '';

/**
 * The time as ISO 8601 (`toISOString()`'s form): the date and time of day formatted once per
 * second and the milliseconds appended, since a busy gateway logs many lines in each second.
 */
function isoNow(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const ms = now - second * 1000;
  return `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`;
}

/**
 * `{"time":…,"event":…,…data}`: the same line as stringifying one merged object, without
 * building that object for each line (an event's data is a plain object with at least one key).
 */
function jsonLine(name: EventName, data: object): string {
  const rest = JSON.stringify(data);
  return `{"time":"${isoNow()}","event":${JSON.stringify(name)}${rest.length > 2 ? `,${rest.slice(1)}` : '}'}`;
}

function textLine<N extends EventName>(name: N, d: EventMap[N]): string {
  const t = new Date().toISOString().slice(11, 23);
  const e = d as Record<string, unknown>;
  switch (name) {
    case 'request':
      return `${t} ${e.status} ${e.method} ${e.path} ${e.app ?? '-'} ${e.ms}ms${e.code ? ` ${e.code}` : ''}`;
    case 'upgrade':
      return `${t} ws ${e.accepted ? 'open' : 'refused'} ${e.path} ${e.app ?? '-'}${e.status ? ` ${e.status}` : ''}${e.protocol === 'h2' ? ' h2' : ''}${e.code ? ` ${e.code}` : ''}${e.closeCode ? ` close=${e.closeCode}` : ''}${e.reason ? ` (${e.reason})` : ''}`;
    case 'tunnel.close':
      return `${t} ws closed ${e.path} ${e.app} ${e.closeCode ?? 'no close frame'} by ${e.closedBy} after ${Math.round(Number(e.ms) / 100) / 10}s in=${e.bytesIn}B/${e.framesIn}f out=${e.bytesOut}B/${e.framesOut}f`;
    default: {
      const rest = Object.entries(e)
        .filter(([k, v]) => k !== 'gateway' && v !== undefined)
        .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
        .join(' ');
      return `${t} ${name} ${rest}`;
    }
  }
}
