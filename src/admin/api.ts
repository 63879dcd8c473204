/**
 * The admin API, on the gateway's own port:
 * - REST under `/_porthole/api/` (`/apps`, `/apps/{name}`, `/apps/{name}/start|stop|restart|logs`);
 * - `POST /webapp` (and `GET /webapp?action=list|status`) with Agent Zero's
 *   JSON bodies (seed 000), answered with real HTTP statuses.
 * Every call passes the guard (token, Host, Origin) first.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { nearest, quote } from '../config/schema-kit.js';
import { AppNotSupervisedError, AppSpawnError, AppUnknownError, BadRequestError, BodyTooLargeError, InternalError, PortholeError } from '../errors.js';
import { emit } from '../events.js';
import type { LogEntry } from '../apps/app-log.js';
import type { Supervisor } from '../apps/supervisor.js';
import type { LiveConnection } from '../gateway/tunnel.js';
import { redactPath } from '../log/logger.js';
import type { Activity } from './activity.js';
import { ClusterFeed } from './cluster-feed.js';
import { authorize, type Caller, type GuardOptions } from './guard.js';
import { expired, sessionExpiry, type Session } from './session.js';
import type { AppRegistry } from './registry.js';

const MAX_BODY = 1024 * 1024;
/**
 * A body over MAX_BODY is read and thrown away up to this many bytes, so the
 * 413 reaches a client that sends its whole body before reading (closing a
 * socket with unread data makes the kernel send a reset, and the client then
 * never sees the answer). Past it, the answer is sent and the connection cut.
 */
const MAX_DISCARD = 16 * 1024 * 1024;
/** JSON nesting accepted in a body: an app definition is 3 levels deep. */
const MAX_DEPTH = 32;
/**
 * Values (commas) accepted in a body. An app definition has a few dozen; a
 * megabyte of tiny values costs JSON.parse, the copies and the schema walk
 * tens of milliseconds each, time the whole gateway would wait.
 */
const MAX_VALUES = 8192;
/** Problems listed one by one in an error answer; the rest are counted. */
const MAX_PROBLEMS = 20;
const API = '/_porthole/api/';
const WEBAPP_ACTIONS = ['register', 'start', 'stop', 'restart', 'status', 'list', 'remove', 'unregister', 'logs', 'autostart', 'alloc_port'];

export interface AdminApiOptions {
  registry: AppRegistry;
  supervisor: Supervisor;
  guard: () => GuardOptions;
  gatewayId: string;
  /** The open tunnels and bridge connections (for `/tunnels` and `/live`). */
  connections?: () => LiveConnection[];
  /** The last closes and gateway events (for `/tunnels`, `/events` and `/live`). */
  activity?: Activity;
  /** A new one-time dashboard login code (`POST /login-link`). */
  loginCode?: () => string;
  /** A call another node of the cluster made through this node's peer listener: admitted like the token. */
  fromPeer?: (req: IncomingMessage) => boolean;
  /** The cluster (`GET /cluster`): this node, the store, every node. Undefined outside a cluster. */
  cluster?: () => Record<string, unknown>;
  /** `DELETE /cluster/nodes/{name}`: forget a node that is gone for good. */
  forgetNode?: (name: string) => Promise<void>;
  /**
   * Calls `fn` when another node comes up, goes down or publishes new app
   * states (its heartbeat), until the returned function is called: the live
   * feed then sends the apps again.
   */
  onClusterChange?: (fn: () => void) => () => void;
  /**
   * A call about an app another node runs (its logs, start, stop): sent on
   * to that node, the answer relayed. Returns false when the app is this node's.
   */
  forwardApp?: (name: string, req: IncomingMessage, res: ServerResponse, path?: string) => boolean;
}

/** A request handler that answers admin paths and returns false for every other path. */
export interface AdminApi {
  (req: IncomingMessage, res: ServerResponse): boolean;
  /** Ends every event stream (log follows, `/live`): a draining gateway does not wait on them. */
  endStreams(): void;
}

