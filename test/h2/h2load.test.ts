/**
 * Issue 10, section 2: HTTP/2 load through the gateway with `h2load`
 * (Debian's nghttp2-client), bounded in count: every request answered 2xx,
 * none failed or errored, over h2 — GETs on many streams per connection,
 * and uploads (each body streamed to the app and its size echoed back).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureTools } from '../../scripts/ensure-tools.mjs';
import { httpUpstream, startGateway, type TestGateway } from '../helpers/net.js';
import { selfSigned, tempDir } from '../tls/tls-helpers.js';

ensureTools([{ check: '/usr/bin/h2load', pkg: 'nghttp2-client' }]);

interface H2loadResult {
  protocol: string | undefined;
  total: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
  output: string;
}

function h2load(args: string[]): Promise<H2loadResult> {
  return new Promise((ok, fail) => {
    const child = spawn('/usr/bin/h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    // Bounded: a run that hangs is killed and reported.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', fail);
    child.on('close', () => {
      clearTimeout(timer);
      const req = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(output);
      const codes = /status codes: (\d+) 2xx/.exec(output);
      if (!req || !codes) return fail(new Error(`h2load printed no summary:\n${output}`));
      ok({
        protocol: /Application protocol: (\S+)/.exec(output)?.[1],
        total: Number(req[1]),
        succeeded: Number(req[2]),
        failed: Number(req[3]),
        errored: Number(req[4]),
        timeout: Number(req[5]),
        status2xx: Number(codes[1]),
        output,
      });
    });
  });
}

describe('h2load through the gateway', { timeout: 120_000 }, () => {
  const tmp = tempDir('porthole-h2load-');
  const pair = selfSigned(tmp.dir, 'gw');
  let app: Awaited<ReturnType<typeof httpUpstream>>;
  let gw: TestGateway;

  before(async () => {
    app = await httpUpstream((req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(req.method === 'POST' ? `got ${n}` : 'x'.repeat(1024));
      });
    });
    gw = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile }, apps: [{ name: 'app', port: app.port }] });
  });
  after(async () => {
    await gw.close();
    await app.close();
    tmp.remove();
  });

  test('2000 GETs on 10 connections, 10 streams each: all 2xx over h2, no failure', async () => {
    const r = await h2load(['-n', '2000', '-c', '10', '-m', '10', `https://127.0.0.1:${gw.port}/app/`]);
    assert.equal(r.protocol, 'h2', r.output);
    assert.equal(r.total, 2000);
    assert.equal(r.succeeded, 2000, r.output);
    assert.equal(r.failed + r.errored + r.timeout, 0, r.output);
    assert.equal(r.status2xx, 2000, r.output);
  });

  test('1000 uploads of 64 KiB: all 2xx, no failure', async () => {
    const body = join(tmp.dir, 'body');
    writeFileSync(body, Buffer.alloc(64 * 1024, 1));
    const r = await h2load(['-n', '1000', '-c', '5', '-m', '4', '-d', body, `https://127.0.0.1:${gw.port}/app/upload`]);
    assert.equal(r.protocol, 'h2', r.output);
    assert.equal(r.succeeded, 1000, r.output);
    assert.equal(r.failed + r.errored + r.timeout, 0, r.output);
    assert.equal(r.status2xx, 1000, r.output);
  });
});
