#!/usr/bin/env node
// `npm run reliability`: the attack suite (test/reliability/) at full size.
// Builds, runs each suite file on its own with PORTHOLE_RELIABILITY=full, then
// prints the figures every suite recorded as a Markdown table (the one in
// RELIABILITY.md).
//   npm run reliability                        every suite
//   npm run reliability -- fuzz many-tunnels   suites whose file name contains one of the words
//   npm run reliability -- --out figures.md    also write the table to a file
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { ensureTools } from './ensure-tools.mjs';

const args = process.argv.slice(2);
let outFile;
const words = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--out') outFile = args[++i];
  else words.push(args[i]);
}

const run = (cmd, argv, env) => spawnSync(cmd, argv, { stdio: 'inherit', env: { ...process.env, ...env } }).status;

ensureTools();
for (const [cmd, argv] of [
  ['npx', ['tsc', '-p', 'tsconfig.json']],
  ['npx', ['tsc', '-p', 'tsconfig.test.json', '--noEmit']],
  ['chmod', ['+x', 'dist/cli/main.js']],
]) {
  if (run(cmd, argv) !== 0) process.exit(1);
}

const dir = 'test/reliability';
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => words.length === 0 || words.some((w) => f.includes(w)))
  .sort()
  .map((f) => join(dir, f));
if (!files.length) {
  console.error('no reliability suite matches');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'porthole-reliability-'));
const out = join(work, 'figures.jsonl');
const results = [];
const started = Date.now();
for (const file of files) {
  console.log(`\n## ${file} (full size)\n`);
  const t0 = Date.now();
  const before = existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean).length : 0;
  const status = run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', file], {
    PORTHOLE_RELIABILITY: 'full',
    PORTHOLE_RELIABILITY_OUT: out,
  });
  const after = existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean).length : 0;
  results.push({ file, ok: status === 0, seconds: (Date.now() - t0) / 1000, recorded: after - before });
}

const figures = existsSync(out)
  ? readFileSync(out, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
  : [];
rmSync(work, { recursive: true, force: true });

const cell = (v) => String(v ?? '').replace(/\|/g, '\\|');
const arrow = (a, b, unit = '') => (a === undefined && b === undefined ? '–' : `${a ?? '?'}${unit} → ${b ?? '?'}${unit}`);
const lines = [
  '| suite | cases tried | failures | crashes | gateway fds before → after | gateway RSS before → after | notes |',
  '|---|---:|---:|---:|---|---|---|',
  ...figures.map((f) => `| ${cell(f.suite)} | ${f.cases} | ${f.failures} | ${f.crashes} | ${arrow(f.fdBefore, f.fdAfter)} | ${arrow(f.rssBeforeMiB, f.rssAfterMiB, ' MiB')} | ${cell(f.note)} |`),
  ...results.filter((r) => r.recorded === 0).map((r) => `| ${cell(r.file)} | – | ${r.ok ? 0 : 1} | – | – | – | ${r.ok ? 'passed, recorded no figures' : 'FAILED before recording figures'} |`),
];
const summary = [
  `Run ${new Date(started).toISOString()}, ${((Date.now() - started) / 60000).toFixed(1)} min; Node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model.trim()}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB.`,
  '',
  ...lines,
  '',
  ...results.map((r) => `- ${r.file}: ${r.ok ? 'passed' : 'FAILED'} in ${r.seconds.toFixed(0)} s`),
].join('\n');
console.log(`\n# Reliability figures\n\n${summary}\n`);
if (outFile) writeFileSync(outFile, `${summary}\n`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
