#!/usr/bin/env node
// Builds the optional native tunnel (binding.gyp, native/) with the node-gyp
// that ships with npm, offline against the headers of the Node that runs this.
// A failed build prints one warning and leaves the JavaScript tunnel in use,
// except in CI (CI=true), where the native path is required and a failure fails.
// Run by `npm install` (the `install` script); `node scripts/build-native.mjs --force` rebuilds.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.env.CI === 'true';

function fail(why) {
  if (strict) {
    console.error(`porthole: the native tunnel did not build (${why}); CI=true requires it`);
    process.exit(1);
  }
  console.warn(`porthole: native tunnel not built (${why}); WebSockets use the JavaScript tunnel (docs/development.md, "The native tunnel")`);
  process.exit(0);
}

if (process.platform !== 'linux') fail(`${process.platform} is not Linux`);

// Up to date (N-API: one build serves every Node version): nothing to do. `npx porthole` runs this
// script again for every fresh npx cache, sometimes from several processes at once; a rebuild
// would delete the addon under the feet of gateways that are starting.
const built = join(root, 'build', 'Release', 'porthole_tunnel.node');
const sources = [join(root, 'binding.gyp'), ...readdirSync(join(root, 'native')).map((f) => join(root, 'native', f))];
if (!process.argv.includes('--force') && existsSync(built) && sources.every((f) => statSync(f).mtimeMs <= statSync(built).mtimeMs)) process.exit(0);

// node-gyp comes with npm: found next to npm's own CLI, or through the npm that runs this script.
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) candidates.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package: the npm copies above are the usual place
  }
  return candidates.find((p) => existsSync(p));
}

const gyp = findNodeGyp();
if (!gyp) fail('node-gyp not found (it ships with npm)');

// Offline: Node's own headers (an install prefix has include/node) instead of a download.
const prefix = process.env.npm_config_nodedir || join(dirname(process.execPath), '..');
const args = [gyp, 'rebuild', '--silent'];
if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (r.status !== 0) {
  const lines = (r.stderr ?? '').split('\n').filter((l) => /error/i.test(l));
  fail(lines.slice(0, 3).join(' | ') || `node-gyp exited with ${r.status ?? r.signal}`);
}
if (!existsSync(built)) fail('node-gyp succeeded but build/Release/porthole_tunnel.node is missing');
