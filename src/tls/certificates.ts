/**
 * Where the listener's certificate comes from, and how it is kept fresh
 * without a restart (issue 10, section 1):
 *
 * - `tls: { cert, key }`: the PEM files, read at start and read again when
 *   either changes (the directories are watched: certbot and editors
 *   replace files rather than write into them). A pair that does not load
 *   is reported and the one in force stays.
 * - `tls: internal`: a leaf from the local CA (local-ca.ts) for every name
 *   of the gateway, issued again when the names change and renewed at two
 *   thirds of its lifetime, as Caddy does.
 *
 * Each new pair goes to `onChange`, which swaps the listener's secure
 * context: connections already open keep theirs, so no tunnel drops.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import tls from 'node:tls';
import { basename, dirname, resolve } from 'node:path';
import type { Config, TlsConfig } from '../config/schema.js';
import { PortholeError, TlsCaError, TlsCertError } from '../errors.js';
import { emit } from '../events.js';
import { certificateNames } from './host-names.js';
import type { LocalCa } from './local-ca.js';

export interface KeyPair {
  /** PEM: the certificate, then its chain. */
  cert: string;
  key: string;
}

/** Caddy's lifetime for the leaves of its internal issuer. */
export const DEFAULT_INTERNAL_LIFETIME_MS = 12 * 3600_000;
/** Renewed once this share of a leaf's validity has passed. */
const RENEW_AT = 2 / 3;
/** A renewal timer is checked against the wall clock at least this often: a machine that slept overshoots no longer than this. */
const MAX_TIMER_MS = 3600_000;
/** A certificate or key file larger than this is a mistake (or /dev/zero). */
const MAX_PEM_BYTES = 1024 * 1024;

export interface CertificateOptions {
  /** The gateway's id, for events. */
  gateway: string;
  /** Relative `tls.cert` / `tls.key` are resolved against it. */
  baseDir: string;
  /** `tls: internal` keeps its CA in `DATA/private/tls/`. */
  dataDir?: string;
  /** Leaf lifetime for `tls: internal` (tests use seconds). */
  internalLifetimeMs?: number;
  /** The listen host: a name is put in the internal certificate too. */
  listenHost?: string;
  /** A new pair to serve from now on. */
  onChange(pair: KeyPair): void;
}

/**
 * Reads and checks `tls.cert` / `tls.key` (sync: the config reload checks
 * them before it swaps anything). Throws TlsCertError naming the file and why.
 */
