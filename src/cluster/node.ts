/**
 * This gateway as a node of a cluster: the Redis store, the membership, the
 * change feed, and the calls a node makes to another one (start, stop and
 * logs of the apps that node runs). `createServer` builds one when the
 * config has `store: redis://…`.
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { resolve } from 'node:path';
import { hostname } from 'node:os';
import type { AppRegistry, AppView, ClusterHooks } from '../admin/registry.js';
import type { Supervisor } from '../apps/supervisor.js';
import { NODE_NAME, type ClusterConfig, type StoreConfig } from '../config/schema.js';
import { readPrivateFile } from '../config/private-file.js';
import { ConfigError, NodeDownError, PortholeError, UpstreamTimeoutError } from '../errors.js';
import { RedisStore, type RedisTlsOptions } from '../store/redis-store.js';
import { Cluster } from './cluster.js';
import { StoreSync } from './store-sync.js';

/** Sent with a call to another node: the registry version the caller holds (the callee waits until it has it). */
export const VERSION_HEADER = 'x-porthole-registry-version';
/** An app's start_timeout and stop_timeout when it sets none (as the registry's and the supervisor's). */
const DEFAULT_START_TIMEOUT_MS = 60_000;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** What a forwarded call may take past the app's start and stop timeouts before it is a 504. */
const FORWARD_GRACE_MS = 5_000;
/** The peer listener's secret header (see the gateway's peer listener). */
export const PEER_HEADER = 'x-porthole-peer';

/** A node name from the host name: its first label, cut to what a node name may hold. */
export function defaultNodeName(): string {
  const name = hostname().split('.')[0].replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 63);
  return NODE_NAME.test(name) ? name : 'node';
}

export interface ClusterNodeOptions {
  store: StoreConfig;
  cluster: ClusterConfig;
  /** `--node`: wins over `cluster.node` and the host name. */
  node?: string;
  /** Where relative paths of `cluster.tls` are resolved (the config file's directory). */
  baseDir?: string;
}

export class ClusterNode {
  readonly name: string;
  readonly store: RedisStore;
  cluster: Cluster | undefined;
  private sync: StoreSync | undefined;
  private registry: AppRegistry | undefined;
  private readonly config: ClusterConfig;
  /** Where relative paths in the config are resolved. */
  private readonly baseDir: string;
  /** `cluster.tls`, read: the peer listener's certificate, and the CA the other nodes' certificates are checked against. */
  readonly tls: { cert: string; key: string; ca: string } | undefined;

