// A registration the supervisor cannot take (no free port) is not left
// stored: it would come back at every restart half registered (issue 8).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AppRegistry } from '../../src/admin/registry.js';
import { Supervisor } from '../../src/apps/supervisor.js';
import { parseConfig } from '../../src/config/schema.js';
import { createGateway } from '../../src/gateway/gateway.js';
import { FileStore } from '../../src/store/file-store.js';
import { closeServer, listen } from '../helpers/net.js';

test('a new app that gets no port is refused and not stored; the registry takes the next one', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-rollback-'));
  const busy = net.createServer();
  const port = await listen(busy); // the only port of the range, taken
  const config = parseConfig({});
  const gateway = createGateway(config);
  const supervisor = new Supervisor({ dataDir, portRange: [port, port] });
  const store = new FileStore(dataDir);
  const registry = new AppRegistry(gateway, supervisor, store, config);
  t.after(async () => {
    await supervisor.stopAll();
    await closeServer(busy);
    rmSync(dataDir, { recursive: true, force: true });
  });
  await registry.init();
  await assert.rejects(registry.put({ name: 'noport', cmd: 'sleep 30' }), /no free port/);
  assert.deepEqual(await store.load(), []);
  assert.throws(() => registry.view('noport'), { code: 'PH_ERR_APP_UNKNOWN' });
  const ok = await registry.put({ name: 'fixed', cmd: 'sleep 30', port: 9 });
  assert.equal(ok.state, 'stopped');
  assert.deepEqual((await store.load()).map((a) => a.name), ['fixed']);
});
