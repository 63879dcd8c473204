import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closed, nextMessage, openWs, startGateway } from '../helpers/net.js';
import { fixture, startPython } from '../helpers/python.js';

// Seed 003: a server that compares Origin with Host (Tornado, Jupyter, Streamlit behind ngrok)
// refuses a proxied WebSocket whose Host was rewritten but whose Origin was not.
test('a Tornado server checking Origin against Host fails with upstream_origin keep and works with upstream_origin upstream', async () => {
  const tornado = await startPython(fixture('tornado_echo.py'));
  const target = `http://127.0.0.1:${tornado.port}`;
  const g = await startGateway({
    apps: [
      { name: 'kept', url: target }, // a remote-style upstream: Host becomes the upstream's own
      { name: 'fixed', url: target, upstream_origin: 'upstream' },
    ],
  });
  const origin = `http://127.0.0.1:${g.port}`; // the page's own origin, as a browser sends it
  try {
    await assert.rejects(openWs(`${g.wsUrl}/kept/ws`, undefined, { origin }), (err: { status?: number; body?: string }) => {
      assert.equal(err.status, 403, 'Tornado\'s own answer is relayed');
      assert.match(err.body ?? '', /Cross origin websockets not allowed/);
      return true;
    });
    const ws = await openWs(`${g.wsUrl}/fixed/ws`, undefined, { origin });
    ws.send('through tornado');
    assert.equal((await nextMessage(ws)).data.toString(), 'through tornado');
    ws.close();
    await closed(ws);
  } finally {
    await g.close();
    await tornado.stop();
  }
});

test('upstream_host and upstream_origin literals are sent as given', async () => {
  const tornado = await startPython(fixture('tornado_echo.py'));
  const g = await startGateway({
    apps: [{ name: 'lit', url: `http://127.0.0.1:${tornado.port}`, upstream_host: 'agent.example.test', upstream_origin: 'https://agent.example.test' }],
  });
  try {
    // Host and Origin agree (both agent.example.test), so Tornado accepts.
    const ws = await openWs(`${g.wsUrl}/lit/ws`, undefined, { origin: `http://127.0.0.1:${g.port}` });
    ws.send('literal');
    assert.equal((await nextMessage(ws)).data.toString(), 'literal');
    ws.close();
    await closed(ws);
  } finally {
    await g.close();
    await tornado.stop();
  }
});
