/**
 * Issue 8, item 11: the same-origin check ignored the scheme, so a page at
 * `https://host` and one at `http://host` counted as the same origin. The
 * gateway's own scheme is the listener's, or X-Forwarded-Proto when
 * `trust_forwarded` is on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { startGateway, wsUpstream, type TestGateway, type WsUpstream } from '../helpers/net.js';

/** The close a refused upgrade gets; an upgrade that is let through is closed after 1 s and reports `opened`. */
function wsCloseOf(url: string, _p: undefined, options: WebSocket.ClientOptions): Promise<{ code: number; reason: string }> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(url, options);
    const timer = setTimeout(() => {
      ws.terminate();
      ok({ code: -1, reason: 'opened and stayed open: the origin was let through' });
    }, 1000);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      ok({ code, reason: reason.toString() });
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
  });
}

/** 'open' when the upgrade is let through (and stays open), else the close code and reason. */
async function verdict(url: string, origin: string, headers: Record<string, string> = {}): Promise<string> {
  const c = await wsCloseOf(url, undefined, { origin, headers });
  return c.code === -1 ? 'open' : `${c.code} ${c.reason}`;
}

describe('the same-origin check compares the scheme', () => {
  let up: WsUpstream;
  let plain: TestGateway;
  let trusting: TestGateway;
  before(async () => {
    up = await wsUpstream();
    plain = await startGateway({ apps: [{ name: 'a', port: up.port }] });
    trusting = await startGateway({ trust_forwarded: true, apps: [{ name: 'a', port: up.port }] });
  });
  after(async () => {
    await plain.close();
    await trusting.close();
    await up.close();
  });

  test('an http gateway refuses an https page of the same host with 1008 PH_ERR_ORIGIN_REFUSED', async () => {
    const host = `127.0.0.1:${plain.port}`;
    assert.match(await verdict(`${plain.wsUrl}/a/`, `https://${host}`), /^1008 .*https:\/\/127\.0\.0\.1/);
    assert.equal(await verdict(`${plain.wsUrl}/a/`, `http://${host}`), 'open');
  });

  test('X-Forwarded-Proto is believed only with trust_forwarded', async () => {
    const headers = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'app.example' };
    assert.match(await verdict(`${plain.wsUrl}/a/`, 'https://app.example', headers), /^1008 /);
    assert.equal(await verdict(`${trusting.wsUrl}/a/`, 'https://app.example', headers), 'open');
    assert.match(await verdict(`${trusting.wsUrl}/a/`, 'http://app.example', headers), /^1008 /);
  });

  test('a default port in the forwarded host matches an origin without one, and only that port', async () => {
    const h = (host: string) => ({ 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': host });
    assert.equal(await verdict(`${trusting.wsUrl}/a/`, 'https://app.example', h('app.example:443')), 'open');
    assert.equal(await verdict(`${trusting.wsUrl}/a/`, 'https://app.example:443', h('app.example')), 'open');
    assert.match(await verdict(`${trusting.wsUrl}/a/`, 'https://app.example', h('app.example:8443')), /^1008 /);
    // A user-info trick in the host does not make it another host.
    assert.match(await verdict(`${trusting.wsUrl}/a/`, 'https://evil.example', h('app.example:443@evil.example')), /^1008 /);
  });
});