/** The dashboard session an admin call was authorized with (its event streams end with it). */
const streamSession = new WeakMap<IncomingMessage, Session>();

/** Open event streams, ended by `endStreams`. */
type Streams = Set<ServerResponse>;

export function createAdminApi(opts: AdminApiOptions): AdminApi {
  const streams: Streams = new Set();
  const clusterFeed = opts.cluster ? new ClusterFeed(opts.cluster, opts.onClusterChange) : undefined;
  const handler = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path !== '/webapp' && path !== '/webapp/' && !path.startsWith(API)) return false;
    const started = performance.now();
    res.once('close', () =>
      emit('request', { gateway: opts.gatewayId, app: null, method: req.method ?? 'GET', path: url, status: res.statusCode, ms: Math.round(performance.now() - started) }),
    );
    const who: Caller | ReturnType<typeof authorize> = opts.fromPeer?.(req) ? { via: 'token' } : authorize(req, opts.guard());
    if (!('via' in who)) {
      sendError(res, who, who.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="porthole"' } : {});
      return true;
    }
    if (who.session) streamSession.set(req, who.session);
    const params = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    const handle = path.startsWith(API) ? rest(opts, req, res, path.slice(API.length), params, who, streams, clusterFeed) : webapp(opts, req, res, params);
    Promise.resolve(handle)
      .then((body) => {
        if (body !== undefined) sendJson(res, 200, { ok: true, ...body });
      })
      .catch((err) => sendError(res, asPortholeError(err)));
    return true;
  };
  return Object.assign(handler, {
    endStreams() {
      // Ending emits 'close' later: the stream's `stop` runs then; `open()` keeps writes off it meanwhile.
      for (const res of streams) res.end();
    },
  });
}

async function webapp(opts: AdminApiOptions, req: IncomingMessage, res: ServerResponse, params: URLSearchParams): Promise<Record<string, unknown> | undefined> {
  const { registry, supervisor } = opts;
  let body: Record<string, unknown>;
  if (req.method === 'GET') body = Object.fromEntries(params);
  else if (req.method === 'POST') body = await readJson(req, res);
  else throw new BadRequestError(`/webapp takes GET or POST, not ${req.method}`);
  const action = body.action;
  if (typeof action !== 'string') throw new BadRequestError(`action: required, one of ${WEBAPP_ACTIONS.join(', ')}`);
  if (req.method === 'GET' && action !== 'list' && action !== 'status') throw new BadRequestError(`action: GET /webapp takes list or status; use POST for ${action}`);
  const name = () => {
    if (typeof body.name !== 'string' || !body.name) throw new BadRequestError('name: required');
    return body.name;
  };
  const withUrl = (app: { route: string }) => ({ app, url: app.route });
  switch (action) {
    case 'register':
      return withUrl(await registry.put(body));
    case 'start':
    case 'stop':
    case 'restart':
      return withUrl(await registry.act(name(), action));
    case 'status': {
      const n = name();
      await registry.checkExternal([n]);
      return withUrl(registry.view(n));
    }
    case 'list':
      await registry.checkExternal();
      return { apps: registry.list() };
    case 'remove':
    case 'unregister':
      return registry.remove(name());
    case 'logs': {
      const n = name();
      registry.view(n); // 404 for an unknown app
      const lines = lineCount(body.lines);
      // Another node's app: its log is on that node (the REST answer has the same shape).
      if (opts.forwardApp?.(n, req, res, `/_porthole/api/apps/${encodeURIComponent(n)}/logs?lines=${lines}`)) return undefined;
      return { name: n, lines: supervisor.logs(n, lines) };
    }
    case 'autostart':
      if (typeof body.enabled !== 'boolean') throw new BadRequestError('enabled: expected true or false');
      return withUrl(await registry.autostart(name(), body.enabled));
    case 'alloc_port':
      return { port: await supervisor.allocPort() };
    default: {
      const near = nearest(action, WEBAPP_ACTIONS);
      throw new BadRequestError(`action: unknown action ${quote(action)}${near ? `, did you mean ${near}?` : ''} (one of ${WEBAPP_ACTIONS.join(', ')})`);
    }
  }
}

