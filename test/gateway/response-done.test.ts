/**
 * onResponseDone: every part of the gateway that waits for a response to be
 * over (the in-flight count, the log line, cancelling the upstream request)
 * is called once, in order, whatever ends the response; a cancelled wait is
 * not called; and the response carries one `close` listener for all of them
 * (one per caller was a visible share of a small request's cost).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { onResponseDone } from '../../src/gateway/response-done.js';

async function serverWith(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((ok) => (server.closeAllConnections(), server.close(() => ok()))) };
}

test('three waits on one response: one close listener, each called once and in order, a cancelled one never', async (t) => {
  const calls: string[] = [];
  let listeners = -1;
  const done = new Promise<void>((resolve) => {
    void serverWith((_req, res) => {
      const before = res.listenerCount('close');
      onResponseDone(res, () => calls.push('first'));
      const cancel = onResponseDone(res, () => calls.push('cancelled'));
      onResponseDone(res, () => {
        calls.push('third');
        resolve();
      });
      cancel();
      listeners = res.listenerCount('close') - before;
      res.end('ok');
    }).then((s) => {
      t.after(s.close);
      return fetch(s.url).then((r) => r.text());
    });
  });
  await done;
  assert.equal(listeners, 1);
  assert.deepEqual(calls, ['first', 'third']);
});

test('a wait asked for after the response is over is called when its connection closes', async (t) => {
  let late!: () => void;
  const calledLate = new Promise<void>((ok) => (late = ok));
  const s = await serverWith((_req, res) => {
    onResponseDone(res, () => {
      // The response is over; this second wait can only end with the connection.
      onResponseDone(res, late);
      res.socket?.destroy();
    });
    res.end('ok');
  });
  t.after(s.close);
  assert.equal(await (await fetch(s.url)).text(), 'ok');
  await calledLate;
});
