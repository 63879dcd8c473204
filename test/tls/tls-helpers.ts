/**
 * Helpers for the TLS listener's tests: certificates made by Debian's
 * openssl (an implementation independent of the gateway's own), HTTPS and
 * raw TLS clients that report the certificate they were served.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { ensureTools } from '../../scripts/ensure-tools.mjs';

export function tempDir(prefix = 'porthole-tls-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A self-signed ECDSA P-256 certificate for `names` (DNS names and IPs), written as `{base}.crt` / `{base}.key` in `dir`. */
export function selfSigned(dir: string, base: string, names: readonly string[] = ['localhost', '127.0.0.1']): { cert: string; key: string; certFile: string; keyFile: string } {
  ensureTools([{ check: '/usr/bin/openssl', pkg: 'openssl' }]);
  const certFile = join(dir, `${base}.crt`);
  const keyFile = join(dir, `${base}.key`);
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  const tmpCert = `${certFile}.new`;
  const tmpKey = `${keyFile}.new`;
  execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', tmpKey, '-out', tmpCert, '-days', '2', '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${san}`], { stdio: 'ignore' });
  const cert = execFileSync('cat', [tmpCert]).toString();
  const key = execFileSync('cat', [tmpKey]).toString();
  rmSync(tmpCert);
  rmSync(tmpKey);
  writeFileSync(certFile, cert);
  writeFileSync(keyFile, key);
  return { cert, key, certFile, keyFile };
}

export interface Served {
  /** SHA-256 fingerprint of the certificate the server presented. */
  fingerprint: string;
  serial: string;
  subjectaltname: string | undefined;
  validTo: string;
  authorized: boolean;
  authorizationError: string | undefined;
  alpn: string | false | null;
}

/** Connects with TLS to 127.0.0.1:port and reports the certificate presented (verification against `ca` reported, not enforced). */
export function servedCertificate(port: number, opts: { ca?: string | string[]; servername?: string } = {}): Promise<Served> {
  return new Promise((ok, fail) => {
    const sock = tls.connect({ host: '127.0.0.1', port, servername: opts.servername ?? 'localhost', ca: opts.ca, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const c = sock.getPeerCertificate();
      ok({
        fingerprint: c.fingerprint256,
        serial: c.serialNumber,
        subjectaltname: c.subjectaltname,
        validTo: c.valid_to,
        authorized: sock.authorized,
        authorizationError: sock.authorizationError ? String(sock.authorizationError) : undefined,
        alpn: sock.alpnProtocol,
      });
      sock.end();
    });
    sock.on('error', fail);
  });
}

export interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET (or another method) over https://, verifying the server against `ca`. */
export function httpsRequest(url: string, ca: string | string[], opts: { method?: string; headers?: Record<string, string>; body?: string; servername?: string } = {}): Promise<Fetched> {
  return new Promise((ok, fail) => {
    const req = https.request(url, { method: opts.method ?? 'GET', headers: opts.headers, ca, servername: opts.servername, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', fail);
    req.end(opts.body);
  });
}