async function rest(
  opts: AdminApiOptions,
  req: IncomingMessage,
  res: ServerResponse,
  sub: string,
  params: URLSearchParams,
  who: Caller,
  streams: Streams,
  clusterFeed: ClusterFeed | undefined,
): Promise<Record<string, unknown> | undefined> {
  const { registry, supervisor } = opts;
  let parts: string[];
  try {
    parts = sub.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw new BadRequestError(`path: /_porthole/api/${sub} is not valid percent-encoding`);
  }
  const method = req.method ?? 'GET';
  const notAllowed = (allowed: string) => new BadRequestError(`${method} is not allowed on /_porthole/api/${sub} (use ${allowed})`);
  const getOnly = () => {
    if (method !== 'GET') throw notAllowed('GET');
  };
  if (parts.length === 1 && parts[0] === 'session') {
    getOnly();
    return { via: who.via, ...(who.session ? { expires_at: new Date(sessionExpiry(who.session)).toISOString() } : {}) };
  }
  if (parts.length === 1 && parts[0] === 'tunnels') {
    getOnly();
    return { ...tunnelViews(opts), closes: opts.activity?.closes ?? [] };
  }
  if (parts.length === 1 && parts[0] === 'events') {
    getOnly();
    return { events: opts.activity?.events ?? [] };
  }
  if (parts.length === 1 && parts[0] === 'login-link' && opts.loginCode) {
    if (method !== 'POST') throw notAllowed('POST');
    return { path: `/_porthole/?login=${opts.loginCode()}`, expires_in_s: 24 * 3600 };
  }
  if (parts.length === 1 && parts[0] === 'live') {
    getOnly();
    live(opts, req, res, streams, clusterFeed);
    return undefined;
  }
  if (parts.length === 1 && parts[0] === 'cluster') {
    getOnly();
    return { cluster: opts.cluster?.() ?? null };
  }
  if (parts.length === 3 && parts[0] === 'cluster' && parts[1] === 'nodes') {
    if (method !== 'DELETE') throw notAllowed('DELETE');
    if (!opts.forgetNode) throw new BadRequestError('this gateway is not a node of a cluster');
    await opts.forgetNode(parts[2]);
    return { forgotten: parts[2] };
  }
  if (parts[0] !== 'apps') throw new AppUnknownError(`no admin resource /_porthole/api/${sub}`);
  if (parts.length === 1) {
    if (method !== 'GET') throw notAllowed('GET, or PUT /apps/{name}');
    await registry.checkExternal();
    return { apps: registry.list() };
  }
  const name = parts[1];
  if (parts.length === 2) {
    if (method === 'GET') {
      await registry.checkExternal([name]);
      return { app: registry.view(name) };
    }
    if (method === 'DELETE') return registry.remove(name);
    if (method === 'PUT') {
      const body = await readJson(req, res);
      if (body.name !== undefined && body.name !== name) {
        throw new BadRequestError(`name: ${typeof body.name === 'string' ? quote(body.name) : 'a non-string'} does not match the URL's ${quote(name)}`);
      }
      const app = await registry.put({ ...body, name });
      return { app };
    }
    throw notAllowed('GET, PUT or DELETE');
  }
  if (parts.length === 3) {
    const what = parts[2];
    // Another node's app: that node has its process and its logs.
    if (opts.forwardApp?.(name, req, res)) return undefined;
    if (what === 'start' || what === 'stop' || what === 'restart') {
      if (method !== 'POST') throw notAllowed('POST');
      return { app: await registry.act(name, what) };
    }
    if (what === 'logs') {
      if (method !== 'GET') throw notAllowed('GET');
      registry.view(name);
      const count = lineCount(params.get('lines'));
      const entries = flag(params.get('entries'));
      const follow = flag(params.get('follow'));
      if (!follow) return entries ? { name, lines: supervisor.logs(name, count), entries: supervisor.logEntries(name, count) } : { name, lines: supervisor.logs(name, count) };
      if (entries) followEntries(supervisor, name, supervisor.logEntries(name, count), req, res, streams, opts.gatewayId);
      else followLogs(supervisor, name, supervisor.logs(name, count), req, res, streams, opts.gatewayId);
      return undefined;
    }
  }
  throw new AppUnknownError(`no admin resource /_porthole/api/${sub}`);
}

