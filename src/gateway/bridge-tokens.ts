/**
 * Bridge targets chosen by token, in websockify's TokenFile format
 * (`--token-plugin TokenFile --token-source F`): one `token: host:port` per
 * line, `#` comments, blank lines ignored; a directory of such files works
 * too. The file is read again when it changes, checked on each connection
 * (an async stat, so a busy bridge never blocks on it, and it works where
 * file watching does not: NFS, bind mounts, editors that replace the file).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { parseHostPort, type HostPort } from '../config/host-port.js';

export type TokenLookup = { target: HostPort } | { problem: string };

/**
 * Where a bridge finds the target of a token: this file source, or Redis
 * (bridge-token-redis.ts). `lookup` resolves a problem for a token that
 * picks nothing (close 1008) and rejects with a PortholeError when the
 * source itself failed.
 */
export interface TokenSource {
  lookup(token: string | undefined): Promise<TokenLookup>;
  /** What log lines and pages say the bridge connects to: `the targets in …`. */
  readonly label: string;
}

interface Loaded {
  signature: string;
  tokens: ReadonlyMap<string, HostPort>;
  /** Why the file could not be read, if it could not. */
  error?: string;
}

export class TokenTargets implements TokenSource {
  private loaded: Loaded | null = null;
  private loading: Promise<Loaded> | null = null;

  /**
   * @param path a token file, or a directory of them
   * @param warn told about lines that are not `token: host:port`, once per change of the file
   */
  constructor(
    readonly path: string,
    private readonly warn: (message: string) => void = () => {},
  ) {}

  get label(): string {
    return `the targets in ${this.path}`;
  }

  /** The target of `token`, or why there is none (the reason a client is closed with). */
  async lookup(token: string | undefined): Promise<TokenLookup> {
    if (!token) return { problem: 'no token: add ?token=NAME to the WebSocket URL' };
    const loaded = await this.current();
    const target = loaded.tokens.get(token);
    if (target) return { target };
    if (loaded.error) return { problem: `token file cannot be read (${loaded.error})` };
    return { problem: `unknown token ${JSON.stringify(token.length > 40 ? `${token.slice(0, 40)}…` : token)}` };
  }

  private current(): Promise<Loaded> {
    // Concurrent connections share one check (and one read).
    this.loading ??= this.refresh().finally(() => (this.loading = null));
    return this.loading;
  }

  private async refresh(): Promise<Loaded> {
    let files: string[];
    let signature: string;
    try {
      const st = await stat(this.path);
      if (st.isDirectory()) {
        const names = (await readdir(this.path)).filter((n) => !n.startsWith('.')).sort();
        const stats = await Promise.all(names.map((n) => stat(join(this.path, n)).then((s) => [n, s] as const, () => null)));
        const regular = stats.filter((x): x is NonNullable<typeof x> => x !== null && x[1].isFile());
        files = regular.map(([n]) => join(this.path, n));
        signature = regular.map(([n, s]) => `${n}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`).join('|');
      } else {
        files = [this.path];
        signature = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
      }
    } catch (err) {
      const error = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.loaded = { signature: `error:${error}`, tokens: new Map(), error };
      return this.loaded;
    }
    if (this.loaded?.signature === signature) return this.loaded;
    const tokens = new Map<string, HostPort>();
    try {
      for (const file of files) parseTokenFile(await readFile(file, 'utf8'), file, tokens, this.warn);
    } catch (err) {
      const error = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.loaded = { signature: `error:${error}`, tokens: new Map(), error };
      return this.loaded;
    }
    this.loaded = { signature, tokens };
    return this.loaded;
  }
}

/** Parses one token file into `into`; later lines win, as in websockify. */
export function parseTokenFile(text: string, name: string, into: Map<string, HostPort>, warn: (message: string) => void = () => {}): Map<string, HostPort> {
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    // websockify splits on ": "; a bare ":" is accepted too.
    let colon = line.indexOf(': ');
    if (colon === -1) colon = line.indexOf(':');
    const token = colon === -1 ? '' : line.slice(0, colon).trim();
    let target = colon === -1 ? '' : line.slice(colon + 1).trim();
    // websockify takes the last colon as the port's, so an IPv6 address may come without brackets.
    if (/^[0-9A-Fa-f]*:[0-9A-Fa-f:.]*:\d+$/.test(target)) target = target.replace(/^(.*):(\d+)$/, '[$1]:$2');
    const parsed = token && target ? parseHostPort(target) : 'expected "token: host:port"';
    if (typeof parsed === 'string') warn(`${name}:${i + 1}: ${parsed}`);
    else into.set(token, parsed);
  });
  return into;
}

/**
 * The token a client sent: the `token` query parameter, else a `token`
 * cookie (websockify reads both, in that order).
 */
export function tokenOf(req: IncomingMessage): string | undefined {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  if (q !== -1) {
    const t = new URLSearchParams(url.slice(q + 1)).get('token');
    if (t) return t.trim();
  }
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === 'token') {
      const v = part.slice(eq + 1).trim();
      try {
        return decodeURIComponent(v) || undefined;
      } catch {
        return v || undefined;
      }
    }
  }
  return undefined;
}
