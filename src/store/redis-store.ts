/**
 * The cluster's registry store: the apps in Redis, shared by every node.
 *
 * Keys, under a prefix (default `porthole:`):
 *   `{p}app:{name}`  one key per app: the stored JSON, as the file store keeps it
 *   `{p}apps`        the set of app names
 *   `{p}placement`   hash app → node, for apps with `node: any`
 *   `{p}version`     a counter, bumped by every change
 *   `{p}epoch`       a random id made when the registry was first written:
 *                    when it is gone or another, Redis lost its data
 *   channel `{p}changes`  every change, published with its version
 *
 * Every write is one Lua script: it checks the version the writer last saw
 * (so two nodes never validate against different registries and both win),
 * changes the app, bumps the version and publishes the change, atomically.
 * A write is acknowledged only once Redis answered it; with
 * `appendfsync always` that is after it is on disk (docs/cluster.md).
 *
 * Commands fail fast while Redis cannot be reached (no offline queue, a
 * command timeout, nothing resent after a reconnect): the API answers 503
 * rather than acknowledging something that may be lost. A write that timed
 * out may still sit in the connection (a partition, a Redis that hangs) and
 * reach Redis later: it carries a deadline, by Redis's own clock, after which
 * the script refuses it, so a write answered 503 is not applied afterwards.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
// Loaded by connect() only: a gateway without Redis never pays for the client (it takes ~0.5 s to load).
import type { Redis, RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../errors.js';
import { hearEveryStreamError } from './redis-stream-errors.js';
import type { AppStore, StoredApp } from './file-store.js';
import { StoreConflict, StoreEpochChanged } from './store-errors.js';

export { StoreConflict, StoreEpochChanged };

/** One change as published on `{p}changes` (and as applied by every node). */
export interface StoreChange {
  v: number;
  op: 'put' | 'delete' | 'place' | 'reseed';
  name?: string;
  app?: StoredApp;
  /** `place`: the node the app now runs on (null: none). */
  node?: string | null;
  epoch: string;
}

/** The whole registry at one version, read atomically. */
export interface StoreSnapshot {
  version: number;
  epoch: string;
  apps: StoredApp[];
  placement: Map<string, string>;
}

export interface RedisStoreOptions {
  /** `redis://[[user]:password@]host[:port][/db]` or `rediss://…` (TLS). */
  url: string;
  /** Prefix of every key and channel (default `porthole:`): several clusters can share one Redis. */
  prefix?: string;
  /** How long a command may take before the store counts as unavailable (default 2 s). */
  timeoutMs?: number;
  /** The password when it is not in the URL (read from `store.password_file`). */
  password?: string;
  /** For `rediss://`, PEM text: the CA Redis's certificate is checked against, and a client certificate. */
  tls?: RedisTlsOptions;
}

export interface RedisTlsOptions {
  ca?: string;
  cert?: string;
  key?: string;
}

const WRITE_SCRIPT = `
if ARGV[8] ~= '' then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[8]) then return {-4, 0} end
end
local epoch = redis.call('GET', KEYS[4])
if epoch ~= ARGV[1] then return {-2, epoch or ''} end
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= v then return {-1, v} end
if ARGV[3] == 'put' then
  redis.call('SET', KEYS[3], ARGV[5])
  redis.call('SADD', KEYS[2], ARGV[4])
elseif ARGV[3] == 'delete' then
  redis.call('DEL', KEYS[3])
  redis.call('SREM', KEYS[2], ARGV[4])
  redis.call('HDEL', KEYS[5], ARGV[4])
elseif ARGV[3] == 'place' then
  if redis.call('SISMEMBER', KEYS[2], ARGV[4]) == 0 then return {-3, v} end
  if ARGV[5] == '' then redis.call('HDEL', KEYS[5], ARGV[4]) else redis.call('HSET', KEYS[5], ARGV[4], ARGV[5]) end
end
v = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[6], '{"v":' .. v .. ',' .. ARGV[7])
return {v, epoch}
`;