function flag(v: string | null): boolean {
  return v === '1' || v === 'true';
}

/**
 * Bytes an event stream may hold for a client that does not read (a laptop
 * asleep with the dashboard open, a stalled proxy). Past it the stream is cut
 * and the client reconnects: otherwise a chatty app's whole output, or the
 * tunnel list every second, would pile up in the gateway's memory.
 */
export const MAX_STREAM_BUFFER = 4 * 1024 * 1024;

/**
 * Starts a Server-Sent Events answer: keep-alive comments every 15 s,
 * `stop` run when the client goes (or `endStreams` ends it). Returns the
 * stream's writer, which cuts the stream past MAX_STREAM_BUFFER.
 */
function eventStream(req: IncomingMessage, res: ServerResponse, streams: Streams, stop: () => void, gatewayId: string): (text: string) => void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
  streams.add(res);
  // A stream opened with a dashboard session lasts no longer than the session.
  const session = streamSession.get(req);
  const sessionOver = () => res.end();
  session?.onEnd.add(sessionOver);
  const keepAlive = setInterval(() => {
    if (session && expired(session)) return void res.end();
    if (open(res)) res.write(': keep-alive\n\n');
  }, 15_000);
  keepAlive.unref();
  let done = false;
  const end = () => {
    if (done) return;
    done = true;
    streams.delete(res);
    session?.onEnd.delete(sessionOver);
    clearInterval(keepAlive);
    stop();
  };
  req.socket.once('close', end);
  res.once('close', end);
  return (text) => {
    if (!open(res)) return;
    if (session && expired(session)) return void res.end();
    res.write(text);
    if (res.writableLength <= MAX_STREAM_BUFFER) return;
    emit('error', {
      code: 'PH_ERR_STREAM_SLOW',
      message: `admin API: ${req.url}: the client read too slowly (over ${MAX_STREAM_BUFFER / 1024 / 1024} MiB waiting), the stream was cut`,
      gateway: gatewayId,
    });
    res.destroy();
  };
}

/** True while a stream can still be written to (`endStreams` may have ended it before its listeners are gone). */
function open(res: ServerResponse): boolean {
  return !res.writableEnded && !res.destroyed;
}

/** Streams log lines as Server-Sent Events: the tail first, then each new line. */
function followLogs(supervisor: Supervisor, name: string, tail: string[], req: IncomingMessage, res: ServerResponse, streams: Streams, gatewayId: string): void {
  let off = () => {};
  const write = eventStream(req, res, streams, () => off(), gatewayId);
  const send = (line: string) => write(`data: ${line.replace(/\r?\n/g, ' ')}\n\n`);
  tail.forEach(send);
  off = supervisor.followLogs(name, send);
}

/** As followLogs, each line a JSON `LogEntry` (`stream`, `text`, `at`). */
function followEntries(supervisor: Supervisor, name: string, tail: LogEntry[], req: IncomingMessage, res: ServerResponse, streams: Streams, gatewayId: string): void {
  let off = () => {};
  const write = eventStream(req, res, streams, () => off(), gatewayId);
  const send = (entry: LogEntry) => write(`data: ${JSON.stringify(entry)}\n\n`);
  tail.forEach(send);
  off = supervisor.followLogs(name, (_line, entry) => send(entry));
}

