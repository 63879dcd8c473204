// `porthole bridge --web` logs one line per connection, as its help and the
// README promise, not one per static file (issue 8, new-user item 6);
// --log-requests turns the file lines on.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { logEvents, startBridgeCli } from '../fixtures/bridge/bridge-cli.js';
import { sleep } from '../helpers/net.js';

const WEB = fileURLToPath(new URL('../fixtures/bridge/web', import.meta.url));
const FILES = ['/', '/app.js', '/style.css', '/logo.svg', '/pixel.png', '/data.json'];

for (const logRequests of [false, true]) {
  test(`--web ${logRequests ? 'with --log-requests logs a line per file' : 'logs no line per static file'}`, async (t) => {
    const cli = await startBridgeCli(['127.0.0.1:0', '127.0.0.1:9', '--web', WEB, ...(logRequests ? ['--log-requests'] : [])]);
    t.after(() => cli.stop());
    for (const f of FILES) assert.equal((await fetch(`${cli.url}${f}`)).status, 200, f);
    await sleep(200);
    const requests = logEvents(cli).filter((e) => e.event === 'request');
    assert.equal(requests.length, logRequests ? FILES.length : 0, cli.stderr());
  });
}
