// Issue 8, item 2: an app is run as the attacker. It reads the environment of
// every ancestor (/proc/$PPID/environ and up), tries the token at ../../token
// and the other paths relative to its cwd an old layout put it at, and — when
// it runs as another user than the gateway — reads every file of the data
// directory it can. Nothing secret may come back: not the gateway's
// environment (PORTHOLE_TOKEN, cloud keys), not the admin token, not another
// app's env from the registry.
//
// Needs root (CI runs as root): the gateway and its apps run as `nobody`.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test, type TestContext } from 'node:test';
import { readToken } from '../../src/admin/token.js';
import { CLI } from '../helpers/cli.js';
import { record } from './harness.js';

const ATTACKER = fileURLToPath(new URL('../fixtures/apps/attacker.sh', import.meta.url));
const NOBODY = 65534;
/** Every case runs a gateway or an app as nobody: root only (CI runs as root, where it must run). */
const needsRoot = { skip: !process.env.CI && process.getuid?.() !== 0 && 'needs root (in CI it must run)' };

interface Gateway {
  child: ChildProcess;
  url: string;
  dataDir: string;
  token: string;
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

/** Secrets the gateway is started with, as an operator's shell would pass them. */
/**
 * nobody runs the built CLI and the attacker script from this checkout, so it
 * must be able to pass through the checkout's directories. A checkout in a
 * `mktemp -d` folder (mode 0700) is not: for the length of this file, each
 * ancestor gets the traverse bit for others (never read), then its mode back.
 */
const loosened: { dir: string; mode: number }[] = [];
before(() => {
  if (process.getuid?.() !== 0) return;
  for (let dir = fileURLToPath(new URL('../../', import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const mode = statSync(dir).mode & 0o7777;
    if (mode & 0o001) continue;
    loosened.push({ dir, mode });
    chmodSync(dir, mode | 0o001);
  }
});
after(() => {
  for (const { dir, mode } of loosened) chmodSync(dir, mode);
});

function secretEnv(): Record<string, string> {
  const s = () => randomBytes(18).toString('hex');
  return { PORTHOLE_TOKEN: `ptok-${s()}`, AWS_SECRET_ACCESS_KEY: `aws-${s()}`, OPENAI_API_KEY: `sk-${s()}` };
}

async function startGateway(t: TestContext, opts: { env: Record<string, string>; asNobody?: boolean; config?: string }): Promise<Gateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'porthole-secrets-'));
  const args = [CLI, 'serve', '--listen', '127.0.0.1:0', '--data', join(dataDir, 'data'), '--log-format', 'json'];
  if (opts.config !== undefined) {
    writeFileSync(join(dataDir, 'porthole.yaml'), opts.config);
    args.push('--config', join(dataDir, 'porthole.yaml'));
  }
  if (opts.asNobody) chownSync(dataDir, NOBODY, NOBODY);
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...opts.env },
    cwd: dataDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.asNobody ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  let err = '';
  child.stdout!.resume();
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${err}`)), 15_000);
    child.stderr!.on('data', () => {
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}:\n${err}`)));
  });
  const token = readToken(join(dataDir, 'data'))!;
  assert.ok(token, 'the gateway wrote its token');
  return {
    child,
    url,
    dataDir: join(dataDir, 'data'),
    token,
    api: async (method, path, body) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    },
  };
}

