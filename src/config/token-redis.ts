/**
 * Where a bridge's tokens are in Redis: `bridge_token_redis:
 * redis://[:password@]host:port/db` and websockify's TokenRedis source
 * `host[:port[:db[:password[:namespace]]]]` (`porthole bridge
 * --token-source`). Parsed here, for the schema and the CLI alike; the
 * lookups are in src/gateway/bridge-token-redis.ts.
 */
import { formatHostPort } from './host-port.js';

/** Where the tokens are: a parsed `redis://` URL. The password never appears in `label`. */
export interface RedisTokenStore {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  /** Keys are `namespace:token` (websockify's namespace); none: the token itself. */
  namespace?: string;
}

/**
 * Parses `redis://[[user]:password@]host[:port][/db]` (or `rediss://` for
 * TLS); returns the problem as a string when it is not one.
 */
export function parseTokenRedisUrl(text: string): RedisTokenStore | string {
  const hint = 'expected redis://[:PASSWORD@]HOST[:PORT][/DB] (or rediss:// for TLS)';
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    // Not echoed: what does not parse as a URL may still hold a password (a websockify source pasted in).
    return `not a URL: ${hint}`;
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return `${JSON.stringify(redact(text))}: ${hint}`;
  if (!u.hostname) return `${JSON.stringify(redact(text))} has no host: ${hint}`;
  if (u.search || u.hash) return `${JSON.stringify(redact(text))}: no query or fragment (a namespace goes in its own key): ${hint}`;
  const dbText = u.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d{1,5}$/.test(dbText)) return `${JSON.stringify(redact(text))}: the path must be a database number such as /0, not /${dbText}`;
  const port = u.port ? Number(u.port) : 6379;
  let password: string | undefined;
  let username: string | undefined;
  try {
    password = u.password ? decodeURIComponent(u.password) : undefined;
    username = u.username ? decodeURIComponent(u.username) : undefined;
  } catch {
    return `${JSON.stringify(redact(text))}: the user or password is not valid percent-encoding`;
  }
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port, db: dbText ? Number(dbText) : 0, username, password, tls: u.protocol === 'rediss:' };
}

/**
 * Parses websockify's TokenRedis source, `host[:port[:db[:password[:namespace]]]]`
 * (empty fields take the defaults: port 6379, db 0); the namespace is the
 * rest of the string, colons included.
 */
export function parseWebsockifyRedisSource(text: string): RedisTokenStore | string {
  const fields = text.split(':');
  const [host = '', port = '', db = '', password = ''] = fields;
  const namespace = fields.slice(4).join(':');
  const hint = 'expected HOST[:PORT[:DB[:PASSWORD[:NAMESPACE]]]] (websockify TokenRedis)';
  if (!host || !/^[A-Za-z0-9.-]+$/.test(host)) return `${JSON.stringify(redactSource(text))}: ${hint}`;
  if (port && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) return `${JSON.stringify(redactSource(text))}: the port must be from 1 to 65535`;
  if (db && !/^\d{1,5}$/.test(db)) return `${JSON.stringify(redactSource(text))}: the db must be a number`;
  return { host, port: port ? Number(port) : 6379, db: db ? Number(db) : 0, password: password || undefined, tls: false, namespace: namespace || undefined };
}

/** The store for messages: `redis://host:port/db`, without user or password. */
export function storeLabel(s: RedisTokenStore): string {
  return `${s.tls ? 'rediss' : 'redis'}://${formatHostPort({ host: s.host, port: s.port })}/${s.db}`;
}

/** A URL with its password replaced by `***`, for messages about a URL that did not parse. */
export function redact(text: string): string {
  return text.replace(/^([a-z]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}

export function redactSource(text: string): string {
  const f = text.split(':');
  if (f.length > 3 && f[3]) f[3] = '***';
  return f.join(':');
}