const SNAPSHOT_SCRIPT = `
local names = redis.call('SMEMBERS', KEYS[2])
local apps = {}
for i, name in ipairs(names) do apps[i] = redis.call('GET', ARGV[1] .. name) or '' end
return {redis.call('GET', KEYS[1]) or '0', redis.call('GET', KEYS[3]) or '', names, apps, redis.call('HGETALL', KEYS[4])}
`;

/** Writes a whole registry into an empty (or reset) Redis, unless another node did it first or Redis holds a newer one. */
const RESEED_SCRIPT = `
local epoch = redis.call('GET', KEYS[3])
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if epoch and epoch == ARGV[3] then return {0, v, epoch} end
if epoch and v >= tonumber(ARGV[2]) then return {0, v, epoch} end
local old = redis.call('SMEMBERS', KEYS[2])
for _, name in ipairs(old) do redis.call('DEL', ARGV[1] .. name) end
redis.call('DEL', KEYS[2], KEYS[4])
local n = tonumber(ARGV[4])
for i = 0, n - 1 do
  redis.call('SET', ARGV[1] .. ARGV[5 + 2 * i], ARGV[6 + 2 * i])
  redis.call('SADD', KEYS[2], ARGV[5 + 2 * i])
end
local rest = 5 + 2 * n
local m = tonumber(ARGV[rest])
for i = 1, m do redis.call('HSET', KEYS[4], ARGV[rest + 2 * i - 1], ARGV[rest + 2 * i]) end
v = math.max(v, tonumber(ARGV[2])) + 1
redis.call('SET', KEYS[1], v)
redis.call('SET', KEYS[3], ARGV[3])
redis.call('PUBLISH', ARGV[rest + 2 * m + 1], '{"v":' .. v .. ',"op":"reseed","epoch":"' .. ARGV[3] .. '"}')
return {1, v, ARGV[3]}
`;

type Listener<T> = (value: T) => void;

/** The longest wait between two reconnect attempts: a node is back at most this long after its Redis. */
export const RECONNECT_MAX_MS = 1_000;

