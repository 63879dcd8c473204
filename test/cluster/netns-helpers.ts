/**
 * A cluster on separate hosts: three network namespaces (test/helpers/netns.ts),
 * Redis in the first, one `porthole serve` process per namespace, each with
 * its own config file and data directory. Apps are started by their node and
 * listen on that namespace's loopback, so only their node reaches them; the
 * test process (the root namespace) reaches every node across the bridge, as
 * a client behind a load balancer would.
 */
import type { TestContext } from 'node:test';
import { type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { makeNet, type Net } from '../helpers/netns.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';

export const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
export const ECHO_APP = fileURLToPath(new URL('../fixtures/cluster/echo-app.mjs', import.meta.url));
export const ECHO_CMD = `${process.execPath} ${ECHO_APP}`;
export const GATEWAY_PORT = 8080;
export const PEER_PORT = 8081;
export const NAMES = ['a', 'b', 'c'] as const;

export interface NsNode {
  name: string;
  /** namespace index */
  i: number;
  ip: string;
  /** http://IP:8080 */
  url: string;
  dataDir: string;
  configFile: string;
  proc: ChildProcess | undefined;
  token: string;
  /** The node's output (JSON log lines and stderr), the last ~400 lines. */
  log(): string;
  /** Starts (or starts again) `porthole serve` in its namespace; resolves once it listens. */
  start(): Promise<void>;
  /** SIGKILL, and waits for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM (a drain: the node leaves the cluster), and waits for the exit. */
  stop(): Promise<void>;
  /** An admin API call with this node's token. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
}

export interface NsCluster {
  net: Net;
  redis: RedisHandle;
  nodes: NsNode[];
  dir: string;
  ttlMs: number;
  /** Everything the nodes logged, for a failure message. */
  logs(): string;
}

export interface ClusterOptions {
  persist?: boolean;
  /** heartbeat_ttl in ms (default 2000) */
  ttlMs?: number;
}

/** Three namespaces, Redis in namespace 0, nodes a, b, c started in parallel. Everything is removed in t.after. */
export async function startNsCluster(t: TestContext, opts: ClusterOptions = {}): Promise<NsCluster> {
  const ttlMs = opts.ttlMs ?? 2_000;
  const net = await makeNet(3);
  t.after(() => net.close());
  const dir = mkdtempSync(join(tmpdir(), 'ph-netns-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const redis = await startRedis({ netns: net.hosts[0]!.ns, host: net.hosts[0]!.ip, persist: opts.persist });
  t.after(() => redis.close());
  const nodes = NAMES.map((name, i) => makeNode(net, redis, dir, name, i, ttlMs));
  // Killed before the namespaces go (t.after runs in reverse order): no node outlives its test.
  t.after(async () => {
    await Promise.all(nodes.map((n) => n.kill9()));
  });
  await Promise.all(nodes.map((n) => n.start()));
  const cluster: NsCluster = { net, redis, nodes, dir, ttlMs, logs: () => nodes.map((n) => `--- node ${n.name}\n${n.log()}`).join('\n') };
  // Every node sees the other two before a test starts.
  await until('every node sees three nodes up', async () => {
    for (const n of nodes) {
      const c = await n.api('GET', '/cluster').catch(() => undefined);
      if (c?.status !== 200 || c.body.cluster.nodes.filter((x: { up: boolean }) => x.up).length !== 3) return undefined;
    }
    return true;
  }, 15_000);
  return cluster;
}

function makeNode(net: Net, redis: RedisHandle, dir: string, name: string, i: number, ttlMs: number): NsNode {
  const ip = net.hosts[i]!.ip;
  const dataDir = join(dir, name);
  const configFile = join(dir, `${name}.yaml`);
  writeFileSync(
    configFile,
    [
      `listen: ${ip}:${GATEWAY_PORT}`,
      'auth: none',
      `store: { url: "${redis.url}", prefix: "e2e:" }`,
      `cluster: { listen: "${ip}:${PEER_PORT}", heartbeat_ttl: ${ttlMs}ms }`,
      '',
    ].join('\n'),
  );
  let lines: string[] = [];
  const keep = (d: Buffer) => {
    lines.push(...d.toString().split('\n').filter((l) => l && !/"event":"request"/.test(l)));
    if (lines.length > 800) lines = lines.slice(-400);
  };
  const node: NsNode = {
    name,
    i,
    ip,
    url: `http://${ip}:${GATEWAY_PORT}`,
    dataDir,
    configFile,
    proc: undefined,
    token: '',
    log: () => lines.slice(-400).join('\n'),
    async start() {
      const c = net.spawn(i, process.execPath, [MAIN, 'serve', '--config', configFile, '--data', dataDir, '--node', name, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      node.proc = c;
      c.stdout!.on('data', keep);
      c.stderr!.on('data', keep);
      await new Promise<void>((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`node ${name} did not listen within 20 s:\n${node.log()}`)), 20_000);
        const look = (d: Buffer) => {
          if (/porthole: listening on/.test(d.toString())) {
            clearTimeout(timer);
            c.stderr!.off('data', look);
            ok();
          }
        };
        c.stderr!.on('data', look);
        c.once('exit', (code, sig) => {
          clearTimeout(timer);
          fail(new Error(`node ${name} exited (${sig ?? code}) before it listened:\n${node.log()}`));
        });
      });
      node.token = readFileSync(join(dataDir, 'private', 'token'), 'utf8').trim();
    },
    async kill9() {
      const c = node.proc;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((ok) => c.once('exit', ok));
      c.kill('SIGKILL');
      await exited;
    },
    async stop() {
      const c = node.proc;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((ok) => c.once('exit', ok));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
    async api(method, path, body) {
      const r = await request(`${node.url}/_porthole/api${path}`, { method, headers: { authorization: `Bearer ${node.token}` }, body: body === undefined ? undefined : JSON.stringify(body), timeoutMs: 10_000 });
      let json: any;
      try {
        json = JSON.parse(r.body);
      } catch {
        json = r.body;
      }
      return { status: r.status, body: json };
    },
  };
  return node;
}

export interface Answer {
  status: number;
  body: string;
  json?: any;
}

/** One HTTP request on a fresh connection (no pooled socket to a node that is gone); rejects on a socket error or timeout. */
export function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}): Promise<Answer> {
  return new Promise((ok, fail) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const req = http.request(url, { method: opts.method ?? 'GET', headers, agent: false, timeout: opts.timeoutMs ?? 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: any;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        ok({ status: res.statusCode ?? 0, body, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in ${opts.timeoutMs ?? 5_000} ms`)));
    req.on('error', fail);
    req.end(opts.body);
  });
}

/** Opens a WebSocket; rejects when it does not open within `ms`. */
export function openWs(url: string, ms = 5_000): Promise<WebSocket> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => (ws.terminate(), fail(new Error(`${url} did not open in ${ms} ms`))), ms);
    ws.once('open', () => (clearTimeout(timer), ok(ws)));
    ws.once('error', (e) => (clearTimeout(timer), fail(e)));
    ws.once('unexpected-response', (_req, res) => (clearTimeout(timer), ws.terminate(), fail(new Error(`${url} answered ${res.statusCode}`))));
  });
}

/** Sends `text` and waits for it to come back. */
export function echo(ws: WebSocket, text: string, ms = 5_000): Promise<void> {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => (ws.off('message', on), fail(new Error(`no echo of ${text} in ${ms} ms`))), ms);
    const on = (data: Buffer) => {
      if (data.toString() !== text) return;
      clearTimeout(timer);
      ws.off('message', on);
      ok();
    };
    ws.on('message', on);
    ws.send(text);
  });
}

/** The close code and reason of a WebSocket to `url` that the gateway refuses (or that closes at once). */
export function wsClose(url: string, ms = 5_000): Promise<{ code: number; reason: string; opened: boolean }> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(url);
    let opened = false;
    const timer = setTimeout(() => (ws.terminate(), fail(new Error(`${url} did not close in ${ms} ms`))), ms);
    ws.once('open', () => (opened = true));
    ws.once('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => (clearTimeout(timer), ws.terminate(), ok({ code: -res.statusCode!, reason: '', opened })));
    ws.once('close', (code, reason) => (clearTimeout(timer), ok({ code, reason: reason.toString(), opened })));
  });
}

/** Polls `check` every 5 ms until it returns something other than undefined; fails after `ms`. */
export async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 5_000, every = 5): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** The p-th percentile (0..100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** The last answer echoJson got for each URL (for failure messages). */
export const lastAnswer = new Map<string, string>();

/** GET through a node: the JSON the echo app answers, or undefined (any other answer, or no answer). */
export async function echoJson(url: string): Promise<{ app: string; pid: number; cwd: string; url: string } | undefined> {
  const r = await request(url, { timeoutMs: 2_000, headers: { accept: 'application/json' } }).catch((e: Error) => (lastAnswer.set(url, e.message), undefined));
  if (r) lastAnswer.set(url, `${r.status} ${r.body.slice(0, 300)}`);
  return r?.status === 200 && r.json?.pid ? r.json : undefined;
}

/** Runs the test body; on failure, the error carries every node's log. */
export async function withLogs(cl: NsCluster, body: () => Promise<void>): Promise<void> {
  try {
    await body();
    if (process.env.PH_E2E_LOGS) console.log(cl.logs());
  } catch (err) {
    // Printed rather than added to the message: an AssertionError's report does not show a changed message.
    console.log(`last answers:\n${[...lastAnswer].map(([u, a]) => `  ${u}: ${a}`).join('\n')}\n${cl.logs().split('\n').slice(-300).join('\n')}`);
    throw err;
  }
}

/**
 * Sends a GET every `every` ms without waiting for the ones before (a request
 * forwarded to a node that is cut off hangs until its timeout, and would hide
 * the moment the node starts refusing), until one answer passes `match`;
 * resolves with what `match` returned and when that answer came. Fails after
 * `maxMs`.
 */
export function firstAnswer<T>(url: string, match: (a: Answer) => T | undefined, maxMs: number, every = 25): Promise<{ value: T; at: number }> {
  return new Promise((ok, fail) => {
    let done = false;
    let last = '';
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      clearTimeout(limit);
      fn();
    };
    const timer = setInterval(() => {
      request(url, { headers: { accept: 'application/json' }, timeoutMs: 3_000 }).then(
        (a) => {
          last = `${a.status} ${a.body.slice(0, 200)}`;
          const v = match(a);
          if (v !== undefined) finish(() => ok({ value: v, at: performance.now() }));
        },
        (e: Error) => (last = e.message),
      );
    }, every);
    const limit = setTimeout(() => finish(() => fail(new Error(`no matching answer from ${url} within ${maxMs} ms (last: ${last})`))), maxMs);
  });
}
