import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { probeOnce } from '../../src/apps/readiness.js';
import { startAdmin } from '../helpers/admin.js';
import { closed, nextMessage, openWs } from '../helpers/net.js';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', () => ok()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((ok) => s.close(ok));
  return port;
}

test('readiness of a bridged app waits for its bridge target to accept', async () => {
  const port = await freePort();
  assert.equal((await probeOnce({ tcp: [{ host: '127.0.0.1', port }] })).ok, false);
  const s = net.createServer((c) => c.end());
  await new Promise<void>((ok) => s.listen(port, '127.0.0.1', () => ok()));
  try {
    assert.equal((await probeOnce({ tcp: [{ host: '127.0.0.1', port }] })).ok, true);
  } finally {
    await new Promise((ok) => s.close(ok));
  }
});

test('a supervised bridge-only app (a TCP service the gateway bridges to) gets no $PORT and is ready when its target answers', async () => {
  const gw = await startAdmin();
  try {
    const target = await freePort();
    // The app is a TCP echo service on the bridge target, started after a delay.
    const cmd = `${process.execPath} -e "setTimeout(() => require('net').createServer((s) => s.pipe(s)).listen(${target}, '127.0.0.1'), 700)"`;
    const reg = await gw.webapp({ action: 'register', name: 'tcp-echo', cmd, bridge: `127.0.0.1:${target}` });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    assert.equal(reg.body.app.port, undefined, 'no HTTP port allocated');
    await gw.webapp({ action: 'start', name: 'tcp-echo' });
    // The upgrade is held while the app starts, then bridged.
    const ws = await openWs(`ws://127.0.0.1:${gw.port}/tcp-echo/`, ['binary']);
    ws.send(Buffer.from('through the bridge'));
    assert.equal((await nextMessage(ws)).data.toString(), 'through the bridge');
    assert.equal((await gw.webapp({ action: 'status', name: 'tcp-echo' })).body.app.state, 'running');
    ws.close();
    await closed(ws);
  } finally {
    await gw.cleanup();
  }
});
