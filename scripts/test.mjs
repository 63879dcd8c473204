#!/usr/bin/env node
// The test command: installs the real peers the tests use, type-checks
// everything, builds the CLI, then runs every test file with Node's runner.
// The tunnel and bridge tests run twice: with the engine in force (native when
// the addon is built, as npm install does) and again with PORTHOLE_TUNNEL=js, so
// both data paths pass the same suite; the WebSocket proxying tests run a third time through
// Node's own handshake path (PORTHOLE_FRONT=node) rather than the front.
//   npm test                      every test
//   npm test -- test/gateway      one folder (or one file)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTools } from './ensure-tools.mjs';

const run = (cmd, args, env = process.env) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

// Two test files at a time (Node's default is one less than the cores: one, on two): most
// files wait on timeouts, children and peers more than they compute, so the run takes about
// half the time. Every file is written to run beside any other (port 0, its own directories,
// markers, X displays and namespaces). PORTHOLE_TEST_CONCURRENCY=1 runs them one after another.
const concurrency = process.env.PORTHOLE_TEST_CONCURRENCY?.trim() || '2';
if (!/^[1-9][0-9]*$/.test(concurrency)) {
  console.error(`npm test: PORTHOLE_TEST_CONCURRENCY=${concurrency}: expected how many test files run at a time, a whole number from 1`);
  process.exit(2);
}

ensureTools();
run('npx', ['tsc', '-p', 'tsconfig.json']);
run('npx', ['tsc', '-p', 'tsconfig.test.json', '--noEmit']);

const find = (p) =>
  statSync(p).isDirectory()
    ? readdirSync(p).sort().flatMap((f) => find(join(p, f)))
    : p.endsWith('.test.ts') ? [p] : [];
const args = process.argv.slice(2);
// A test file that leaves a socket or timer open after its last test would keep
// its process, and so the whole run, alive forever: --test-force-exit ends each
// file once its tests are done, and --test-timeout (which Node applies to each
// file as a whole) turns a file stuck for 20 minutes into one failure that names it.
// Two files at a time (concurrency, above).
const RUNNER = ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-force-exit', '--test-timeout=1200000', `--test-concurrency=${concurrency}`];
const files = (args.length ? args : ['test']).flatMap(find);
if (!files.length) {
  console.error('no test files found');
  process.exit(1);
}
run(process.execPath, [...RUNNER, ...files]);

// Every test that opens a tunnel and ends it (WebSocket proxying, drain, idle close, close codes),
// and the bridge's that move bytes (it has a native and a JavaScript engine too).
const TUNNEL_TESTS = /^test\/(gateway\/(websocket-[^/]*|tunnel-[^/]*|native-[^/]*|serve-lifecycle)|bridge\/bridge-(wire|app|backpressure|novnc|cli|fd-exhaustion|native-attack|fail-close|target-errors|drain))\.test\.ts$/;
const tunnelFiles = files.filter((f) => TUNNEL_TESTS.test(f.split('\\').join('/')));
if (tunnelFiles.length && process.env.PORTHOLE_TUNNEL !== 'js') {
  console.log(`\n# the tunnel tests again on the JavaScript tunnel (PORTHOLE_TUNNEL=js): ${tunnelFiles.length} files`);
  run(process.execPath, [...RUNNER, ...tunnelFiles], { ...process.env, PORTHOLE_TUNNEL: 'js' });
}

// The WebSocket proxying tests once more with every handshake through Node's own path
// (PORTHOLE_FRONT=node; the front takes them by default, docs/configuration.md): every outcome
// must be the same through both.
const FRONT_TESTS = /^test\/gateway\/(websocket-[^/]*|tunnel-[^/]*|upstream-upgrade|serve-lifecycle)\.test\.ts$/;
const frontFiles = files.filter((f) => FRONT_TESTS.test(f.split('\\').join('/')));
if (frontFiles.length && process.env.PORTHOLE_TUNNEL !== 'js' && process.env.PORTHOLE_FRONT !== 'node') {
  console.log(`\n# the WebSocket tests again through Node's own handshake path (PORTHOLE_FRONT=node): ${frontFiles.length} files`);
  run(process.execPath, [...RUNNER, ...frontFiles], { ...process.env, PORTHOLE_FRONT: 'node' });
}