/**
 * Open connections listed at most: a gateway with thousands of idle tunnels
 * would otherwise send megabytes a second to every open dashboard. The
 * busiest (most recently active) come first; `total` counts them all.
 */
export const MAX_LISTED_TUNNELS = 500;

/** The open connections as the API shows them, most recently active first. */
function tunnelViews(opts: AdminApiOptions): { tunnels: Record<string, unknown>[]; total: number } {
  const now = Date.now();
  const all = opts.connections?.() ?? [];
  const shown = all.length > MAX_LISTED_TUNNELS ? all.sort((a, b) => b.lastActivity - a.lastActivity).slice(0, MAX_LISTED_TUNNELS) : all;
  const tunnels = shown.map((c) => ({
    id: c.id,
    kind: c.kind,
    app: c.app,
    path: redactPath(c.path),
    client: c.client,
    started_at: new Date(c.started).toISOString(),
    age_ms: now - c.started,
    idle_ms: now - c.lastActivity,
    bytes_in: c.bytesIn,
    bytes_out: c.bytesOut,
    messages_in: c.messagesIn,
    messages_out: c.messagesOut,
    // With `workers: N`: the process that holds the tunnel (docs/workers.md).
    ...(typeof (c as { worker?: unknown }).worker === 'number' ? { worker: (c as { worker?: number }).worker } : {}),
  }));
  return { tunnels, total: all.length };
}

/** Apps' changes are sent at most this often. */
const APPS_EVERY_MS = 200;
const TUNNELS_EVERY_MS = 1000;

/**
 * The dashboard's live feed (Server-Sent Events): `tunnels` every second,
 * `close` and `event` as they happen, `apps` when an app changes, and
 * `cluster` (the `GET /cluster` body; null outside a cluster) when it opens
 * and when the cluster changes: a node up or down, the leader, the store up
 * or down, the version.
 */
function live(opts: AdminApiOptions, req: IncomingMessage, res: ServerResponse, streams: Streams, clusterFeed: ClusterFeed | undefined): void {
  let write = (_text: string) => {};
  const send = (event: string, data: unknown) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const sendApps = () => send('apps', { apps: opts.registry.list() });
  const sendTunnels = () => send('tunnels', tunnelViews(opts));
  let appsTimer: NodeJS.Timeout | null = null;
  const appsSoon = () => {
    if (appsTimer) return;
    appsTimer = setTimeout(() => {
      appsTimer = null;
      sendApps();
    }, APPS_EVERY_MS);
  };
  const tick = setInterval(sendTunnels, TUNNELS_EVERY_MS);
  const offs = [
    opts.activity?.onClose((c) => send('close', c)),
    opts.activity?.onEvent((e) => {
      send('event', e);
      if (e.type === 'app') appsSoon();
    }),
  ];
  const cluster = clusterFeed?.current() ?? null;
  offs.push(
    clusterFeed?.watch({
      view(view) {
        send('cluster', { cluster: view });
        // A node gone or back, or a new version (a change another node made), changes what the apps show.
        appsSoon();
      },
      // Another node's app states arrive with its heartbeats, not as events of this gateway.
      nodes: appsSoon,
    }),
  );
  write = eventStream(
    req,
    res,
    streams,
    () => {
      clearInterval(tick);
      if (appsTimer) clearTimeout(appsTimer);
      offs.forEach((off) => off?.());
    },
    opts.gatewayId,
  );
  send('cluster', { cluster });
  sendApps();
  sendTunnels();
}

function lineCount(v: unknown): number {
  if (v === undefined || v === null || v === '') return 100;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new BadRequestError('lines: expected an integer from 1 to 10000');
  return n;
}

