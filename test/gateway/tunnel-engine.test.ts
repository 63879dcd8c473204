/**
 * Which engine moves tunnels' bytes: the native addon (built by npm install,
 * required in CI) or JavaScript, chosen by `tunnel_engine` and PORTHOLE_TUNNEL,
 * and said in `/_porthole/health` and the `gateway listening` event.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveTunnelEngine } from '../../src/gateway/native-binding.js';
import { NativeTunnel } from '../../src/gateway/native-tunnel.js';
import { Tunnel } from '../../src/gateway/tunnel.js';
import { runCli } from '../helpers/cli.js';
import { selfSigned, tempDir } from '../tls/tls-helpers.js';
import { closed, collect, nextMessage, openWs, startGateway, waitFor, wsUpstream } from '../helpers/net.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const forced = (process.env.PORTHOLE_TUNNEL || undefined) as 'js' | 'native' | undefined;

test('health and the listening event say which engine is in force; with CI=true it is native', async (t) => {
  const listening = collect('gateway');
  t.after(() => listening.stop());
  const gw = await startGateway({});
  t.after(() => gw.close());
  const health = (await (await fetch(`${gw.url}/_porthole/health`)).json()) as { tunnelEngine: string };
  assert.equal(health.tunnelEngine, gw.gw.tunnelEngine);
  assert.equal(health.tunnelEngine, resolveTunnelEngine('auto').engine);
  if (process.env.CI === 'true' && forced !== 'js') assert.equal(health.tunnelEngine, 'native', 'CI requires the native tunnel (npm install builds it)');
  if (forced) assert.equal(health.tunnelEngine, forced);
  const e = listening.events.find((ev) => ev.gateway === gw.gw.id && ev.action === 'listening');
  assert.equal(e?.tunnelEngine, health.tunnelEngine);
});

test('a plain WebSocket goes to the engine in force; tunnel_engine: js keeps JavaScript unless PORTHOLE_TUNNEL says otherwise', async (t) => {
  const up = await wsUpstream();
  t.after(() => up.close());
  for (const setting of ['auto', 'js'] as const) {
    const gw = await startGateway({ tunnel_engine: setting, apps: [{ name: 'echo', port: up.port }] });
    const expected = forced ?? (setting === 'js' ? 'js' : resolveTunnelEngine('auto').engine);
    assert.equal(gw.gw.tunnelEngine, expected, setting);
    const ws = await openWs(`${gw.wsUrl}/echo/`);
    ws.send('through');
    assert.equal((await nextMessage(ws)).data.toString(), 'through');
    const [tunnel] = gw.gw.tunnels;
    assert.ok(expected === 'native' ? tunnel instanceof NativeTunnel : tunnel instanceof Tunnel, `${setting}: a ${expected} tunnel`);
    ws.close(1000);
    await closed(ws);
    await waitFor(() => gw.gw.tunnels.size === 0, 5000, 'the tunnel to end');
    await gw.close();
  }
});

test('PORTHOLE_TUNNEL other than js, native or auto is refused with PH_ERR_NATIVE_TUNNEL', () => {
  assert.throws(() => resolveTunnelEngine('auto', { PORTHOLE_TUNNEL: 'fast' }), (err: Error & { code?: string }) => err.code === 'PH_ERR_NATIVE_TUNNEL' && /PORTHOLE_TUNNEL=fast/.test(err.message));
});

test('without the addon: tunnel_engine: native is a config error (PH_ERR_NATIVE_TUNNEL) saying why; auto falls back to js and says why', (t) => {
  // A copy of the built package without build/: what an install whose compile failed looks like.
  const dir = mkdtempSync(join(tmpdir(), 'porthole-noaddon-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  const script = `
    import { createGateway } from './dist/index.js';
    const out = {};
    try { createGateway({ tunnel_engine: 'native' }); } catch (e) { out.native = { code: e.code, message: e.message }; }
    const gw = createGateway({});
    out.auto = { engine: gw.tunnelEngine, why: gw.tunnelEngineWhy };
    console.log(JSON.stringify(out));`;
  const env = { ...process.env };
  delete env.PORTHOLE_TUNNEL;
  const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, env, encoding: 'utf8' })) as {
    native?: { code: string; message: string };
    auto: { engine: string; why: string };
  };
  assert.equal(out.native?.code, 'PH_ERR_NATIVE_TUNNEL');
  assert.match(out.native!.message, /tunnel_engine: native, but the native tunnel cannot load: .*porthole_tunnel\.node is not built/);
  assert.equal(out.auto.engine, 'js');
  assert.match(out.auto.why, /is not built/);
});

test('porthole doctor says which engine tunnels of this install use', async (t) => {
  const up = await wsUpstream();
  t.after(() => up.close());
  const expected = resolveTunnelEngine('auto').engine;
  const text = runCli(['doctor', `${up.url}/`]);
  assert.equal(await text.exited, 0, text.stdout());
  assert.match(text.stdout(), new RegExp(`^this porthole's WebSocket tunnels: ${expected} \\(.+\\)$`, 'm'));
  const json = runCli(['doctor', `${up.url}/`, '--json']);
  assert.equal(await json.exited, 0, json.stdout());
  assert.equal((JSON.parse(json.stdout()) as { tunnelEngine: string }).tunnelEngine, expected);
});

test('a wss:// client keeps the JavaScript tunnel (TLS has no fd carrying the WebSocket bytes); ws:// on the same port gets the engine in force', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.remove());
  const pair = selfSigned(tmp.dir, 'gw');
  const up = await wsUpstream();
  t.after(() => up.close());
  const gw = await startGateway({ tls: { cert: pair.certFile, key: pair.keyFile, redirect_http: false }, apps: [{ name: 'echo', port: up.port }] });
  t.after(() => gw.close());
  for (const [url, kind] of [
    [`wss://localhost:${gw.port}/echo/`, 'js'],
    [`ws://127.0.0.1:${gw.port}/echo/`, gw.gw.tunnelEngine],
  ] as const) {
    const ws = await openWs(url, undefined, { ca: pair.cert });
    ws.send('over tls?');
    assert.equal((await nextMessage(ws)).data.toString(), 'over tls?');
    const [tunnel] = gw.gw.tunnels;
    assert.ok(kind === 'native' ? tunnel instanceof NativeTunnel : tunnel instanceof Tunnel, `${url}: a ${kind} tunnel`);
    ws.close(1000);
    await closed(ws);
    await waitFor(() => gw.gw.tunnels.size === 0, 5000, 'the tunnel to end');
  }
});
