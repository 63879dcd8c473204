/**
 * Bridge targets chosen by token from Redis, compatible with websockify's
 * TokenRedis (`--token-plugin TokenRedis --token-source
 * host[:port[:db[:password[:namespace]]]]`): one key per token,
 * `namespace:token` when a namespace is set, its value `host:port` or JSON
 * `{"host": "host:port"}`. JSON `{"host": "h", "port": 5900}` (port a number
 * or a string, as websockify's JSONTokenApi answers) is taken too.
 *
 * One GET per connection, nothing cached: a token deleted in Redis stops
 * working for the next connection, a token added works at once. A Redis
 * that is down or slow costs a client at most `timeoutMs` and ends in
 * TokenStoreError (close 1013), never a hang. The connection to Redis is
 * shared by every lookup of the same URL, made on first use, dropped after
 * a timeout (the next lookup connects afresh) and after a minute unused.
 */
import type { Socket } from 'node:net';
import { isIP } from 'node:net';
// Loaded at the first lookup: a gateway without Redis tokens never pays for the client (it takes ~0.5 s to load).
import type { Redis } from 'ioredis';

let ioredis: Promise<{ Redis: typeof Redis }> | undefined;
import { parseHostPort, type HostPort } from '../config/host-port.js';
import { storeLabel, type RedisTokenStore } from '../config/token-redis.js';
import { TokenStoreError } from '../errors.js';
import { emit } from '../events.js';
import { hearEveryStreamError } from '../store/redis-stream-errors.js';
import type { TokenLookup, TokenSource } from './bridge-tokens.js';

export { parseTokenRedisUrl, parseWebsockifyRedisSource, storeLabel, type RedisTokenStore } from '../config/token-redis.js';

/** Default time a lookup may take (connect included) before the client is closed with 1013. */
export const TOKEN_LOOKUP_TIMEOUT_MS = 1000;
const IDLE_CLOSE_MS = 60_000;

/**
 * The target a token's value names: `host:port`, `[v6]:port`, JSON
 * `{"host": "host:port"}` (websockify) or `{"host": "h", "port": 5900}`.
 * Returns the problem as a string for anything else. The problem never
 * quotes the value: it becomes the close reason of a client that may have
 * named any key of the db as its token (another service's session, the
 * cluster's `{prefix}secret` when the bridge shares the cluster's Redis).
 */
export function parseTokenValue(value: string): HostPort | string {
  const text = value.trim();
  const expected = 'expected "host:port" or JSON {"host": "host", "port": 5900}';
  if (!text.startsWith('{')) {
    const t = parseHostPort(text);
    return typeof t === 'string' ? `its value is not valid: ${expected}` : t;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return `its value is not valid JSON: ${expected}`;
  }
  const obj = json as { host?: unknown; port?: unknown };
  if (typeof obj !== 'object' || obj === null || typeof obj.host !== 'string') return `its JSON value has no "host" string: ${expected}`;
  if (obj.port === undefined) {
    const t = parseHostPort(obj.host);
    return typeof t === 'string' ? `its "host" has no port: ${expected}` : t;
  }
  const port = typeof obj.port === 'number' ? obj.port : typeof obj.port === 'string' && /^\d{1,5}$/.test(obj.port.trim()) ? Number(obj.port) : NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return 'its "port" is not a port from 1 to 65535';
  const host = obj.host.trim().replace(/^\[(.*)\]$/, '$1');
  const t = parseHostPort(`${host.includes(':') ? `[${host}]` : host}:${port}`);
  return typeof t === 'string' ? 'its "host" is not a host name or address' : t;
}

/** A token in a close reason: quoted, at most 40 characters. */
const shown = (token: string) => JSON.stringify(cut(token));

const cut = (s: string) => (s.length > 40 ? `${s.slice(0, 40)}…` : s);

interface Pooled {
  client: Redis;
  idle: NodeJS.Timeout | null;
  /** Lookups waiting for an answer: the idle close waits for none. */
  inflight: number;
  /** The code of the connection's last error (ECONNREFUSED…), for the close reason. */
  lastError?: string;
}

// One client per store, shared by every route and bridge that reads it: a
// reload that keeps the same URL keeps the connection.
const pool = new Map<string, Pooled>();

function poolKey(s: RedisTokenStore): string {
  return JSON.stringify([s.host, s.port, s.db, s.username ?? '', s.password ?? '', s.tls]);
}

function clientFor(s: RedisTokenStore, timeoutMs: number, RedisClient: typeof Redis): Pooled {
  const key = poolKey(s);
  const found = pool.get(key);
  if (found && found.client.status !== 'end' && found.client.status !== 'close') return found;
  const client = new RedisClient({
    host: s.host,
    port: s.port,
    username: s.username,
    password: s.password,
    tls: s.tls ? (isIP(s.host) ? {} : { servername: s.host }) : undefined,
    connectTimeout: timeoutMs,
    // A failed connection is not retried in the background: the next lookup connects afresh.
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    // No INFO round trip before the first command (an ACL user may not be allowed INFO).
    enableReadyCheck: false,
    lazyConnect: false,
  });
  hearEveryStreamError(client);
  const entry: Pooled = { client, idle: null, inflight: 0 };
  // A failure reaches the lookup that was waiting (as its rejection or its timeout); nothing to log here.
  client.on('error', (err: NodeJS.ErrnoException) => (entry.lastError = err.code ?? err.message.split(' ')[0]));
  // An idle connection to Redis must not keep a process alive that has nothing else to do.
  client.on('connect', () => (client.stream as Socket | undefined)?.unref?.());
  client.once('end', () => {
    if (pool.get(key) === entry) pool.delete(key);
    if (entry.idle) clearTimeout(entry.idle);
  });
  pool.set(key, entry);
  return entry;
}

