/**
 * Test helpers: real servers on 127.0.0.1 port 0, a gateway in-process, and
 * small promise wrappers. Nothing here mocks the network.
 */
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import WebSocket, { WebSocketServer, type ServerOptions } from 'ws';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/gateway.js';
import { subscribe, type EventMap, type EventName } from '../../src/events.js';

export interface Running {
  port: number;
  url: string;
  close(): Promise<void>;
}

const tracked = new WeakMap<net.Server, Set<net.Socket>>();

export async function listen(server: http.Server | net.Server): Promise<number> {
  const sockets = new Set<net.Socket>();
  tracked.set(server, sockets);
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Closes a server and every connection it still has (raw fixtures may never read to EOF). */
export function closeServer(server: http.Server | net.Server): Promise<void> {
  (server as http.Server).closeAllConnections?.();
  for (const s of tracked.get(server) ?? []) s.destroy();
  return new Promise((ok) => server.close(() => ok()));
}

/** A plain HTTP upstream. */
export async function httpUpstream(handler: http.RequestListener): Promise<Running & { server: http.Server }> {
  const server = http.createServer(handler);
  const port = await listen(server);
  return { server, port, url: `http://127.0.0.1:${port}`, close: () => closeServer(server) };
}

export interface WsUpstream extends Running {
  wss: WebSocketServer;
  server: http.Server;
  /** Handshake requests the upstream received. */
  handshakes: http.IncomingMessage[];
}

/** A WebSocket echo upstream (built on `ws`), also answering plain HTTP with `http-ok <path>`. */
export async function wsUpstream(options: Omit<ServerOptions, 'server' | 'port'> = {}, onConnection?: (ws: WebSocket, req: http.IncomingMessage) => void): Promise<WsUpstream> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`http-ok ${req.url}`);
  });
  const wss = new WebSocketServer({ server, maxPayload: 256 * 1024 * 1024, ...options });
  const handshakes: http.IncomingMessage[] = [];
  wss.on('headers', (_h, req) => handshakes.push(req));
  wss.on('connection', (ws, req) => {
    if (onConnection) return onConnection(ws, req);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const port = await listen(server);
  return {
    wss,
    server,
    handshakes,
    port,
    url: `ws://127.0.0.1:${port}`,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await closeServer(server);
    },
  };
}

export interface TestGateway extends Running {
  gw: Gateway;
  /** `ws://127.0.0.1:port` */
  wsUrl: string;
}

export async function startGateway(config: unknown, options: GatewayOptions = {}): Promise<TestGateway> {
  const gw = createGateway(config, options);
  const addr = await gw.listen('127.0.0.1', 0);
  return { gw, port: addr.port, url: addr.url, wsUrl: `ws://127.0.0.1:${addr.port}`, close: () => gw.drain(200) };
}

/** Opens a WebSocket; resolves when open, rejects with the handshake failure. */
export function openWs(url: string, protocols?: string | string[], options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('open', () => ok(ws));
    ws.once('error', fail);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => fail(Object.assign(new Error(`unexpected response ${res.statusCode}`), { status: res.statusCode, headers: res.headers, body })));
    });
  });
}

export interface CloseInfo {
  code: number;
  reason: string;
  opened: boolean;
}

/** Connects and waits for the close; for failures that complete the handshake then close. */
export function wsCloseOf(url: string, protocols?: string | string[], options: WebSocket.ClientOptions = {}): Promise<CloseInfo> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(url, protocols, options);
    let opened = false;
    ws.once('open', () => (opened = true));
    ws.once('close', (code, reason) => ok({ code, reason: reason.toString(), opened }));
    ws.once('error', (err) => {
      if (!opened) fail(err);
    });
  });
}

export function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((ok, fail) => {
    ws.once('message', (data, isBinary) => ok({ data: data as Buffer, isBinary }));
    ws.once('close', (code) => fail(new Error(`closed ${code} before a message arrived`)));
  });
}

export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: -1, reason: 'already closed' });
  return new Promise((ok) => ws.once('close', (code, reason) => ok({ code, reason: reason.toString() })));
}

/** Sends a raw HTTP request and reads the whole raw response (until the server closes, or `untilMs`). */
export function rawRequest(port: number, text: string, untilMs = 2000): Promise<string> {
  return new Promise((ok, fail) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      ok(out);
    }, untilMs);
    sock.on('data', (d) => (out += d.toString('latin1')));
    sock.on('close', () => {
      clearTimeout(timer);
      ok(out);
    });
    sock.on('error', fail);
    sock.write(text);
  });
}

/** Collects events of one kind from the gateway under test. */
export function collect<N extends EventName>(name: N, gatewayId?: string): { events: EventMap[N][]; stop: () => void } {
  const events: EventMap[N][] = [];
  const stop = subscribe(name, (e) => {
    if (!gatewayId || (e as { gateway?: string }).gateway === gatewayId) events.push(e);
  });
  return { events, stop };
}

export async function waitFor<T>(fn: () => T | undefined | false | null, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
