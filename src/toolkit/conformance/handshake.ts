/**
 * The opening handshake, written by hand on a plain net/tls socket (RFC 6455
 * §4.1), so that after it the cases own every byte of the connection.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { ConformanceConnectError, ConformanceHandshakeError } from '../../errors.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface HandshakeOptions {
  /** ws:// or wss:// URL. */
  url: string;
  origin?: string;
  headers?: Record<string, string>;
  /** wss: accept any certificate. */
  insecure?: boolean;
  /** wss: extra trusted CA (PEM). */
  ca?: Buffer;
  timeoutMs: number;
  /** A Sec-WebSocket-Extensions offer (families 12 and 13); without it, a server that selects an extension fails the handshake. */
  extensions?: string;
}

export interface OpenSocket {
  socket: net.Socket;
  /** Bytes after the 101 response head: already the server's first frames. */
  leftover: Buffer;
  /** The response head as received (for the report). */
  responseHead: string;
  /** The server's Sec-WebSocket-Extensions, every such header joined with ", " (only when extensions were offered). */
  extensions?: string;
}

/** Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** Connects, upgrades, and checks the 101. Rejects with a Conformance*Error. */
export function openWebSocket(opts: HandshakeOptions): Promise<OpenSocket> {
  const url = new URL(opts.url);
  const secure = url.protocol === 'wss:';
  const port = Number(url.port || (secure ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve, reject) => {
    let settled = false;
    const socket: net.Socket = secure
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: !opts.insecure, ca: opts.ca ? [...tls.rootCertificates, opts.ca.toString()] : undefined })
      : net.connect({ host, port });
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new ConformanceConnectError(`${opts.url}: no answer to the opening handshake within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    socket.setNoDelay(true);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const phase = head === undefined ? 'connect' : 'handshake';
      const certificate = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(err.code ?? '');
      const hint = certificate ? ' (the server\'s certificate is not trusted: --ca FILE trusts its CA, --insecure skips the check)' : '';
      fail(new ConformanceConnectError(`${opts.url}: ${phase} failed: ${err.code ?? err.message}${hint}`, { cause: err }));
    });
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      const hostHeader = url.port ? `${url.hostname}:${url.port}` : url.hostname;
      const lines = [
        `GET ${url.pathname || '/'}${url.search} HTTP/1.1`,
        `Host: ${hostHeader}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${key}`,
        'Sec-WebSocket-Version: 13',
      ];
      if (opts.origin) lines.push(`Origin: ${opts.origin}`);
      if (opts.extensions) lines.push(`Sec-WebSocket-Extensions: ${opts.extensions}`);
      for (const [name, value] of Object.entries(opts.headers ?? {})) lines.push(`${name}: ${value}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      head = Buffer.alloc(0);
    });
    let head: Buffer | undefined;
    const onData = (data: Buffer) => {
      head = Buffer.concat([head ?? Buffer.alloc(0), data]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > 64 * 1024) fail(new ConformanceHandshakeError(`${opts.url}: the answer to the upgrade has no end of headers within 64 KiB`));
        return;
      }
      socket.off('data', onData);
      const text = head.subarray(0, end).toString('latin1');
      const leftover = head.subarray(end + 4);
      const problem = checkResponse(text, key, Boolean(opts.extensions));
      if (problem) return fail(new ConformanceHandshakeError(`${opts.url}: ${problem}`));
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve({ socket, leftover, responseHead: text, ...(opts.extensions ? { extensions: extensionsOf(text) } : {}) });
    };
    socket.on('data', onData);
    socket.once('end', () => {
      if (!settled) fail(new ConformanceHandshakeError(`${opts.url}: the server closed the connection without answering the upgrade`));
    });
  });
}

/** Every Sec-WebSocket-Extensions header of a response head, joined with ", " (undefined when there is none). */
function extensionsOf(head: string): string | undefined {
  const values = head
    .split('\r\n')
    .slice(1)
    .filter((line) => /^sec-websocket-extensions\s*:/i.test(line))
    .map((line) => line.slice(line.indexOf(':') + 1).trim());
  return values.length ? values.join(', ') : undefined;
}

/** Why a response head is not a valid 101 for this key, or undefined. With `offered`, an extension the server selects is for the case to judge. */
export function checkResponse(head: string, key: string, offered = false): string | undefined {
  const [statusLine, ...headerLines] = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!m) return `the answer to the upgrade is not HTTP: ${JSON.stringify(statusLine.slice(0, 80))}`;
  if (m[1] !== '101') return `the server refused the upgrade: ${statusLine}`;
  const headers = new Map<string, string>();
  for (const line of headerLines) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  if ((headers.get('upgrade') ?? '').toLowerCase() !== 'websocket') return 'the 101 has no "Upgrade: websocket"';
  if (!/(^|,)\s*upgrade\s*(,|$)/i.test(headers.get('connection') ?? '')) return 'the 101 has no "Connection: Upgrade"';
  const accept = headers.get('sec-websocket-accept');
  if (accept !== acceptFor(key)) return `Sec-WebSocket-Accept is ${accept === undefined ? 'missing' : JSON.stringify(accept)}, expected ${acceptFor(key)} for the key sent (RFC 6455 §4.2.2)`;
  if (!offered && headers.has('sec-websocket-extensions')) return `the server selected an extension that was not offered: ${headers.get('sec-websocket-extensions')}`;
  return undefined;
}
