/**
 * The admin API, on the gateway's own port:
 * - REST under `/_porthole/api/` (`/apps`, `/apps/{name}`, `/apps/{name}/start|stop|restart|logs`);
 * - `POST /webapp` (and `GET /webapp?action=list|status`) with Agent Zero's
 *   JSON bodies (seed 000), answered with real HTTP statuses.
 * Every call passes the guard (token, Host, Origin) first.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { nearest } from '../config/schema-kit.js';
import { AppNotSupervisedError, AppUnknownError, BadRequestError, InternalError, PortholeError } from '../errors.js';
import { emit } from '../events.js';
import type { Supervisor } from '../apps/supervisor.js';
import { checkAdmin, type GuardOptions } from './guard.js';
import type { AppRegistry } from './registry.js';

const MAX_BODY = 1024 * 1024;
const API = '/_porthole/api/';
const WEBAPP_ACTIONS = ['register', 'start', 'stop', 'restart', 'status', 'list', 'remove', 'unregister', 'logs', 'autostart', 'alloc_port'];

export interface AdminApiOptions {
  registry: AppRegistry;
  supervisor: Supervisor;
  guard: () => GuardOptions;
  gatewayId: string;
}

/** Returns a request handler that answers admin paths and returns false for every other path. */
export function createAdminApi(opts: AdminApiOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path !== '/webapp' && path !== '/webapp/' && !path.startsWith(API)) return false;
    const started = performance.now();
    res.once('close', () =>
      emit('request', { gateway: opts.gatewayId, app: null, method: req.method ?? 'GET', path: url, status: res.statusCode, ms: Math.round(performance.now() - started) }),
    );
    const refused = checkAdmin(req, opts.guard());
    if (refused) {
      sendError(res, refused, refused.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="porthole"' } : {});
      return true;
    }
    const params = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
    const handle = path.startsWith(API) ? rest(opts, req, res, path.slice(API.length), params) : webapp(opts, req, params);
    Promise.resolve(handle)
      .then((body) => {
        if (body !== undefined) sendJson(res, 200, { ok: true, ...body });
      })
      .catch((err) => sendError(res, asPortholeError(err)));
    return true;
  };
}

async function webapp(opts: AdminApiOptions, req: IncomingMessage, params: URLSearchParams): Promise<Record<string, unknown>> {
  const { registry, supervisor } = opts;
  let body: Record<string, unknown>;
  if (req.method === 'GET') body = Object.fromEntries(params);
  else if (req.method === 'POST') body = await readJson(req);
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
    case 'status':
      return withUrl(registry.view(name()));
    case 'list':
      return { apps: registry.list() };
    case 'remove':
    case 'unregister':
      return registry.remove(name());
    case 'logs': {
      const n = name();
      registry.view(n); // 404 for an unknown app
      return { name: n, lines: supervisor.logs(n, lineCount(body.lines)) };
    }
    case 'autostart':
      if (typeof body.enabled !== 'boolean') throw new BadRequestError('enabled: expected true or false');
      return withUrl(await registry.autostart(name(), body.enabled));
    case 'alloc_port':
      return { port: await supervisor.allocPort() };
    default: {
      const near = nearest(action, WEBAPP_ACTIONS);
      throw new BadRequestError(`action: unknown action ${JSON.stringify(action)}${near ? `, did you mean ${near}?` : ''} (one of ${WEBAPP_ACTIONS.join(', ')})`);
    }
  }
}

async function rest(opts: AdminApiOptions, req: IncomingMessage, res: ServerResponse, sub: string, params: URLSearchParams): Promise<Record<string, unknown> | undefined> {
  const { registry, supervisor } = opts;
  let parts: string[];
  try {
    parts = sub.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw new BadRequestError(`path: /_porthole/api/${sub} is not valid percent-encoding`);
  }
  const method = req.method ?? 'GET';
  const notAllowed = (allowed: string) => new BadRequestError(`${method} is not allowed on /_porthole/api/${sub} (use ${allowed})`);
  if (parts[0] !== 'apps') throw new AppUnknownError(`no admin resource /_porthole/api/${sub}`);
  if (parts.length === 1) {
    if (method !== 'GET') throw notAllowed('GET, or PUT /apps/{name}');
    return { apps: registry.list() };
  }
  const name = parts[1];
  if (parts.length === 2) {
    if (method === 'GET') return { app: registry.view(name) };
    if (method === 'DELETE') return registry.remove(name);
    if (method === 'PUT') {
      const body = await readJson(req);
      if (body.name !== undefined && body.name !== name) throw new BadRequestError(`name: ${JSON.stringify(body.name)} does not match the URL's ${JSON.stringify(name)}`);
      const app = await registry.put({ ...body, name });
      return { app };
    }
    throw notAllowed('GET, PUT or DELETE');
  }
  if (parts.length === 3) {
    const what = parts[2];
    if (what === 'start' || what === 'stop' || what === 'restart') {
      if (method !== 'POST') throw notAllowed('POST');
      return { app: await registry.act(name, what) };
    }
    if (what === 'logs') {
      if (method !== 'GET') throw notAllowed('GET');
      registry.view(name);
      const lines = supervisor.logs(name, lineCount(params.get('lines')));
      if (params.get('follow') !== '1' && params.get('follow') !== 'true') return { name, lines };
      followLogs(supervisor, name, lines, req, res);
      return undefined;
    }
  }
  throw new AppUnknownError(`no admin resource /_porthole/api/${sub}`);
}

/** Streams log lines as Server-Sent Events: the tail first, then each new line. */
function followLogs(supervisor: Supervisor, name: string, tail: string[], req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
  const send = (line: string) => res.write(`data: ${line.replace(/\r?\n/g, ' ')}\n\n`);
  tail.forEach(send);
  const off = supervisor.followLogs(name, send);
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  keepAlive.unref();
  req.socket.once('close', () => {
    off();
    clearInterval(keepAlive);
  });
}

function lineCount(v: unknown): number {
  if (v === undefined || v === null || v === '') return 100;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new BadRequestError('lines: expected an integer from 1 to 10000');
  return n;
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        fail(new BadRequestError(`body: larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', fail);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text.trim()) return ok({});
      try {
        const v = JSON.parse(text) as unknown;
        if (v === null || typeof v !== 'object' || Array.isArray(v)) return fail(new BadRequestError('body: expected a JSON object'));
        ok(v as Record<string, unknown>);
      } catch (err) {
        fail(new BadRequestError(`body: invalid JSON (${(err as Error).message})`));
      }
    });
  });
}

function asPortholeError(err: unknown): PortholeError {
  if (err instanceof PortholeError) return err;
  const e = err as Error & { code?: string };
  if (e.code === 'PH_ERR_APP_UNKNOWN') return new AppUnknownError(e.message);
  if (e.code === 'PH_ERR_APP_NO_CMD') return new AppNotSupervisedError(e.message);
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
  const problems = (err as { problems?: readonly string[] }).problems;
  sendJson(res, err.status, { ok: false, error: { code: err.code, status: err.status, message: err.message, ...(problems && problems.length > 1 ? { problems } : {}) } }, { 'X-Porthole-Error': err.code, ...headers });
}
