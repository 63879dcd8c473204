/**
 * The transport steps of `porthole doctor`: resolve the host, open TCP, and
 * set up TLS — each measured and each failure explained in words. TLS is set
 * up without verification and verified afterwards, so the doctor can show the
 * certificate it is about to refuse.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import tls from 'node:tls';

export interface Address {
  address: string;
  family: number;
}

export type Resolved = { addresses: Address[]; ms: number; literal: boolean } | { error: string; code?: string; ms: number };

/** Resolves `host` (an IP literal resolves to itself) within `timeoutMs`. */
export async function resolveHost(host: string, timeoutMs: number): Promise<Resolved> {
  const started = performance.now();
  const family = net.isIP(host);
  if (family) return { addresses: [{ address: host, family }], ms: 0, literal: true };
  let timer: NodeJS.Timeout | undefined;
  try {
    const addresses = await Promise.race([
      lookup(host, { all: true, verbatim: true }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`no answer in ${timeoutMs / 1000} s`), { code: 'ETIMEOUT' })), timeoutMs);
      }),
    ]);
    return { addresses, ms: performance.now() - started, literal: false };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { error: e.message, code: e.code, ms: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

export interface TcpAttempt {
  address: string;
  /** Error code, or 'timeout'; undefined for the one that connected. */
  error?: string;
  ms: number;
}

export type Connected = { socket: net.Socket; address: string; ms: number; attempts: TcpAttempt[] } | { attempts: TcpAttempt[] };

/** Tries each address in turn until one accepts, sharing `timeoutMs` between them. */
export async function connectTcp(addresses: readonly Address[], port: number, timeoutMs: number): Promise<Connected> {
  const attempts: TcpAttempt[] = [];
  const deadline = performance.now() + timeoutMs;
  for (const { address } of addresses) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    const started = performance.now();
    const result = await connectOne(address, port, left);
    const ms = performance.now() - started;
    if ('socket' in result) {
      attempts.push({ address, ms });
      return { socket: result.socket, address, ms, attempts };
    }
    attempts.push({ address, error: result.error, ms });
  }
  return { attempts };
}

/** Swallows socket errors nobody else listens for: a report is the product, never a crash. */
const ignore = (): void => {};

function connectOne(address: string, port: number, timeoutMs: number): Promise<{ socket: net.Socket } | { error: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ error: 'timeout' });
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ error: err.code ?? err.message });
    };
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.on('error', ignore);
      resolve({ socket });
    });
    socket.once('error', onError);
  });
}

export interface CertificateFacts {
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  /** Milliseconds until it expires (negative once expired). */
  expiresInMs: number;
  altNames: string;
  selfSigned: boolean;
}

export interface TlsResult {
  socket: tls.TLSSocket;
  ms: number;
  protocol: string;
  cipher: string;
  alpn: string | false;
  cert: CertificateFacts | undefined;
  /** OpenSSL's verdict on the chain (`DEPTH_ZERO_SELF_SIGNED_CERT`…), undefined when trusted. */
  chainError: string | undefined;
  /** The certificate does not cover the host name, undefined when it does. */
  hostnameError: string | undefined;
}

export type TlsOutcome = TlsResult | { error: string; code?: string; ms: number };

/**
 * TLS over an open socket, with SNI for host names (RFC 6066 §3 forbids it for
 * IP literals) and ALPN `http/1.1`: the upgrade of RFC 6455 exists only in
 * HTTP/1.1 (over HTTP/2 it needs RFC 8441, which the doctor does not test).
 */
export function startTls(socket: net.Socket, host: string, opts: { ca?: Buffer; timeoutMs: number }): Promise<TlsOutcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    let secure: tls.TLSSocket;
    try {
      secure = tls.connect({
        socket,
        servername: net.isIP(host) ? undefined : host,
        ALPNProtocols: ['http/1.1'],
        ca: opts.ca,
        // Verified below, after the certificate has been read: the doctor shows what it refuses.
        rejectUnauthorized: false,
      });
    } catch (err) {
      // A --ca file that is not PEM fails here, before any byte is sent.
      const e = err as NodeJS.ErrnoException;
      resolve({ error: e.message, code: e.code, ms: 0 });
      return;
    }
    const onError = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ error: err.message, code: err.code, ms: performance.now() - started });
    };
    const timer = setTimeout(() => {
      secure.destroy();
      resolve({ error: `no TLS handshake within ${opts.timeoutMs / 1000} s`, code: 'timeout', ms: performance.now() - started });
    }, opts.timeoutMs);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.off('error', onError);
      secure.on('error', ignore);
      const peer = secure.getPeerCertificate();
      const hasCert = peer && Object.keys(peer).length > 0;
      const identity = hasCert ? tls.checkServerIdentity(host, peer) : undefined;
      resolve({
        socket: secure,
        ms: performance.now() - started,
        protocol: secure.getProtocol() ?? 'unknown',
        cipher: secure.getCipher()?.name ?? 'unknown',
        alpn: secure.alpnProtocol ?? false,
        cert: hasCert ? certificateFacts(peer) : undefined,
        chainError: secure.authorized ? undefined : String(secure.authorizationError ?? 'UNKNOWN'),
        hostnameError: identity?.message,
      });
    });
    secure.once('error', onError);
  });
}

function certificateFacts(c: tls.PeerCertificate): CertificateFacts {
  const name = (o: Record<string, unknown> | undefined) =>
    o ? Object.entries(o).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`).join(', ') : '';
  const subject = name(c.subject as unknown as Record<string, unknown>);
  const issuer = name(c.issuer as unknown as Record<string, unknown>);
  return {
    subject,
    issuer,
    validFrom: c.valid_from,
    validTo: c.valid_to,
    expiresInMs: new Date(c.valid_to).getTime() - Date.now(),
    altNames: c.subjectaltname ?? '',
    selfSigned: subject === issuer,
  };
}
