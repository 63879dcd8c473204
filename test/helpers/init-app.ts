/**
 * For the `porthole init` tests: run the real CLI into a temp dir, follow
 * the steps it prints (npm install, `npx porthole apps add …` against a real
 * gateway), and look for the app's processes in /proc.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { AdminGateway } from './admin.js';
import { CLI, runCli } from './cli.js';

export interface Initialized {
  /** The generated app's directory. */
  dir: string;
  stdout: string;
  /** The indented lines under "Next, …" as printed: cd, npm install, the registrations. */
  printed: string[];
  /** The same with the printed way to run the CLI (which depends on where DIR is) written `porthole`. */
  steps: string[];
}

/** How `porthole init` says to run the CLI: `npx porthole`, `porthole` (on PATH), or node and its path. */
const PORTHOLE = /^(npx porthole|porthole|node \S+\/cli\/main\.js)(?= )/;

/** `porthole init ARGS` in `cwd`; asserts exit 0 and returns the directory it printed. */
export async function init(cwd: string, args: string[]): Promise<Initialized> {
  const run = runCli(['init', ...args], { cwd });
  const code = await run.exited;
  assert.equal(code, 0, `porthole init ${args.join(' ')} exited ${code}:\n${run.stderr()}`);
  const out = run.stdout();
  const m = /^Wrote the \S+ template as app "[^"]+" in (.+):$/m.exec(out);
  assert.ok(m, out);
  const next = out.slice(out.indexOf('Next, with "porthole serve" running:'));
  const printed = next.split('\n').slice(1).filter((l) => l.startsWith('  ')).map((l) => l.trim());
  return { dir: m[1], stdout: out, printed, steps: printed.map((l) => l.replace(PORTHOLE, 'porthole')) };
}

/** Runs a command to its end; resolves with its exit code and output. */
export function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<{ code: number | string; out: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`${cmd} ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 120_000} ms:\n${out}`));
    }, opts.timeoutMs ?? 120_000);
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      ok({ code: code ?? signal ?? -1, out });
    });
  });
}

/**
 * Follows the printed steps inside the app's directory, each as printed
 * through `sh -c` (npm's audit and fund notices off), with the gateway's URL
 * and token in the environment (as `porthole apps` reads them). Outside a
 * checkout the printed CLI is `node …/dist/cli/main.js`: this checkout's.
 */
export async function followSteps(app: Initialized, gw: AdminGateway): Promise<void> {
  for (const [i, step] of app.printed.entries()) {
    if (step.startsWith('cd ')) continue;
    if (step !== 'npm install') {
      assert.match(app.steps[i], /^porthole apps add [a-z0-9-]+ --file porthole\.yaml( --start)?$/, 'a step the test knows');
      const cli = PORTHOLE.exec(step)![1];
      assert.ok(cli === 'npx porthole' || cli === 'porthole' || cli === `node ${realpathSync(CLI)}`, `the printed CLI is this checkout's: ${cli}`);
    }
    const r = await run('sh', ['-c', step], { cwd: app.dir, env: { PORTHOLE_URL: gw.url, PORTHOLE_TOKEN: gw.token, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
    assert.equal(r.code, 0, `${step} in ${app.dir}:\n${r.out}`);
  }
}

/** Waits until the app is running and ready; fails with its state and log. */
export async function waitRunning(gw: AdminGateway, name: string, ms: number): Promise<Record<string, any>> {
  const deadline = Date.now() + ms;
  let last: Record<string, any> = {};
  while (Date.now() < deadline) {
    last = (await gw.api('GET', `/_porthole/api/apps/${name}`)).body.app ?? {};
    if (last.state === 'running' && last.ready) return last;
    if (last.state === 'failed') break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const logs = await gw.api('GET', `/_porthole/api/apps/${name}/logs?lines=60`);
  assert.fail(`${name} is not running: ${JSON.stringify(last)}\n${(logs.body.lines ?? []).join('\n')}`);
}

export interface Proc {
  pid: number;
  state: string;
  pgid: number;
  cmdline: string;
}

/** Live (not zombie) processes whose working directory is `dir` (every process a generated app starts runs there). */
export function processesIn(dir: string): Proc[] {
  const found: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      if (readlinkSync(`/proc/${pid}/cwd`) !== dir) continue;
      const p = procInfo(pid);
      if (p && p.state !== 'Z') found.push(p);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Live members of a process group. */
export function groupMembers(pgid: number): Proc[] {
  const found: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const p = procInfo(pid);
    if (p && p.pgid === pgid && p.state !== 'Z') found.push(p);
  }
  return found;
}

function procInfo(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and ')': split after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return { pid, state: f[0], pgid: Number(f[2]), cmdline };
  } catch {
    return undefined;
  }
}

/** Waits (bounded) until `fn` holds; fails with `what`. */
export async function until<T>(what: string, ms: number, fn: () => T | undefined | false | Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** A screenshot into `dir` (and PORTHOLE_INIT_SCREENSHOTS when set, to look at). */
export async function screenshot(page: Page, dir: string, name: string): Promise<string> {
  const file = join(process.env.PORTHOLE_INIT_SCREENSHOTS ?? dir, `init-${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Page errors and failed requests, for an assertion that there are none. */
export function watchPage(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  return problems;
}
