import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { closed, closeServer, listen, openWs, startGateway, waitFor } from '../helpers/net.js';

test('/_porthole/health counts bridged connections with the tunnels', async () => {
  const target = net.createServer((s) => s.pipe(s));
  const port = await listen(target);
  const g = await startGateway({ apps: [{ name: 'vnc', bridge: `127.0.0.1:${port}` }] });
  try {
    const health = async () => (await (await fetch(`${g.url}/_porthole/health`)).json()) as { tunnels: number };
    assert.equal((await health()).tunnels, 0);
    const ws = await openWs(`${g.wsUrl}/vnc/`, ['binary']);
    await waitFor(() => g.gw.bridges.size === 1);
    assert.equal((await health()).tunnels, 1);
    ws.close();
    await closed(ws);
  } finally {
    await g.close();
    await closeServer(target);
  }
});
