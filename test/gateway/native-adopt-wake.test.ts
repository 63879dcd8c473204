/**
 * The JavaScript thread wakes the native tunnel's thread for each command
 * (an adoption with bytes to deliver, a close, a destroy), one eventfd write
 * while a wake is unread. The thread once cleared that "unread" flag before
 * reading the eventfd: a wake written in between was read with the flag still
 * set, the flag stayed set with nothing left to read, and every later command
 * waited for some socket event to stir the thread. Under a handshake load
 * every client then waited on its 101 and the proxy stalled within a second.
 * Here a minimal proxy (test/fixtures/gateway/adopt-proxy.ts) hands every
 * upgrade over with its 101 still to deliver, as fast as it can, for 4 s, with
 * the benchmark's upstream and client: all handshakes must complete.
 * Native engine only (the fixture uses the addon).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeBinding } from '../../src/gateway/native-binding.js';

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));

function start(args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  return spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
}

async function firstLine(p: ChildProcess): Promise<string> {
  let out = '';
  for await (const chunk of p.stdout!) {
    out += chunk;
    if (out.includes('\n')) return out.split('\n')[0];
  }
  throw new Error('no output');
}

test('a proxy handing every upgrade to the native tunnel with its 101 to deliver completes every handshake under load', async (t) => {
  const { binding, error } = nativeBinding();
  if (!binding) {
    // Only where the addon cannot exist; CI requires it (tunnel-engine.test.ts).
    assert.ok(process.env.CI !== 'true', `the native addon is required in CI: ${error}`);
    t.diagnostic(`no native addon here (${error}): nothing to test`);
    return;
  }
  const up = start([root('bench/peers/upstream.mjs')], { ...process.env, PORT: '0' });
  t.after(() => up.kill());
  const upPort = Number(await firstLine(up));
  assert.ok(upPort > 0, 'the upstream prints its port');
  const proxy = start(['--import', 'tsx', root('test/fixtures/gateway/adopt-proxy.ts'), String(upPort)]);
  t.after(() => proxy.kill());
  const port = Number(await firstLine(proxy));
  assert.ok(port > 0, 'the proxy prints its port');

  const client = start([root('bench/clients/handshakes.mjs'), `ws://127.0.0.1:${port}/`, '32', '4']);
  t.after(() => client.kill());
  let out = '';
  client.stdout!.on('data', (d) => (out += d));
  // 4 s of load; a stalled run never ends (each client waits on its 101 for good).
  const timer = setTimeout(() => client.kill(), 20_000);
  const [code] = await once(client, 'exit');
  clearTimeout(timer);
  assert.equal(code, 0, `the handshake client stalled (killed after 20 s): ${out}`);
  const r = JSON.parse(out) as { done: number; errors: number };
  assert.equal(r.errors, 0);
  assert.ok(r.done > 1000, `handshakes completed: ${r.done}`);
});
