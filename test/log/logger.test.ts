import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emit } from '../../src/events.js';
import { startLogger } from '../../src/log/logger.js';

test('JSON lines carry the event name, a time and every field', () => {
  const lines: string[] = [];
  const stop = startLogger({ format: 'json', write: (l) => lines.push(l) });
  try {
    emit('request', { gateway: 'g', app: 'a', method: 'GET', path: '/a/x', status: 200, ms: 1.5 });
  } finally {
    stop();
  }
  const e = JSON.parse(lines[0]);
  assert.equal(e.event, 'request');
  assert.equal(e.status, 200);
  assert.match(e.time, /^\d{4}-\d\d-\d\dT/);
});

test('text lines are short and readable: request, refused upgrade with its code, tunnel close', () => {
  const lines: string[] = [];
  const stop = startLogger({ format: 'text', write: (l) => lines.push(l) });
  try {
    emit('request', { gateway: 'g', app: 'a', method: 'GET', path: '/a/x', status: 502, ms: 3, code: 'PH_ERR_UPSTREAM_REFUSED' });
    emit('upgrade', { gateway: 'g', app: 'a', path: '/a/ws', accepted: false, status: 101, code: 'PH_ERR_UPSTREAM_REFUSED', closeCode: 1014, reason: 'a: refused' });
    emit('tunnel.close', { gateway: 'g', app: 'a', path: '/a/ws', ms: 1500, bytesIn: 10, bytesOut: 20, framesIn: 1, framesOut: 2, closeCode: 1000, closedBy: 'client' });
  } finally {
    stop();
  }
  assert.match(lines[0], /^\d\d:\d\d:\d\d\.\d{3} 502 GET \/a\/x a 3ms PH_ERR_UPSTREAM_REFUSED$/);
  assert.match(lines[1], /ws refused \/a\/ws a 101 PH_ERR_UPSTREAM_REFUSED close=1014 \(a: refused\)/);
  assert.match(lines[2], /ws closed \/a\/ws a 1000 by client after 1\.5s in=10B\/1f out=20B\/2f/);
  assert.ok(!lines.some((l) => l.startsWith('{')));
});

test('quietRequests drops request lines only', () => {
  const lines: string[] = [];
  const stop = startLogger({ format: 'json', quietRequests: true, write: (l) => lines.push(l) });
  try {
    emit('request', { gateway: 'g', app: 'a', method: 'GET', path: '/', status: 200, ms: 1 });
    emit('config', { action: 'reloaded', source: 'x.yaml', apps: 1 });
  } finally {
    stop();
  }
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]).event, 'config');
});

test('quietRequests keeps the request lines of failures: a refused or failed request carries a code and is always logged', () => {
  const lines: string[] = [];
  const stop = startLogger({ format: 'json', quietRequests: true, write: (l) => lines.push(l) });
  try {
    emit('request', { gateway: 'g', app: 'a', method: 'GET', path: '/ok', status: 200, ms: 1 });
    emit('request', { gateway: 'g', app: null, method: 'GET', path: '/', status: 421, ms: 0, code: 'PH_ERR_HOST_REFUSED' });
    emit('request', { gateway: 'g', app: 'a', method: 'GET', path: '/x', status: 502, ms: 3, code: 'PH_ERR_UPSTREAM_REFUSED' });
  } finally {
    stop();
  }
  assert.deepEqual(
    lines.map((l) => JSON.parse(l).code),
    ['PH_ERR_HOST_REFUSED', 'PH_ERR_UPSTREAM_REFUSED'],
  );
});

test('secret query values never reach the log: token, access_token, password', () => {
  const lines: string[] = [];
  const stop = startLogger({ format: 'json', write: (l) => lines.push(l) });
  try {
    emit('upgrade', { gateway: 'g', app: 'nb', path: '/nb/api/kernels?token=s3cr3t&session=1', accepted: true, status: 101 });
    emit('request', { gateway: 'g', app: 'nb', method: 'GET', path: '/nb/?access_token=abc&password=pw', status: 200, ms: 1 });
  } finally {
    stop();
  }
  const text = lines.join('\n');
  assert.ok(!/s3cr3t|abc|pw&|=pw/.test(text), text);
  assert.equal(JSON.parse(lines[0]).path, '/nb/api/kernels?token=…&session=1');
});

test('a JSON line is exactly {time, event, …fields} in that order, the time as toISOString() gives it, secret query values redacted', () => {
  const lines: string[] = [];
  const stop = startLogger({ format: 'json', write: (l) => lines.push(l) });
  const before = Date.now();
  try {
    emit('request', { gateway: 'g', app: 'a', method: 'GET', path: '/a/x?token=s3cret&page=2', status: 200, ms: 1.5, code: undefined });
    emit('gateway', { gateway: 'g', action: 'closed' });
  } finally {
    stop();
  }
  const after = Date.now();
  const first = JSON.parse(lines[0]);
  assert.match(first.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(new Date(first.time).toISOString(), first.time);
  const at = Date.parse(first.time);
  assert.ok(at >= before && at <= after, `${first.time} not between ${before} and ${after}`);
  assert.equal(lines[0], JSON.stringify({ time: first.time, event: 'request', gateway: 'g', app: 'a', method: 'GET', path: '/a/x?token=…&page=2', status: 200, ms: 1.5 }));
  const second = JSON.parse(lines[1]);
  assert.equal(lines[1], JSON.stringify({ time: second.time, event: 'gateway', gateway: 'g', action: 'closed' }));
});

test('JSON times keep their milliseconds zero-padded (…:05.007Z), as toISOString() writes them', (t) => {
  const lines: string[] = [];
  const stop = startLogger({ format: 'json', write: (l) => lines.push(l) });
  t.mock.method(Date, 'now', () => Date.UTC(2026, 0, 2, 3, 4, 5, 7));
  try {
    emit('gateway', { gateway: 'g', action: 'closed' });
  } finally {
    t.mock.restoreAll();
    stop();
  }
  assert.equal(JSON.parse(lines[0]).time, '2026-01-02T03:04:05.007Z');
});

test('lines logged to stdout just before process.exit() are written, every one, in order', async () => {
  // A child that logs 3000 events and exits in the same tick: batched lines still pending are written at exit.
  const { execFile } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const logger = fileURLToPath(new URL('../../src/log/logger.ts', import.meta.url));
  const events = fileURLToPath(new URL('../../src/events.ts', import.meta.url));
  const script = `
    const { startLogger } = await import(${JSON.stringify(logger)});
    const { emit } = await import(${JSON.stringify(events)});
    startLogger({ format: 'json' });
    for (let i = 1; i <= 3000; i++) emit('request', { gateway: 'g', app: 'a', method: 'GET', path: '/a/' + i, status: 200, ms: 1 });
    process.exit(0);
  `;
  const out = await new Promise<string>((ok, fail) =>
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => (err ? fail(err) : ok(stdout))),
  );
  const paths = out.trim().split('\n').map((l) => (JSON.parse(l) as { path: string }).path);
  assert.equal(paths.length, 3000);
  paths.forEach((p, i) => assert.equal(p, `/a/${i + 1}`));
});
