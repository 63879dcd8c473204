/**
 * `tls: internal` (issue 10, section 1): a certificate authority of this
 * machine's own, kept in the data directory, and the leaf certificates it
 * signs for the gateway. Like Caddy's internal issuer: an ECDSA P-256 root
 * that lives ten years, short-lived leaves renewed at two thirds of their
 * lifetime. X.509 is built by @peculiar/x509 on WebCrypto, never by hand.
 *
 *     DATA/private/tls/ca.crt   the root certificate (what `porthole trust` installs)
 *     DATA/private/tls/ca.key   its private key, mode 0600
 */
import { createHash, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
// @peculiar/x509 v2 resolves its algorithms through tsyringe, which needs the Reflect metadata API first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { TlsCaError } from '../errors.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC: EcKeyGenParams & EcKeyImportParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const CA_LIFETIME_MS = 10 * 365 * 24 * 3600_000;

/** Where the local CA of a data directory lives. */
export function localCaPaths(dataDir: string): { dir: string; cert: string; key: string } {
  const dir = join(dataDir, 'private', 'tls');
  return { dir, cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
}

export interface LocalCa {
  /** PEM of the root certificate. */
  certPem: string;
  /** The file it was read from (or written to). */
  certFile: string;
  /** SHA-256 of the DER certificate, as colon-separated hex (what browsers show). */
  fingerprint: string;
  /** The subject's common name (also the nickname `porthole trust` gives it in an NSS database). */
  name: string;
  cert: x509.X509Certificate;
  key: CryptoKey;
  /** True when this call created it. */
  created: boolean;
}

/**
 * Reads the data directory's CA, or creates one (key 0600, directories 0700).
 * Throws TlsCaError when the files exist but cannot be read or do not match.
 */
export async function ensureLocalCa(dataDir: string): Promise<LocalCa> {
  const paths = localCaPaths(dataDir);
  if (existsSync(paths.cert) || existsSync(paths.key)) return loadCa(paths);
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  // The host name tells two machines' CAs apart in a trust store that holds both.
  const name = `Porthole Local CA (${hostname()} ${new Date().toISOString().slice(0, 10)})`;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [name] }, { O: ['Porthole'] }],
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + CA_LIFETIME_MS),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = toPem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as webcrypto.CryptoKey));
  const certPem = cert.toString('pem') + '\n';
  // The pair is written into a directory of its own, then renamed into place whole: a
  // start killed half-way leaves no certificate without its key, and of two processes
  // making a CA at once (`porthole trust` beside a first `porthole serve`) one wins and
  // the other uses the winner's, so the CA a browser trusts is the one that signs.
  let staging: string | undefined;
  try {
    mkdirSync(dirname(paths.dir), { recursive: true, mode: 0o700 });
    staging = mkdtempSync(join(dirname(paths.dir), '.tls-new-'));
    chmodSync(staging, 0o700);
    writeFileSync(join(staging, 'ca.key'), keyPem, { mode: 0o600 });
    writeFileSync(join(staging, 'ca.crt'), certPem, { mode: 0o644 });
    renameSync(staging, paths.dir);
  } catch (err) {
    if (staging) rmSync(staging, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(paths.cert)) return loadCa(paths);
    throw new TlsCaError(`cannot write the local CA in ${paths.dir}: ${(err as Error).message}`, { cause: err });
  }
  return { certPem, certFile: paths.cert, fingerprint: fingerprintOf(cert), name, cert, key: keys.privateKey, created: true };
}

async function loadCa(paths: { cert: string; key: string }): Promise<LocalCa> {
  let certPem: string;
  let keyPem: string;
  try {
    certPem = readFileSync(paths.cert, 'utf8');
    keyPem = readFileSync(paths.key, 'utf8');
  } catch (err) {
    throw new TlsCaError(`cannot read the local CA (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); move ${paths.cert} and ${paths.key} away to make a new one`, { cause: err });
  }
  try {
    const cert = new x509.X509Certificate(certPem);
    const key = await webcrypto.subtle.importKey('pkcs8', fromPem(keyPem), EC, false, ['sign']);
    // The key must be the certificate's: sign something and check it with the certificate's public key.
    const probe = Buffer.from('porthole local ca');
    const sig = await webcrypto.subtle.sign(SIGNING, key, probe);
    const pub = await cert.publicKey.export(EC, ['verify']);
    if (!(await webcrypto.subtle.verify(SIGNING, pub as webcrypto.CryptoKey, sig, probe))) throw new Error('the key is not the certificate\'s');
    const name = cert.subjectName.getField('CN')[0] ?? cert.subject;
    return { certPem, certFile: paths.cert, fingerprint: fingerprintOf(cert), name, cert, key: key as unknown as CryptoKey, created: false };
  } catch (err) {
    if (err instanceof TlsCaError) throw err;
    throw new TlsCaError(`the local CA in ${paths.cert} is not usable (${(err as Error).message}); move it and its key away to make a new one`, { cause: err });
  }
}

export interface Leaf {
  certPem: string;
  keyPem: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** Every name and address it is valid for. */
  names: readonly string[];
}

/**
 * A server certificate signed by the CA for `names` (DNS names, `*.` wildcards,
 * IPv4 and IPv6 addresses), valid from a little before now for `lifetimeMs`.
 */
export async function issueLeaf(ca: LocalCa, names: readonly string[], lifetimeMs: number): Promise<Leaf> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  // Backdated a little for clocks that run behind (Caddy backdates too); never by more
  // than a tenth of a very short lifetime.
  const notBefore = new Date(now - Math.min(5 * 60_000, Math.floor(lifetimeMs / 10)));
  const notAfter = new Date(now + lifetimeMs);
  const serial = randomSerial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: [{ CN: [names.find((n) => !isIP(n) && !n.startsWith('*.')) ?? 'localhost'] }],
    issuer: ca.cert.subject,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: isIP(n) ? ('ip' as const) : ('dns' as const), value: n }))),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
    ],
  });
  const keyPem = toPem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as webcrypto.CryptoKey));
  return { certPem: cert.toString('pem') + '\n', keyPem, serial, notBefore, notAfter, names };
}

function fingerprintOf(cert: x509.X509Certificate): string {
  return createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex').toUpperCase().match(/../g)!.join(':');
}

/** A positive 128-bit serial (RFC 5280 §4.1.2.2: at most 20 octets, positive). */
function randomSerial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f;
  b[0] |= 0x01;
  return Buffer.from(b).toString('hex');
}

function toPem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function fromPem(pem: string): Buffer {
  const m = /-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/.exec(pem);
  if (!m) throw new Error('the key is not a PKCS#8 PEM "PRIVATE KEY"');
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}
