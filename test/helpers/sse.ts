/**
 * A Server-Sent Events reader for tests: follows an admin API stream with a
 * bearer token, parses its messages (JSON data) as they come, and waits for
 * the first one that passes a check.
 */
import http from 'node:http';
import type { TestContext } from 'node:test';

export interface SseMessage {
  event: string;
  data: any;
  /** When it arrived (performance.now()). */
  at: number;
}

export interface SseStream {
  messages: SseMessage[];
  /**
   * The first message that passes `fn`: from now on, or among those already
   * received too with `past`, or from index `from` of `messages` (a mark
   * taken before an action that may be answered before it returns).
   */
  next(fn: (m: SseMessage) => boolean, what: string, opts?: { past?: boolean; from?: number; timeoutMs?: number }): Promise<SseMessage>;
  close(): void;
}

export function followSse(t: TestContext, url: string, token: string): Promise<SseStream> {
  return new Promise((ok, fail) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
    t.after(() => req.destroy());
    req.on('error', fail);
    req.on('response', (res) => {
      if (res.statusCode !== 200 || res.headers['content-type'] !== 'text/event-stream') {
        res.resume();
        return fail(new Error(`${url}: answered ${res.statusCode} ${res.headers['content-type']}`));
      }
      const messages: SseMessage[] = [];
      const waiters = new Set<() => void>();
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data) messages.push({ event, data: JSON.parse(data), at: performance.now() });
        }
        for (const w of [...waiters]) w();
      });
      ok({
        messages,
        next(fn, what, { past = false, from = past ? 0 : messages.length, timeoutMs = 15_000 } = {}) {
          return new Promise((found, lost) => {
            const timer = setTimeout(() => {
              waiters.delete(check);
              lost(new Error(`no ${what} within ${timeoutMs} ms; got ${messages.map((m) => m.event).join(', ')}`));
            }, timeoutMs);
            function check() {
              const m = messages.slice(from).find(fn);
              if (!m) return;
              clearTimeout(timer);
              waiters.delete(check);
              found(m);
            }
            waiters.add(check);
            check();
          });
        },
        close: () => req.destroy(),
      });
    });
  });
}