function readJson(req: IncomingMessage, res: ServerResponse): Promise<Record<string, unknown>> {
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = () => new BodyTooLargeError(`body: larger than ${MAX_BODY} bytes`);
    const cut = () => {
      // Not worth reading on: answer, then close (a client still sending may see a reset).
      req.pause();
      res.setHeader('Connection', 'close');
      res.once('finish', () => req.destroy());
      fail(tooLarge());
    };
    if (Number(req.headers['content-length']) > MAX_DISCARD) return cut();
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) return void chunks.push(c);
      chunks.length = 0;
      if (size - c.length <= MAX_DISCARD && size > MAX_DISCARD) cut();
    });
    req.on('error', fail);
    req.on('end', () => {
      if (size > MAX_BODY) {
        res.setHeader('Connection', 'close');
        return fail(tooLarge());
      }
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text.trim()) return ok({});
      const shape = jsonShape(text);
      if (shape.tooDeepAt) return fail(new BadRequestError(`body: JSON nested deeper than ${MAX_DEPTH} levels (at character ${shape.tooDeepAt})`));
      if (shape.values > MAX_VALUES) return fail(new BadRequestError(`body: ${shape.values} values; at most ${MAX_VALUES} in an admin request`));
      try {
        const v = JSON.parse(text) as unknown;
        if (v === null || typeof v !== 'object' || Array.isArray(v)) return fail(new BadRequestError('body: expected a JSON object'));
        ok(v as Record<string, unknown>);
      } catch (err) {
        fail(new BadRequestError(`body: invalid JSON (${(err as Error).message.slice(0, 200)})`));
      }
    });
  });
}

/**
 * What JSON.parse would be asked to build, in one linear pass before it runs:
 * where (1-based) arrays and objects nest deeper than MAX_DEPTH (0 if they
 * do not), and how many values (commas, counted up to MAX_VALUES + 1) there are.
 */
function jsonShape(text: string): { tooDeepAt: number; values: number } {
  let depth = 0;
  let values = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* backslash */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 44 /* , */) {
      if (++values > MAX_VALUES) break;
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > MAX_DEPTH) return { tooDeepAt: i + 1, values };
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return { tooDeepAt: 0, values };
}

function asPortholeError(err: unknown): PortholeError {
  if (err instanceof PortholeError) return err;
  const e = err as Error & { code?: string };
  if (e.code === 'PH_ERR_APP_UNKNOWN') return new AppUnknownError(e.message);
  if (e.code === 'PH_ERR_APP_NO_CMD') return new AppNotSupervisedError(e.message);
  if (e.code === 'PH_ERR_APP_SPAWN') return new AppSpawnError(e.message);
  emit('error', { code: 'PH_ERR_INTERNAL', message: e.stack ?? String(err) });
  return new InternalError(e.message ?? String(err), { cause: err });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, err: PortholeError, headers: Record<string, string> = {}): void {
  let problems = (err as { problems?: readonly string[] }).problems;
  let message = err.message;
  if (problems && problems.length > MAX_PROBLEMS) {
    problems = [...problems.slice(0, MAX_PROBLEMS), `…and ${problems.length - MAX_PROBLEMS} more problems`];
    message = problems.join('; ');
  }
  const fields = problems ? fieldsOf(problems) : undefined;
  sendJson(
    res,
    err.status,
    { ok: false, error: { code: err.code, status: err.status, message, ...(problems && problems.length > 1 ? { problems } : {}), ...(fields ? { fields } : {}) } },
    { 'X-Porthole-Error': err.code, ...headers },
  );
}

/**
 * Problems by the top-level field they are about (`app.port: expected…` →
 * `port`), so a form can show each beside its field; undefined when none
 * names a field.
 */
export function fieldsOf(problems: readonly string[]): Record<string, string> | undefined {
  const fields: Record<string, string> = {};
  let any = false;
  for (const p of problems) {
    const m = /^(?:app\.)?([a-z_][a-z0-9_]*)(?:[.[][^:]*)?: (.+)$/s.exec(p);
    // `app: needs one of port, url or socket` is about the whole form, not one field.
    if (!m || (m[1] === 'app' && !p.startsWith('app.')) || Object.hasOwn(fields, m[1])) continue;
    fields[m[1]] = m[2];
    any = true;
  }
  return any ? fields : undefined;
}