/** Registers and starts the attacker; resolves with its report. */
async function attack(gw: Gateway, name: string, fields: Record<string, unknown> = {}, search = false): Promise<string> {
  const reg = await gw.api('PUT', `/_porthole/api/apps/${name}`, { cmd: `SEARCH=${search ? 1 : 0} exec sh ${ATTACKER}`, port: 9, stop_timeout: 2000, ...fields });
  assert.equal(reg.status, 200, JSON.stringify(reg.body));
  const start = await gw.api('POST', `/_porthole/api/apps/${name}/start`);
  assert.equal(start.status, 200, JSON.stringify(start.body));
  const file = join(gw.dataDir, 'apps', name, 'report.txt');
  const deadline = Date.now() + 15_000;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`no report from ${name}: ${JSON.stringify((await gw.api('GET', `/_porthole/api/apps/${name}/logs?lines=50`)).body)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const report = readFileSync(file, 'utf8');
  assert.match(report, /report done/);
  return report;
}

function assertNoSecret(report: string, secrets: string[]): void {
  for (const s of secrets) assert.ok(!report.includes(s), `the app got a secret (${s.slice(0, 8)}…):\n${report}`);
}

/** Pids of live processes running as `uid` whose command line mentions `needle`. */
function processesOf(uid: number, needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      if (statSync(`/proc/${pid}`).uid !== uid) continue;
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
      if (state === 'Z') continue;
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').includes(needle)) out.push(pid);
    } catch {
      // Gone.
    }
  }
  return out;
}

test('an app running as the gateway\'s own user finds no secret in any ancestor\'s environ, nor a token next to its cwd', needsRoot, async (t) => {
  const env = secretEnv();
  const gw = await startGateway(t, { env, asNobody: true });
  const report = await attack(gw, 'same-user');
  assert.match(report, new RegExp(`^uid=${NOBODY} `, 'm'), 'the app runs as the gateway\'s user');
  assert.match(report, new RegExp(`^environ-read ${gw.child.pid}$`, 'm'), 'the gateway\'s environ was readable to it (same user): the check is real');
  assert.match(report, /== \.\.\/\.\.\/token\n.*No such file/, 'no token at ../../token');
  // The documented limit (docs/security.md): file modes do not
  // separate a user from itself, so a same-user app that knows the layout
  // reads DATA/private/token. Everything else must be clean.
  const known = /== \.\.\/\.\.\/private\/token\n[^\n]*\n/;
  assert.ok(report.match(known)?.[0].includes(gw.token), 'the same-user limit is what docs/security.md says it is');
  assertNoSecret(report.replace(known, ''), [...Object.values(env), gw.token]);
  record({ suite: 'secrets: same-user app', cases: 1, failures: 0, crashes: 0, note: 'ancestors\' environ and ../../token read; nothing secret (DATA/private/token readable, as documented)' });
});

test('an app with user: nobody under a root gateway reaches none of its secrets, nor another app\'s env, and gets its user\'s identity', needsRoot, async (t) => {
  const env = secretEnv();
  const dbPassword = `db-${randomBytes(12).toString('hex')}`;
  const gw = await startGateway(t, { env });
  // Another app's secret lives in the registry (apps.json).
  assert.equal((await gw.api('PUT', '/_porthole/api/apps/victim', { cmd: 'sleep 300', port: 9, env: { DB_PASSWORD: dbPassword } })).status, 200);
  const report = await attack(gw, 'attacker', { user: 'nobody' }, true);
  assert.match(report, new RegExp(`^uid=${NOBODY} groups=${NOBODY} home=/nonexistent user=nobody logname=nobody `, 'm'), 'unprivileged, no supplementary group of root, its own HOME/USER/LOGNAME');
  assert.match(report, /^searching /m, 'the data dir search ran');
  assert.match(report, /== \.\.\/\.\.\/private\/token\n.*Permission denied/, 'the token directory is closed to it');
  assertNoSecret(report, [...Object.values(env), gw.token, dbPassword]);
  const dir = statSync(join(gw.dataDir, 'apps', 'attacker'));
  assert.equal(dir.uid, NOBODY, 'its directory is its own');
  assert.equal(statSync(join(gw.dataDir, 'private')).mode & 0o777, 0o700);

  // Stop still reaches every process of the group (root signals another user's processes).
  const marker = `APP_NAME=attacker`;
  assert.ok(processesOf(NOBODY, marker).length >= 1, 'the attacker runs');
  assert.equal((await gw.api('POST', '/_porthole/api/apps/attacker/stop')).status, 200);
  assert.deepEqual(processesOf(NOBODY, marker), [], 'stopped: no process of it is left');
  record({ suite: 'secrets: app as nobody', cases: 1, failures: 0, crashes: 0, note: 'ancestors, ../../token, the whole data dir read; nothing secret' });
});

test('a stop reaches every process of an app run as nobody, also one that left its process group', needsRoot, async (t) => {
  const gw = await startGateway(t, { env: {} });
  assert.equal((await gw.api('PUT', '/_porthole/api/apps/split', { cmd: 'setsid sleep 301 & exec sleep 302', port: 9, user: 'nobody', stop_timeout: 2000 })).status, 200);
  assert.equal((await gw.api('POST', '/_porthole/api/apps/split/start')).status, 200);
  const deadline = Date.now() + 10_000;
  while (processesOf(NOBODY, 'APP_NAME=split').length < 2) {
    assert.ok(Date.now() < deadline, 'both processes run as nobody');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal((await gw.api('POST', '/_porthole/api/apps/split/stop')).status, 200);
  assert.deepEqual(processesOf(NOBODY, 'APP_NAME=split'), [], 'the group and the process in a session of its own are gone');
});

test('app_defaults.user runs every app without its own user unprivileged', needsRoot, async (t) => {
  const env = secretEnv();
  const gw = await startGateway(t, { env, config: 'app_defaults:\n  user: nobody\n  group: nogroup\n' });
  const report = await attack(gw, 'defaulted', {}, true);
  assert.match(report, new RegExp(`^uid=${NOBODY} groups=${NOBODY} `, 'm'));
  assertNoSecret(report, [...Object.values(env), gw.token]);
  // An app's own user wins over the default: root, like the gateway, reads
  // its environ — which holds nothing any more.
  const own = await attack(gw, 'own', { user: 'root' });
  assert.match(own, /^uid=0 /m);
  assert.match(own, new RegExp(`^environ-read ${gw.child.pid}$`, 'm'));
  assertNoSecret(own.replace(/== \.\.\/\.\.\/private\/token\n[^\n]*\n/, ''), Object.values(env));
});

test('a gateway that is not root refuses to run an app as another user, with PH_ERR_APP_USER', needsRoot, async (t) => {
  const gw = await startGateway(t, { env: {}, asNobody: true, config: 'apps:\n  - name: cfg\n    cmd: sleep 300\n    port: 9\n    user: root\n' });
  // A config-file app is checked when it starts: the gateway itself starts fine.
  const start = await gw.api('POST', '/_porthole/api/apps/cfg/start');
  assert.equal(start.status, 400);
  assert.equal(start.body.error.code, 'PH_ERR_APP_USER');
  const cfg = await gw.api('GET', '/_porthole/api/apps/cfg');
  assert.equal(cfg.body.app?.state ?? cfg.body.state, 'failed');
  assert.match(String(cfg.body.app?.message ?? cfg.body.message), /cannot run an app as uid 0/);
  const reg = await gw.api('PUT', '/_porthole/api/apps/rooted', { cmd: 'sleep 300', port: 9, user: 'root' });
  assert.equal(reg.status, 400);
  assert.equal(reg.body.error.code, 'PH_ERR_APP_USER');
  assert.match(reg.body.error.message, /runs as uid 65534/);
  assert.equal((await gw.api('GET', '/_porthole/api/apps/rooted')).status, 404, 'nothing was registered');
  const unknown = await gw.api('PUT', '/_porthole/api/apps/ghost', { cmd: 'sleep 300', port: 9, user: 'no-such-user-here' });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.error.code, 'PH_ERR_APP_USER');
  assert.match(unknown.body.error.message, /no-such-user-here/);
  // Its own user by name is fine.
  assert.equal((await gw.api('PUT', '/_porthole/api/apps/self', { cmd: 'sleep 300', port: 9, user: 'nobody' })).status, 200);
});

test('the gateway keeps using its environment after clearing /proc/PID/environ: an error page still renders ${VAR}', async (t) => {
  const invite = `https://chat.example/${randomBytes(6).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'porthole-page-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'offline.html'), '<p>offline: ${INVITE_URL}</p>');
  const gw = await startGateway(t, { env: { INVITE_URL: invite }, config: `error_page: ${join(dir, 'offline.html')}\napps:\n  - name: down\n    port: 9\n` });
  const res = await fetch(`${gw.url}/down/`, { headers: { Accept: 'text/html' } });
  assert.equal(res.status, 502);
  assert.ok((await res.text()).includes(invite), 'the page has the variable');
  const environ = readFileSync(`/proc/${gw.child.pid}/environ`);
  assert.ok(environ.length > 0 && environ.every((b) => b === 0), 'what /proc shows of the gateway\'s environment is all NUL bytes');
});
