#!/usr/bin/env node
// The test command: installs the real peers the tests use, type-checks
// everything, builds the CLI, then runs every test file with Node's runner.
//   npm test                      every test
//   npm test -- test/gateway      one folder (or one file)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTools } from './ensure-tools.mjs';

const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

ensureTools();
run('npx', ['tsc', '-p', 'tsconfig.json']);
run('npx', ['tsc', '-p', 'tsconfig.test.json', '--noEmit']);

const find = (p) =>
  statSync(p).isDirectory()
    ? readdirSync(p).sort().flatMap((f) => find(join(p, f)))
    : p.endsWith('.test.ts') ? [p] : [];
const args = process.argv.slice(2);
const files = (args.length ? args : ['test']).flatMap(find);
if (!files.length) {
  console.error('no test files found');
  process.exit(1);
}
run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files]);