/** ioredis's errors that follow from another one (the connection's own): never the reason shown. */
const CONSEQUENCE = /^(Reached the max retries per request limit|Stream isn't writeable|Connection is closed)/;

/** The {@link AppStore} of a cluster: Redis, versioned, with a change feed. */
export class RedisStore implements AppStore {
  readonly kind = 'redis';
  readonly prefix: string;
  /** The URL without its password, for logs and the API. */
  readonly safeUrl: string;
  /** The registry version this node holds (set by whoever applies snapshots and changes). */
  version = 0;
  /** The epoch this node's registry came from ('' before the first load). */
  epoch = '';
  /** Where each `node: any` app runs, as of `version` (kept by whoever applies changes). */
  placement = new Map<string, string>();
  /** The client for commands (membership uses it too); set by connect(). */
  redis!: Redis;
  private sub!: Redis;
  private readonly clientOptions: RedisOptions;
  private readonly timeoutMs: number;
  private readonly changeListeners = new Set<Listener<StoreChange>>();
  private readonly stateListeners = new Set<Listener<boolean>>();
  private reachable = false;
  private downSince: number | undefined = Date.now();
  private closed = false;
  /** What the clients last reported while not ready: the reason behind "Connection is closed.". */
  private lastClientError: Error | undefined;
  /** Whether the URL is rediss:// (for the hints of unavailable()). */
  private readonly tls: boolean;

  constructor(options: RedisStoreOptions) {
    const { redisOptions, safeUrl } = redisConnectOptions(options.url, { password: options.password, tls: options.tls });
    this.safeUrl = safeUrl;
    this.tls = redisOptions.tls !== undefined;
    this.prefix = options.prefix ?? 'porthole:';
    this.timeoutMs = options.timeoutMs ?? 2_000;
    const common: RedisOptions = {
      ...redisOptions,
      lazyConnect: true,
      // Fail fast while Redis is away: the API answers 503 instead of queueing writes it cannot promise.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      commandTimeout: this.timeoutMs,
      connectTimeout: this.timeoutMs,
      // Reconnect for ever, at most once a second: a node outlives its Redis.
      retryStrategy: (times) => Math.min(50 * times, RECONNECT_MAX_MS),
      keepAlive: 1_000,
    };
    this.clientOptions = common;
  }

  key(name: string): string {
    return `${this.prefix}${name}`;
  }

  /** Whether the last command reached Redis (and the connection is up). */
  get up(): boolean {
    return this.reachable;
  }
  /** Since when Redis has been unreachable (undefined while it is up). */
  get unavailableSince(): number | undefined {
    return this.downSince;
  }

  /** Connects both clients; rejects with StoreUnavailableError when Redis does not answer in time. */
  async connect(): Promise<void> {
    const { Redis } = await import('ioredis');
    const common = this.clientOptions;
    this.redis = new Redis(common);
    this.sub = new Redis({ ...common, commandTimeout: undefined });
    for (const c of [this.redis, this.sub]) hearEveryStreamError(c);
    // Reported through `up` and the callers' errors. A command only learns "Connection is closed.":
    // the reason (NOAUTH, WRONGPASS, a certificate Redis or this node refused) comes as an error event.
    for (const c of [this.redis, this.sub]) c.on('error', (err: Error) => this.noteClientError(err));
    this.redis.on('ready', () => {
      this.lastClientError = undefined;
      this.setReachable(true);
      // Redis may be another one now (failover) or its clock may have been set.
      void this.measureClock().catch(() => undefined);
    });
    this.redis.on('close', () => this.setReachable(false));
    this.sub.on('message', (_channel: string, message: string) => this.onMessage(message));
    // A subscriber that reconnects resubscribes by itself; what it missed meanwhile is read by version.
    this.sub.on('ready', () => this.emitState());
    this.redis.defineCommand('phWrite', { numberOfKeys: 5, lua: WRITE_SCRIPT });
    this.redis.defineCommand('phSnapshot', { numberOfKeys: 4, lua: SNAPSHOT_SCRIPT });
    this.redis.defineCommand('phReseed', { numberOfKeys: 4, lua: RESEED_SCRIPT });
    try {
      await Promise.all([this.redis.connect(), this.sub.connect()]);
      await this.sub.subscribe(this.key('changes'));
      await this.redis.ping();
      await this.measureClock();
    } catch (err) {
      // Not left reconnecting in the background of a start that failed.
      for (const c of [this.redis, this.sub]) c.disconnect();
      throw this.unavailable(err);
    }
    this.setReachable(true);
  }

  onChange(listener: Listener<StoreChange>): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Told true when Redis is reachable again (and on the subscriber's reconnect), false when it is lost. */
  onState(listener: Listener<boolean>): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Any command failed for want of Redis, or a command succeeded: tells the store's state. */
  noteResult(ok: boolean): void {
    this.setReachable(ok && this.redis.status === 'ready');
  }

  /** The whole registry at one version. A registry never written gets its epoch now. */
  async snapshot(): Promise<StoreSnapshot> {
    const raw = (await this.call(async () => {
      await this.redis.set(this.key('epoch'), randomBytes(8).toString('hex'), 'NX');
      return (this.redis as unknown as ScriptClient).phSnapshot(this.key('version'), this.key('apps'), this.key('epoch'), this.key('placement'), this.key('app:'));
    })) as [string, string, string[], string[], string[]];
    const [version, epoch, names, bodies, placementFlat] = raw;
    const apps: StoredApp[] = [];
    names.forEach((name, i) => {
      const body = bodies[i];
      if (!body) return;
      try {
        const app = JSON.parse(body) as StoredApp;
        apps.push({ ...app, name });
      } catch {
        // Shown as invalid by the registry rather than dropped: it keeps the name.
        apps.push({ name, __unreadable: body.slice(0, 200) });
      }
    });
    const placement = new Map<string, string>();
    for (let i = 0; i + 1 < placementFlat.length; i += 2) placement.set(placementFlat[i], placementFlat[i + 1]);
    return { version: Number(version), epoch, apps, placement };
  }

  async load(): Promise<StoredApp[]> {
    const snap = await this.snapshot();
    this.version = snap.version;
    this.epoch = snap.epoch;
    this.placement = snap.placement;
    return snap.apps;
  }

  async put(app: StoredApp): Promise<void> {
    // Held: the registry applies it itself once this resolves.
    if (!app || typeof app.name !== 'string' || !app.name) throw new TypeError('RedisStore.put: the app needs a string "name"');
    const body = JSON.stringify(app);
    await this.write('put', app.name, body, { op: 'put', name: app.name, app: JSON.parse(body) as StoredApp });
  }

  async delete(name: string): Promise<void> {
    await this.write('delete', name, '', { op: 'delete', name });
  }

  /** Records where an app with `node: any` runs (null: nowhere); `false` when the app is gone. */
  async place(name: string, node: string | null, expectVersion?: number): Promise<boolean> {
    // Not held: the change reaches this node's registry through the feed like any other.
    return this.write('place', name, node ?? '', { op: 'place', name, node }, expectVersion, false);
  }

  /**
   * Writes this node's registry into a Redis that lost it (its epoch is
   * gone, or older than this node's version): true when this node did it,
   * false when Redis already holds a registry at least as new.
   */
  async reseed(apps: readonly StoredApp[], placement: ReadonlyMap<string, string>, version: number): Promise<boolean> {
    const epoch = randomBytes(8).toString('hex');
    const args: (string | number)[] = [this.key('app:'), version, epoch, apps.length];
    for (const app of apps) args.push(app.name, JSON.stringify(app));
    args.push(placement.size);
    for (const [app, node] of placement) args.push(app, node);
    args.push(this.key('changes'));
    const [done, v, newEpoch] = (await this.call(() =>
      (this.redis as unknown as ScriptClient).phReseed(this.key('version'), this.key('apps'), this.key('epoch'), this.key('placement'), ...args),
    )) as [number, number, string];
    if (done === 1) {
      this.version = Number(v);
      this.epoch = newEpoch;
    }
    return done === 1;
  }

  /**
   * One change, if the registry is still at `expectVersion` (undefined: any).
   * `holds`: the caller applies the change itself right after, so this node
   * is at the new version (its own published change is then old news).
   * False when a placement names an app that is gone.
   */
  private async write(op: 'put' | 'delete' | 'place', name: string, value: string, change: Omit<StoreChange, 'v' | 'epoch'>, expectVersion: number | undefined = this.version, holds = true): Promise<boolean> {
    const rest = JSON.stringify({ ...change, epoch: this.epoch }).slice(1);
    const [v, other] = (await this.call(() =>
      (this.redis as unknown as ScriptClient).phWrite(
        this.key('version'),
        this.key('apps'),
        this.key(`app:${name}`),
        this.key('epoch'),
        this.key('placement'),
        this.epoch,
        expectVersion === undefined ? '' : String(expectVersion),
        op,
        name,
        value,
        this.key('changes'),
        rest,
        this.writeDeadline(),
      ),
    )) as [number, string | number];
    if (v === -4) throw new StoreUnavailableError(`the store at ${this.safeUrl} got the change too late (after ${this.timeoutMs} ms); nothing was changed`);
    if (v === -2) throw new StoreEpochChanged(String(other));
    if (v === -1) throw new StoreConflict(Number(other));
    if (v === -3) return false;
    if (holds && v === this.version + 1) this.version = v;
    return true;
  }

  /**
   * Redis's clock minus this node's (ms), from one TIME round trip; off by
   * at most half of it. Writes' deadlines are set in Redis's time.
   */
  private async measureClock(): Promise<void> {
    const before = Date.now();
    const [s, us] = await this.redis.time();
    const after = Date.now();
    this.clockOffsetMs = Number(s) * 1000 + Math.floor(Number(us) / 1000) - Math.round((before + after) / 2);
  }
  private clockOffsetMs: number | undefined;

  /**
   * The latest moment (Redis's clock, ms) a write sent now may be applied:
   * well before this node gives up waiting for the answer, so that the
   * answer of a write applied at the deadline still arrives in time.
   */
  private writeDeadline(): string {
    if (this.clockOffsetMs === undefined) return '';
    return String(Date.now() + this.clockOffsetMs + this.timeoutMs - Math.min(500, this.timeoutMs / 4));
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
    try {
      const result = await fn();
      this.setReachable(this.redis.status === 'ready');
      return result;
    } catch (err) {
      if (isRedisReplyError(err)) throw err;
      this.setReachable(false);
      throw this.unavailable(err);
    }
  }

  /** Keeps the first error since the last ready: the ones after it (retries refused, a stream not writable) are its consequences. */
  private noteClientError(err: Error): void {
    if (this.lastClientError && !CONSEQUENCE.test(this.lastClientError.message)) return;
    this.lastClientError = err;
  }

  private unavailable(err: unknown): StoreUnavailableError {
    const reason = this.redis?.status === 'ready' ? err : (this.lastClientError ?? err);
    const code = (reason as NodeJS.ErrnoException)?.code;
    const raw = (reason as Error)?.message ?? String(reason);
    // OpenSSL's "80…:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:file:line…": its reason alone.
    const message = (/:SSL routines:[^:]*:([^:]+):/.exec(raw)?.[1] ?? raw).replace(/\s+/g, ' ').slice(0, 120);
    let why = code && !message.includes(code) ? `${message}, ${code}` : message;
    // Redis hangs up without a word on a TLS client that shows no certificate, and on cleartext to its TLS port.
    if (code === 'ECONNRESET' || /alert/.test(message)) why += this.tls ? '; does Redis want a client certificate (store.tls.cert and key)?' : '; is this a TLS port (rediss://)?';
    return new StoreUnavailableError(`the store at ${this.safeUrl} cannot be reached (${why}); nothing was changed`, { cause: err });
  }

  private onMessage(message: string): void {
    let change: StoreChange;
    try {
      change = JSON.parse(message) as StoreChange;
    } catch {
      return;
    }
    if (typeof change?.v !== 'number') return;
    for (const l of this.changeListeners) l(change);
  }

  private setReachable(ok: boolean): void {
    if (this.closed || ok === this.reachable) return;
    this.reachable = ok;
    this.downSince = ok ? undefined : Date.now();
    this.emitState();
  }

  private emitState(): void {
    for (const l of this.stateListeners) l(this.reachable);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.reachable = false;
    await Promise.all([this.redis, this.sub].filter(Boolean).map((c) => c.quit().catch(() => c.disconnect())));
  }
}

interface ScriptClient {
  phWrite(...args: (string | number)[]): Promise<unknown>;
  phSnapshot(...args: string[]): Promise<unknown>;
  phReseed(...args: (string | number)[]): Promise<unknown>;
}

function isRedisReplyError(err: unknown): boolean {
  return (err as Error)?.name === 'ReplyError';
}

/** ioredis options from a `redis://` / `rediss://` URL, and the URL without its password. */
export function redisConnectOptions(url: string, extra: { password?: string; tls?: RedisTlsOptions } = {}): { redisOptions: RedisOptions; safeUrl: string } {
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new TypeError(`store: expected a redis:// or rediss:// URL, got ${u.protocol}`);
  if (extra.tls && u.protocol !== 'rediss:') throw new TypeError('store: TLS options need a rediss:// URL');
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const password = u.password ? decodeURIComponent(u.password) : extra.password;
  const redisOptions: RedisOptions = {
    host,
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(password !== undefined ? { password } : {}),
    // The name checked against Redis's certificate is the URL's host (SNI only for names, as TLS wants).
    ...(u.protocol === 'rediss:' ? { tls: { ...(net.isIP(host) ? {} : { servername: host }), ...extra.tls } } : {}),
  };
  const safe = new URL(url);
  // A user without a password is most often a password written without its colon (redis://PASSWORD@host),
  // unless the password comes from elsewhere: then the user part is the ACL user's name.
  if (safe.password) safe.password = '***';
  else if (safe.username && extra.password === undefined) safe.username = '***';
  return { redisOptions, safeUrl: safe.toString() };
}
