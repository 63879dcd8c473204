/**
 * HTTP test helpers: a request that returns the raw header list (so repeated
 * headers and case survive), raw TCP upstreams that write exact bytes, temp
 * directories and a self-signed certificate made by the system's openssl.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeServer, listen } from './net.js';

export interface Reply {
  status: number;
  statusMessage: string;
  headers: http.IncomingHttpHeaders;
  /** `[name, value, name, value, …]` as received. */
  rawHeaders: string[];
  body: Buffer;
  text: string;
}

export interface RequestOptions {
  method?: string;
  /** An object, or a raw list `[name, value, …]` to send repeated headers. */
  headers?: http.OutgoingHttpHeaders | string[];
  body?: string | Buffer;
  agent?: http.Agent | false;
  timeoutMs?: number;
}

/** One request on a fresh connection (unless an agent is given); reads the whole body. */
export function request(url: string, opts: RequestOptions = {}): Promise<Reply> {
  return new Promise((ok, fail) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers as http.OutgoingHttpHeaders, agent: opts.agent ?? false });
    const timer = setTimeout(() => req.destroy(new Error(`no complete answer to ${opts.method ?? 'GET'} ${url} in ${opts.timeoutMs ?? 20_000} ms`)), opts.timeoutMs ?? 20_000);
    req.on('error', (err) => {
      clearTimeout(timer);
      fail(err);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', (err) => {
        clearTimeout(timer);
        fail(err);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks);
        ok({ status: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: res.headers, rawHeaders: res.rawHeaders, body, text: body.toString('utf8') });
      });
    });
    req.end(opts.body);
  });
}

/** Every value of a header in a raw header list, in order. */
export function rawValues(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name.toLowerCase()) out.push(raw[i + 1]);
  return out;
}

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export interface RawUpstream {
  server: net.Server;
  port: number;
  /** Sockets accepted so far. */
  sockets: net.Socket[];
  close(): Promise<void>;
}

/** A TCP server that hands each connection to `onSocket` (for upstreams that misbehave on purpose). */
export async function rawUpstream(onSocket: (socket: net.Socket) => void): Promise<RawUpstream> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => s.destroy());
    onSocket(s);
  });
  const port = await listen(server);
  return {
    server,
    port,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      return closeServer(server);
    },
  };
}

export interface TempDir {
  path: string;
  file(name: string): string;
  remove(): void;
}

export function tempDir(prefix = 'porthole-test-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, file: (name) => join(path, name), remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A self-signed certificate for CN=localhost (also 127.0.0.1 in the SAN), made with openssl. */
export function selfSignedCert(dir: TempDir): { key: Buffer; cert: Buffer } {
  const key = dir.file('key.pem');
  const cert = dir.file('cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(key), cert: readFileSync(cert) };
}

/** Resolves when `fn` returns true; rejects after `timeoutMs`. Polls every 10 ms. */
export async function until(fn: () => boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
