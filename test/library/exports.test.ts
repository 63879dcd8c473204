import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as porthole from 'porthole';

test('the package exports the gateway, its config and errors, and the toolkit — through the exports map only', async () => {
  for (const name of ['createGateway', 'Gateway', 'createServer', 'ServerStartError', 'parseConfig', 'parseApp', 'loadConfigFile', 'subscribe', 'startLogger', 'startEchoServer', 'runBench', 'runDoctor', 'startBridgeServer', 'describeCloseCode', 'ConfigError', 'PortholeError']) {
    assert.equal(typeof (porthole as Record<string, unknown>)[name], 'function', name);
  }
  assert.match(porthole.describeCloseCode(1006), /abnormal/i);
  // Internals stay internal.
  await assert.rejects(import('porthole/dist/gateway/tunnel.js' as string), /ERR_PACKAGE_PATH_NOT_EXPORTED|not exported|not defined by "exports"/i);
  // The toolkit works from the package: an echo server, measured by bench.
  const echo = await porthole.startEchoServer({ port: 0 });
  try {
    const r = await porthole.runBench({ url: echo.url, connections: 2, messagesPerConnection: 50, size: 64 });
    assert.equal(r.messages.received, 100);
    assert.equal(r.errors.total, 0);
  } finally {
    await echo.close();
  }
});