function drop(s: RedisTokenStore, entry: Pooled): void {
  const key = poolKey(s);
  if (pool.get(key) === entry) pool.delete(key);
  if (entry.idle) clearTimeout(entry.idle);
  entry.client.disconnect();
}

/** Closes every Redis connection the token lookups hold (tests; a process that is about to exit). */
export function closeTokenRedisClients(): void {
  for (const entry of [...pool.values()]) {
    if (entry.idle) clearTimeout(entry.idle);
    entry.client.disconnect();
  }
  pool.clear();
}

export class RedisTokenTargets implements TokenSource {
  readonly label: string;
  /** Whether the last lookup failed: an outage is one `error` event, not one per client. */
  private failing = false;

  /**
   * @param store where the tokens are (parseTokenRedisUrl, parseWebsockifyRedisSource)
   * @param app the app named in close reasons
   * @param timeoutMs how long a lookup may take, connecting included
   * @param idleMs how long the connection to Redis stays open without a lookup
   */
  constructor(
    readonly store: RedisTokenStore,
    private readonly app: string,
    private readonly timeoutMs = TOKEN_LOOKUP_TIMEOUT_MS,
    private readonly idleMs = IDLE_CLOSE_MS,
  ) {
    this.label = `the targets in ${storeLabel(store)}${store.namespace ? ` under ${store.namespace}:` : ''}`;
  }

  /** The target of `token`, or why there is none; rejects with TokenStoreError when Redis does not answer. */
  async lookup(token: string | undefined): Promise<TokenLookup> {
    if (!token) return { problem: 'no token: add ?token=NAME to the WebSocket URL' };
    const key = this.store.namespace ? `${this.store.namespace}:${token}` : token;
    const { Redis: RedisClient } = await (ioredis ??= import('ioredis'));
    const entry = clientFor(this.store, this.timeoutMs, RedisClient);
    if (entry.idle) clearTimeout(entry.idle);
    entry.idle = null;
    entry.inflight++;
    const where = storeLabel(this.store);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new TokenStoreError(`PH_ERR_TOKEN_STORE: ${this.app}: token store ${where} did not answer within ${this.timeoutMs} ms`, { app: this.app })), this.timeoutMs);
    });
    let value: string | null;
    try {
      value = await Promise.race([this.get(entry.client, key), timedOut]);
    } catch (err) {
      // The key holds a hash, a list…: the token's value is wrong, not the store.
      if (/^WRONGTYPE/.test((err as Error).message ?? '')) {
        this.failing = false;
        return { problem: `token ${shown(token)}: its key holds no string value (expected "host:port" or JSON)` };
      }
      // A connection that did not answer in time may be stuck (a partition, a stopped server): the next lookup starts a new one.
      drop(this.store, entry);
      let failure: TokenStoreError;
      if (err instanceof TokenStoreError) failure = err;
      else {
        const e = err as NodeJS.ErrnoException;
        const why = e.code ?? (/^[A-Z]+ /.test(e.message ?? '') ? e.message.split(' ')[0] : entry.lastError ?? 'connection closed');
        failure = new TokenStoreError(`PH_ERR_TOKEN_STORE: ${this.app}: token store ${where} failed (${why})`, { app: this.app, cause: err });
      }
      if (!this.failing) emit('error', { code: failure.code, message: failure.message, app: this.app });
      this.failing = true;
      throw failure;
    } finally {
      clearTimeout(timer);
      entry.inflight--;
    }
    this.failing = false;
    if (entry.inflight === 0) {
      if (entry.idle) clearTimeout(entry.idle);
      entry.idle = setTimeout(() => drop(this.store, entry), this.idleMs);
      entry.idle.unref();
    }
    if (value === null) return { problem: `unknown token ${shown(token)}` };
    const target = parseTokenValue(value);
    if (typeof target === 'string') return { problem: `token ${shown(token)}: ${target}` };
    return { target };
  }

  /**
   * GET, after SELECT when the db is not 0. Not ioredis's `db` option: a
   * SELECT that fails there (a db out of range) is only an error event, and
   * the GETs would then read db 0.
   */
  private async get(client: Redis, key: string): Promise<string | null> {
    if (this.store.db === 0) return client.get(key);
    const results = await client.pipeline().select(this.store.db).get(key).exec();
    for (const [err] of results ?? []) if (err) throw err;
    return (results?.[1]?.[1] as string | null | undefined) ?? null;
  }
}
