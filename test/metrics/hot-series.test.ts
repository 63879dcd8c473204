/**
 * The per-request counter and histogram (src/metrics/hot-series.ts) must
 * render exactly what prom-client's own Counter and Histogram render for the
 * same observations: same lines, same order, same label escaping — the
 * speed-up may not change the page.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../../src/metrics/hot-series.js';

const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

test('HotCounter and HotHistogram render the same page as prom-client\'s Counter and Histogram', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const c1 = new HotCounter({ name: 't_requests_total', help: 'Requests.', labelNames: ['app', 'method', 'status_class'], registry: ours });
  const c2 = new Counter({ name: 't_requests_total', help: 'Requests.', labelNames: ['app', 'method', 'status_class'], registers: [theirs] });
  const h1 = new HotHistogram({ name: 't_seconds', help: 'Durations.', labelNames: ['app'], buckets: BUCKETS, registry: ours });
  const h2 = new Histogram({ name: 't_seconds', help: 'Durations.', labelNames: ['app'], buckets: BUCKETS, registers: [theirs] });
  const u1 = new HotCounter({ name: 't_upgrades_total', help: 'Upgrades.', labelNames: ['app', 'result'], registry: ours });
  const u2 = new Counter({ name: 't_upgrades_total', help: 'Upgrades.', labelNames: ['app', 'result'], registers: [theirs] });

  // Label values that need escaping, the empty app, values on a bucket's bound, past the last, and zero.
  const apps = ['', 'echo', 'we"ird\\app\nname'];
  const methods = ['GET', 'POST', 'DELETE'];
  const classes = ['2xx', '4xx', 'other'];
  const values = [0, 0.001, 0.0010001, 0.05, 0.3, 1, 29.99, 30, 31, 1e6, 0.0004];
  let seed = 7;
  const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let i = 0; i < 5000; i++) {
    const app = apps[next(apps.length)];
    const method = methods[next(methods.length)];
    const sc = classes[next(classes.length)];
    c1.inc(app, method, sc);
    c2.inc({ app, method, status_class: sc });
    const v = i < values.length ? values[i] : next(100_000) / 1000;
    h1.observe(v, app);
    h2.observe({ app }, v);
    if (i % 7 === 0) {
      const result = i % 3 ? 'accepted' : 'PH_ERR_UPSTREAM_REFUSED';
      u1.inc(app, result);
      u2.inc({ app, result });
    }
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());

  // resetMetrics() empties both alike.
  ours.resetMetrics();
  theirs.resetMetrics();
  assert.equal(await ours.metrics(), await theirs.metrics());
});

test('a HotCounter adds a given amount, and a histogram skips a value that is not a number', async () => {
  const r = new Registry();
  const c = new HotCounter({ name: 'n_total', help: 'N.', labelNames: ['app'], registry: r });
  c.inc('a', undefined, undefined, 5);
  c.inc('a');
  const h = new HotHistogram({ name: 'h', help: 'H.', labelNames: ['app'], buckets: [1], registry: r });
  h.observe(Number.NaN, 'a');
  h.observe(0.5, 'a');
  const text = await r.metrics();
  assert.match(text, /^n_total\{app="a"\} 6$/m);
  assert.match(text, /^h_count\{app="a"\} 1$/m);
  assert.match(text, /^h_sum\{app="a"\} 0\.5$/m);
});
