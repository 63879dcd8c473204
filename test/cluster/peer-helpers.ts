/**
 * Two (or three) real gateways in one process, as the nodes of a cluster: an
 * app (HTTP and WebSocket, on loopback) behind gateway B, which listens for
 * peers too; gateway A routes the app to B's peer listener. Nothing mocked.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import { createGateway, type Gateway, type GatewayOptions, type ListenAddress, type PeerListenOptions, type PeerTarget } from '../../src/gateway/gateway.js';
import { closeServer, listen } from '../helpers/net.js';

export interface Seen {
  method: string;
  url: string;
  rawHeaders: string[];
}

export interface App {
  port: number;
  /** Every request head the app received (HTTP and WebSocket handshakes). */
  seen: Seen[];
  /** Close frames the app received from its WebSocket clients. */
  closes: { code: number; reason: string }[];
  /** Ends the held `/stream` responses. */
  release(): void;
  close(): Promise<void>;
}

/**
 * The app behind node B:
 * - `/hdr`: the request head as JSON;
 * - `/redir`: 302 to `/landed` with `Set-Cookie: s=1; Path=/`;
 * - `POST /upload`: the body's length and SHA-256, read as a stream;
 * - `/download?n=N`: N bytes in 64 KiB chunks;
 * - `/hang`: no answer ever;
 * - `/stream`: `first\n` at once, `last\n` only after release();
 * - WebSocket: echo; a `bye` message is answered with close 4001 "bye".
 */
export async function startApp(): Promise<App> {
  const seen: Seen[] = [];
  const closes: { code: number; reason: string }[] = [];
  const held = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders });
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/redir') {
      res.writeHead(302, { Location: '/landed', 'Set-Cookie': 's=1; Path=/' });
      return void res.end();
    }
    if (path === '/hang') return; // never answers
    if (path === '/stream') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('first\n');
      held.add(res);
      return;
    }
    if (path === '/upload') {
      const hash = createHash('sha256');
      let n = 0;
      req.on('data', (d: Buffer) => {
        n += d.length;
        hash.update(d);
      });
      req.on('end', () => res.end(JSON.stringify({ bytes: n, sha256: hash.digest('hex') })));
      return;
    }
    if (path === '/download') {
      const total = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n'));
      const chunk = Buffer.alloc(64 * 1024, 7);
      let sent = 0;
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      const more = () => {
        while (sent < total) {
          const part = chunk.subarray(0, Math.min(chunk.length, total - sent));
          sent += part.length;
          if (!res.write(part)) return void res.once('drain', more);
        }
        res.end();
      };
      return more();
    }
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ method: req.method, url: req.url, rawHeaders: req.rawHeaders }));
  });
  const wss = new WebSocketServer({ server });
  wss.on('headers', (_h, req) => seen.push({ method: 'UPGRADE', url: req.url ?? '', rawHeaders: req.rawHeaders }));
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      if (!isBinary && data.toString() === 'bye') return ws.close(4001, 'bye');
      ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
  });
  const port = await listen(server);
  return {
    port,
    seen,
    closes,
    release: () => {
      for (const r of held) r.end('last\n');
      held.clear();
    },
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await closeServer(server);
    },
  };
}

export interface Cluster {
  a: Gateway;
  b: Gateway;
  /** A's public listener. */
  aUrl: string;
  aPort: number;
  /** B's public listener. */
  bUrl: string;
  /** B's peer listener. */
  peer: ListenAddress;
  /** What A's route to the app says (reload A with another to change it). */
  target: PeerTarget;
  /** A's config (the app as the cluster registers it: no port on A). */
  aConfig: Record<string, unknown>;
  close(): Promise<void>;
}

export const SECRET = 'cluster-secret-0123456789abcdef';

export interface ClusterOptions {
  /** The app's entry on both nodes (name `web` unless given); B's gets the app's port. */
  app?: Record<string, unknown>;
  /** Top-level keys of both configs (auth, users…). */
  top?: Record<string, unknown>;
  /** Top-level keys of A's config only. */
  aTop?: Record<string, unknown>;
  bOptions?: GatewayOptions;
  aOptions?: GatewayOptions;
  /** B's peer listener options (secret defaults to SECRET). */
  peer?: Partial<PeerListenOptions>;
  /** The PeerTarget's fields for A (secret defaults to SECRET). */
  target?: Partial<PeerTarget>;
}

/** Node B (the app's) with its peer listener, node A routing the app to it. */
export async function startCluster(app: App, o: ClusterOptions = {}): Promise<Cluster> {
  const entry = { name: 'web', ...o.app };
  const b = createGateway({ ...o.top, apps: [{ ...entry, port: app.port }] }, o.bOptions);
  const bAddr = await b.listen('127.0.0.1', 0);
  const peer = await b.listenPeer({ host: '127.0.0.1', port: 0, secret: () => SECRET, ...o.peer });
  const aConfig = { ...o.top, ...o.aTop, apps: [{ ...entry, cmd: 'true' }] };
  const a = createGateway(aConfig, o.aOptions);
  const target: PeerTarget = { node: 'b', url: peer.url, secret: SECRET, ...o.target };
  a.reload(aConfig, { peers: new Map([[entry.name as string, target]]) });
  const addr = await a.listen('127.0.0.1', 0);
  return {
    a,
    b,
    aUrl: addr.url,
    aPort: addr.port,
    bUrl: bAddr.url,
    peer,
    target,
    aConfig,
    close: async () => {
      await a.drain(200);
      await b.drain(200);
    },
  };
}

/** Every value of a header in a raw list, in order. */
export function valuesOf(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name.toLowerCase()) out.push(raw[i + 1]);
  return out;
}

/** Opens a WebSocket through A, resolved once open. */
export function openThrough(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => ok(ws));
    ws.once('error', fail);
    ws.once('unexpected-response', (_req, res) => fail(Object.assign(new Error(`unexpected response ${res.statusCode}`), { status: res.statusCode, headers: res.headers })));
  });
}