export function loadCertFiles(t: TlsConfig, baseDir: string): KeyPair & { files: string[]; notAfter?: string } {
  const certFile = resolve(baseDir, t.cert!);
  const keyFile = resolve(baseDir, t.key!);
  const cert = readPem(certFile, 'tls.cert');
  const key = readPem(keyFile, 'tls.key');
  if (!/-----BEGIN CERTIFICATE-----/.test(cert)) throw new TlsCertError(`tls.cert ${certFile}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) throw new TlsCertError(`tls.key ${keyFile}: no PEM private key in it (-----BEGIN … PRIVATE KEY-----)`);
  let notAfter: string | undefined;
  try {
    notAfter = new Date(new X509Certificate(cert).validTo).toISOString();
  } catch (err) {
    throw new TlsCertError(`tls.cert ${certFile}: not a valid certificate (${(err as Error).message})`, { cause: err });
  }
  try {
    tls.createSecureContext({ cert, key });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = /KEY_VALUES_MISMATCH|key values mismatch/i.test(`${e.code} ${e.message}`) ? 'the key is not the certificate\'s' : e.message;
    throw new TlsCertError(`tls.key ${keyFile} with tls.cert ${certFile}: ${why}`, { cause: err });
  }
  return { cert, key, files: [certFile, keyFile], notAfter };
}

function readPem(file: string, what: string): string {
  try {
    // Checked first: reading a FIFO would block the event loop, /dev/zero would fill memory.
    const st = statSync(file);
    if (!st.isFile()) throw new TlsCertError(`${what} ${file}: not a regular file`);
    if (st.size > MAX_PEM_BYTES) throw new TlsCertError(`${what} ${file}: larger than ${MAX_PEM_BYTES} bytes`);
    return readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof TlsCertError) throw err;
    throw new TlsCertError(`${what} ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
}

export class Certificates {
  private tls: TlsConfig;
  private cfg: Config;
  private watchers: FSWatcher[] = [];
  private debounce: NodeJS.Timeout | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private current: KeyPair | null = null;
  private ca: LocalCa | null = null;
  private leaf: { names: string; renewAt: number; notAfter: number } | null = null;
  /** Renewals one at a time: a name change during a renewal waits for it. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    cfg: Config,
    private readonly opts: CertificateOptions,
  ) {
    this.cfg = cfg;
    this.tls = cfg.tls!;
  }

  get source(): 'files' | 'internal' {
    return this.tls.internal ? 'internal' : 'files';
  }

  /** The first pair. Throws TlsCertError / TlsCaError: the gateway does not start without one. */
  async start(): Promise<KeyPair> {
    if (this.tls.internal) {
      await this.issue('loaded');
    } else {
      const loaded = loadCertFiles(this.tls, this.opts.baseDir);
      this.current = { cert: loaded.cert, key: loaded.key };
      this.watchFiles(loaded.files);
      emit('tls', { gateway: this.opts.gateway, action: 'loaded', source: 'files', notAfter: loaded.notAfter });
    }
    return this.current!;
  }

  /**
   * A reloaded config: the files are read again (their problems were found by
   * `loadCertFiles` before the reload was accepted), an internal
   * certificate is issued again when the names it needs changed.
   */
  update(cfg: Config): void {
    const before = this.tls;
    this.cfg = cfg;
    this.tls = cfg.tls ?? before;
    if (this.tls.internal) {
      if (!before.internal) this.unwatch();
      const names = certificateNames(cfg, this.opts.listenHost).join(' ');
      if (!before.internal || !this.leaf || this.leaf.names !== names) void this.enqueue('renewed');
      return;
    }
    if (before.internal || before.cert !== this.tls.cert || before.key !== this.tls.key) {
      this.clearRenewal();
      this.unwatch();
    }
    // Read again on every reload (SIGHUP included), for file systems that do not report changes; swapped only when they differ.
    this.reloadFiles();
  }

  close(): void {
    this.closed = true;
    this.unwatch();
    this.clearRenewal();
  }

  private reloadFiles(): void {
    if (this.closed || this.tls.internal) return;
    let loaded: ReturnType<typeof loadCertFiles>;
    try {
      loaded = loadCertFiles(this.tls, this.opts.baseDir);
    } catch (err) {
      this.reject(err as PortholeError);
      // Still watched: the next write (the key after the certificate) may complete the pair.
      if (!this.watchers.length) this.watchFiles([resolve(this.opts.baseDir, this.tls.cert!), resolve(this.opts.baseDir, this.tls.key!)]);
      return;
    }
    if (!this.watchers.length) this.watchFiles(loaded.files);
    if (this.current && this.current.cert === loaded.cert && this.current.key === loaded.key) return;
    this.current = { cert: loaded.cert, key: loaded.key };
    this.opts.onChange(this.current);
    emit('tls', { gateway: this.opts.gateway, action: 'reloaded', source: 'files', notAfter: loaded.notAfter });
  }

  private watchFiles(files: string[]): void {
    const byDir = new Map<string, Set<string>>();
    for (const f of files) {
      const set = byDir.get(dirname(f)) ?? new Set<string>();
      set.add(basename(f));
      byDir.set(dirname(f), set);
    }
    for (const [dir, names] of byDir) {
      try {
        const w = watch(dir, (_event, changed) => {
          if (changed !== null && !names.has(changed.toString())) return;
          if (this.debounce) clearTimeout(this.debounce);
          // A certificate and its key are written one after the other: read them once both have landed.
          this.debounce = setTimeout(() => this.reloadFiles(), 200);
        });
        w.on('error', () => w.close());
        this.watchers.push(w);
      } catch (err) {
        emit('error', { gateway: this.opts.gateway, code: 'PH_ERR_TLS_CERT', message: `cannot watch ${dir} for certificate changes: ${(err as Error).message} (send SIGHUP after replacing them)` });
      }
    }
  }

  private unwatch(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = null;
  }

  private enqueue(action: 'renewed'): Promise<void> {
    this.queue = this.queue.then(() => this.issue(action).catch((err: PortholeError) => this.reject(err)));
    return this.queue;
  }

  private async issue(action: 'loaded' | 'renewed'): Promise<void> {
    if (this.closed) return;
    const dataDir = this.opts.dataDir ?? this.cfg.data;
    if (!dataDir) throw new TlsCaError('tls: internal keeps its certificate authority in the data directory: set `data` in the config (or createServer\'s dataDir)');
    // Loaded only here: a gateway with its own certificate (or none) never loads the X.509 library.
    const { ensureLocalCa, issueLeaf } = await import('./local-ca.js');
    this.ca ??= await ensureLocalCa(resolve(this.opts.baseDir, dataDir));
    const names = certificateNames(this.cfg, this.opts.listenHost);
    const lifetime = this.opts.internalLifetimeMs ?? DEFAULT_INTERNAL_LIFETIME_MS;
    let leaf;
    try {
      leaf = await issueLeaf(this.ca, names, lifetime);
    } catch (err) {
      throw new TlsCaError(`cannot issue a certificate from the local CA: ${(err as Error).message}`, { cause: err });
    }
    if (this.closed) return;
    const start = leaf.notBefore.getTime();
    const end = leaf.notAfter.getTime();
    this.leaf = { names: names.join(' '), renewAt: start + (end - start) * RENEW_AT, notAfter: end };
    this.current = { cert: leaf.certPem, key: leaf.keyPem };
    if (action !== 'loaded') this.opts.onChange(this.current);
    emit('tls', { gateway: this.opts.gateway, action, source: 'internal', names, notAfter: leaf.notAfter.toISOString(), serial: leaf.serial });
    this.scheduleRenewal();
  }

  private scheduleRenewal(): void {
    this.clearRenewal();
    if (this.closed || !this.leaf) return;
    const wait = Math.max(0, Math.min(this.leaf.renewAt - Date.now(), MAX_TIMER_MS));
    this.renewTimer = setTimeout(() => {
      this.renewTimer = null;
      if (this.leaf && Date.now() >= this.leaf.renewAt) void this.enqueue('renewed');
      else this.scheduleRenewal();
    }, wait);
    // A renewal never keeps a process alive that has nothing else to do.
    this.renewTimer.unref();
  }

  private clearRenewal(): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = null;
  }

  private reject(err: PortholeError): void {
    const code = err.code ?? 'PH_ERR_TLS_CERT';
    emit('tls', { gateway: this.opts.gateway, action: 'rejected', source: this.source, code, error: err.message });
    emit('error', { gateway: this.opts.gateway, code, message: `${err.message}; the certificate in force stays` });
    // An internal renewal that failed is tried again before the leaf runs out.
    if (this.tls.internal && this.leaf && !this.closed) {
      const left = this.leaf.notAfter - Date.now();
      this.clearRenewal();
      this.renewTimer = setTimeout(() => void this.enqueue('renewed'), Math.max(1000, Math.min(60_000, left / 10)));
      this.renewTimer.unref();
    }
  }
}
