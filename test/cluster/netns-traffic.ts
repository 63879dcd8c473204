/**
 * A bounded loop of requests for the cluster tests: GETs to each URL in turn
 * (the echo app answers JSON with its pid), until stopped, at most 50 000
 * requests or 120 s. Every answer that is not the app's 200 is a failure,
 * kept with when it happened and what came back.
 */
import { request } from './netns-helpers.js';

export interface TrafficResult {
  ok: number;
  failures: string[];
}

export function runTraffic(urls: readonly string[], opts: { maxRequests?: number; maxMs?: number } = {}): { stop(): Promise<TrafficResult> } {
  const maxRequests = opts.maxRequests ?? 50_000;
  const maxMs = opts.maxMs ?? 120_000;
  const started = performance.now();
  const result: TrafficResult = { ok: 0, failures: [] };
  let stopping = false;
  const loop = (async () => {
    for (let k = 0; !stopping && k < maxRequests && performance.now() - started < maxMs; k++) {
      const url = urls[k % urls.length]!;
      const at = ((performance.now() - started) / 1000).toFixed(2);
      try {
        const r = await request(url, { timeoutMs: 5_000, headers: { accept: 'application/json' } });
        if (r.status === 200 && r.json?.pid) result.ok++;
        else result.failures.push(`${at}s ${url}: ${r.status} ${r.body.slice(0, 200)}`);
      } catch (err) {
        result.failures.push(`${at}s ${url}: ${(err as Error).message}`);
      }
      // Paced a little: the point is requests all along, not load.
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      return result;
    },
  };
}