  constructor(options: ClusterNodeOptions) {
    const name = options.node ?? options.cluster.node ?? defaultNodeName();
    if (!NODE_NAME.test(name)) throw new ConfigError([`--node: ${JSON.stringify(name)} is not a node name (letters, digits, ".", "_", "-"; at most 63)`]);
    if (name === 'any') throw new ConfigError(['--node: "any" means "a node chosen by the cluster" in an app\'s node: give this node another name']);
    this.name = name;
    this.config = options.cluster;
    this.baseDir = options.baseDir ?? process.cwd();
    const tls = options.cluster.tls;
    if (tls) {
      const base = this.baseDir;
      const read = (key: 'cert' | 'key' | 'ca') => {
        const file = resolve(base, tls[key]);
        try {
          return readFileSync(file, 'utf8');
        } catch (err) {
          throw new ConfigError([`cluster.tls.${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
        }
      };
      this.tls = { cert: read('cert'), key: read('key'), ca: read('ca') };
    }
    this.store = new RedisStore({ url: options.store.url, prefix: options.store.prefix, ...storeSecrets(options.store, this.baseDir) });
  }

  /** Connects to Redis: before the registry loads (its apps are there). */
  connect(): Promise<void> {
    return this.store.connect();
  }

  /**
   * Joins the cluster once the peer listener listens (`advertise` is where
   * the others reach it), then follows the shared registry.
   */
  async join(registry: AppRegistry, supervisor: Supervisor, advertise: string, url: () => string | undefined): Promise<void> {
    this.registry = registry;
    const cluster = new Cluster({
      store: this.store,
      node: this.name,
      advertise,
      ttlMs: this.config.heartbeat_ttl,
      secretFile: this.config.secret_file === undefined ? undefined : resolve(this.baseDir, this.config.secret_file),
      url,
      localApps: () => supervisor.list(),
      version: () => this.store.version,
      apps: () => registry.all(),
    });
    this.cluster = cluster;
    await cluster.join();
    registry.cluster = this.hooks(cluster);
    // A node that comes up (at a new address) or goes down changes where requests go.
    cluster.onChange(() => registry.refreshRoutes());
  }

  /** Starts following the change feed (after the registry's init). */
  follow(): void {
    if (!this.cluster || !this.registry) return;
    this.sync = new StoreSync(this.store, this.registry, this.cluster);
    this.sync.start();
  }

  /** The secret other nodes must send to this node's peer listener ('' before join: nothing is admitted). */
  secret(): string {
    return this.cluster?.secret ?? '';
  }

  /** Waits (up to 2 s) until this node holds the registry at `version` (a call from a node that wrote it). */
  async caughtUp(version: number): Promise<void> {
    const until = Date.now() + 2_000;
    while (this.store.version < version && Date.now() < until) {
      await this.sync?.resync().catch(() => undefined);
      if (this.store.version >= version) return;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private hooks(cluster: Cluster): ClusterHooks {
    return {
      node: cluster.node,
      ownerOf: (app) => cluster.ownerOf(app),
      nodeGate: (app) => cluster.nodeGate(app),
      peerOf: (node) => this.peerOf(node),
      remoteStatus: (node, app) => cluster.remoteStatus(node, app),
      isKnown: (node) => cluster.isKnown(node),
      knownNodes: () => cluster.nodes().map((n) => n.name),
      refreshNodes: () => cluster.refresh(),
      catchUp: () => this.sync?.resyncHeld() ?? Promise.resolve(),
      version: () => this.store.version,
      act: async (node, app, action, version) => {
        const body = await this.callPeer(node, 'POST', `/_porthole/api/apps/${encodeURIComponent(app)}/${action}`, version);
        return (body as { app: AppView }).app;
      },
    };
  }

  /** How to reach another node's peer listener: https with the cluster's CA under `cluster.tls`. */
  peerOf(node: string): { node: string; url: string; secret: string; ca?: string } | undefined {
    const peer = this.cluster?.peerOf(node);
    if (!peer || !this.tls) return peer;
    return { ...peer, url: peer.url.replace(/^http:/, 'https:'), ca: this.tls.ca };
  }

  private request(url: string, options: http.RequestOptions, answer: (res: http.IncomingMessage) => void): http.ClientRequest {
    return this.tls ? https.request(url, { ...options, ca: this.tls.ca }, answer) : http.request(url, options, answer);
  }

  /** An admin call to another node's peer listener; its error answers become this node's. */
  private callPeer(node: string, method: string, path: string, version: number): Promise<unknown> {
    const peer = this.peerOf(node);
    if (!peer) return Promise.reject(new NodeDownError(`node ${node} is not reachable (no address known)`));
    return new Promise((resolve, reject) => {
      const req = this.request(`${peer.url}${path}`, { method, headers: { [PEER_HEADER]: peer.secret, [VERSION_HEADER]: String(version), accept: 'application/json' }, timeout: 30_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          let body: { ok?: boolean; error?: { code?: string; message?: string } } = {};
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            /* answered below */
          }
          if (res.statusCode === 200 && body.ok) return resolve(body);
          reject(new PeerAnswerError(res.statusCode ?? 502, body.error?.code ?? 'PH_ERR_INTERNAL', `node ${node}: ${body.error?.message ?? `answered ${res.statusCode}`}`));
        });
      });
      req.on('timeout', () => req.destroy(new Error('no answer in 30 s')));
      req.on('error', (err) => reject(new NodeDownError(`node ${node} at ${peer.url} cannot be reached: ${err.message}`)));
      req.end();
    });
  }

  /**
   * The admin API's `forwardApp`: a call about an app another node runs is
   * relayed to that node as it is (a log follow streams through).
   */
  forwardApp(name: string, req: IncomingMessage, res: ServerResponse, path?: string): boolean {
    const registry = this.registry;
    const cluster = this.cluster;
    if (!registry || !cluster) return false;
    const app = registry.get(name);
    if (!app || registry.isLocal(app)) return false;
    const down = cluster.nodeGate(app);
    const owner = cluster.ownerOf(app);
    const peer = owner ? this.peerOf(owner) : undefined;
    if (down || !peer) {
      const err = down ?? new NodeDownError(`app ${name}: its node is not reachable`, { app: name });
      res.writeHead(err.status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ok: false, error: { code: err.code, message: err.message } }));
      return true;
    }
    const headers: http.OutgoingHttpHeaders = { [PEER_HEADER]: peer.secret, [VERSION_HEADER]: String(this.store.version), accept: req.headers.accept ?? 'application/json' };
    if (req.headers['content-type'] && !path) headers['content-type'] = req.headers['content-type'];
    // The other node answers at once, or after the stop (restart) it carries out: a node that accepts
    // and never answers is a 504 once the app's start and stop timeouts have passed, not a call held for ever.
    const headMs = (app.start_timeout ?? DEFAULT_START_TIMEOUT_MS) + (app.stop_timeout ?? DEFAULT_STOP_TIMEOUT_MS) + FORWARD_GRACE_MS;
    let timedOut = false;
    // `path`: this REST call instead of the request's own (a /webapp action), a GET without a body.
    const out = this.request(`${peer.url}${path ?? req.url}`, { method: path ? 'GET' : req.method, headers }, (answer) => {
      clearTimeout(timer);
      res.writeHead(answer.statusCode ?? 502, { 'Content-Type': answer.headers['content-type'] ?? 'application/json', 'Cache-Control': 'no-store' });
      answer.pipe(res);
      res.on('close', () => answer.destroy());
    });
    const timer = setTimeout(() => ((timedOut = true), out.destroy(new Error(`no answer in ${headMs / 1000} s`))), headMs);
    timer.unref();
    // A client that gives up (before the answer, or during a log follow) ends the call to the other node too.
    res.on('close', () => {
      clearTimeout(timer);
      if (!res.writableFinished) out.destroy();
    });
    out.on('error', (err) => {
      clearTimeout(timer);
      if (res.headersSent) return void res.destroy();
      if (res.destroyed) return;
      const e = timedOut
        ? new UpstreamTimeoutError(`node ${owner} at ${peer.url} did not answer in ${headMs / 1000} s`, { app: name })
        : new NodeDownError(`node ${owner} at ${peer.url} cannot be reached: ${err.message}`, { app: name });
      res.writeHead(e.status, { 'Content-Type': 'application/json', 'X-Porthole-Error': e.code }).end(JSON.stringify({ ok: false, error: { code: e.code, status: e.status, message: e.message } }));
    });
    if (path) out.end();
    else req.pipe(out);
    return true;
  }

  /** Forgets a node that is gone for good (see Cluster.forget). */
  forget(name: string): Promise<void> {
    if (!this.cluster) return Promise.reject(new Error('not joined'));
    return this.cluster.forget(name);
  }

  /** `GET /_porthole/api/cluster` and the health endpoint's `cluster`. */
  view(): Record<string, unknown> {
    const c = this.cluster;
    return {
      node: this.name,
      leader: c?.leader ?? false,
      version: this.store.version,
      store: { kind: 'redis', url: this.store.safeUrl, up: this.store.up, ...(this.store.unavailableSince ? { down_since: new Date(this.store.unavailableSince).toISOString() } : {}) },
      heartbeat_ttl_ms: this.config.heartbeat_ttl,
      nodes: c?.nodes() ?? [],
    };
  }

  async close(): Promise<void> {
    this.sync?.stop();
    await this.cluster?.leave();
    await this.store.close();
  }
}

/** Another node's refusal, relayed with its status and code. */
class PeerAnswerError extends PortholeError {
  readonly closeCode = 1011;
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}


/** `store.password_file` and `store.tls`, read (paths relative to the config file's directory). */
function storeSecrets(store: StoreConfig, base: string): { password?: string; tls?: RedisTlsOptions } {
  const out: { password?: string; tls?: RedisTlsOptions } = {};
  if (store.password_file !== undefined) {
    try {
      out.password = readPrivateFile(resolve(base, store.password_file), "Redis's password");
    } catch (err) {
      throw new ConfigError([`store.password_file: ${(err as Error).message}`]);
    }
  }
  if (store.tls) {
    const tls: RedisTlsOptions = {};
    for (const key of ['ca', 'cert', 'key'] as const) {
      const path = store.tls[key];
      if (path === undefined) continue;
      const file = resolve(base, path);
      try {
        tls[key] = readFileSync(file, 'utf8');
      } catch (err) {
        throw new ConfigError([`store.tls.${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
      }
    }
    out.tls = tls;
  }
  return out;
}
