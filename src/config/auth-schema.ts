/**
 * The access-control keys of the config (docs/auth.md): `auth` (globally and
 * per app), `users` for `auth: login`, `auth_tokens` for `auth: token`.
 */
import * as k from './schema-kit.js';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** What guards an app: nobody (`none`), the login page, a token, or an external service. */
export type AuthConfig =
  | { readonly mode: 'none' | 'login' | 'token' }
  | { readonly mode: 'forward_auth'; readonly url: string; readonly response_headers: readonly string[]; readonly timeout: number };

const httpUrl = () =>
  k.string({
    patternHint: 'an http:// or https:// URL',
    check: (s) => {
      let u: URL;
      try {
        u = new URL(s);
      } catch {
        return `${k.quote(s)} is not a URL`;
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return `${k.quote(s)}: scheme must be http or https`;
      if (u.username || u.password) return 'credentials in the URL would leak into logs';
      return undefined;
    },
  });

const forwardAuthObject = k.object({
  /** Asked first for every request and upgrade; 2xx lets it through. */
  url: httpUrl(),
  /** Headers of the auth service's 2xx answer copied to the upstream request (`Remote-User`…). */
  response_headers: k.withDefault(k.array(k.string({ pattern: HEADER_NAME, patternHint: 'a header name such as "Remote-User"' })), []),
  /** How long the auth service may take (default 5 s); then 503 PH_ERR_AUTH_UNAVAILABLE. */
  timeout: k.withDefault(k.duration(), 5_000),
});

const authObject = k.object({ forward_auth: k.optional(anyForward()) });

/** `forward_auth: URL` is short for `forward_auth: { url: URL }`. */
function anyForward(): k.Schema<k.Infer<typeof forwardAuthObject>> {
  return {
    expects: 'a URL or a mapping { url, response_headers }',
    parse(v, at, issues) {
      if (typeof v === 'string') return httpUrl().parse(v, at, issues) === undefined ? undefined : { url: v, response_headers: [], timeout: 5_000 };
      return forwardAuthObject.parse(v, at, issues);
    },
  };
}

/** `none`, `login`, `token`, or `{ forward_auth: URL | { url, response_headers } }`. */
export const authSchema = (): k.Schema<AuthConfig> => ({
  expects: '"none", "login", "token" or a mapping { forward_auth: URL }',
  parse(v, at, issues) {
    if (v === 'none' || v === 'login' || v === 'token') return { mode: v };
    if (typeof v === 'string') return void issues.push(`${at}: expected "none", "login", "token" or { forward_auth: URL }, got ${k.quote(v)}`);
    // The parsed form itself (an admin API app stored back as it was parsed, e.g. by autostart).
    if (v !== null && typeof v === 'object' && 'mode' in v) return parsedForm(v as Record<string, unknown>, at, issues);
    const o = authObject.parse(v, at, issues);
    if (!o) return undefined;
    if (!o.forward_auth) return void issues.push(`${at}: a mapping needs forward_auth: URL`);
    return { mode: 'forward_auth', ...o.forward_auth };
  },
});

function parsedForm(v: Record<string, unknown>, at: string, issues: string[]): AuthConfig | undefined {
  const { mode, ...rest } = v;
  if ((mode === 'none' || mode === 'login' || mode === 'token') && Object.keys(rest).length === 0) return { mode };
  const ms = rest.timeout;
  if (mode === 'forward_auth' && typeof ms === 'number' && Number.isInteger(ms) && ms > 0) {
    const f = forwardAuthObject.parse({ ...rest, timeout: `${ms}ms` }, at, issues);
    return f ? { mode, ...f } : undefined;
  }
  return void issues.push(`${at}: expected "none", "login", "token" or { forward_auth: URL }`);
}

/** `porthole passwd` prints these: `scrypt$N$r$p$salt$hash`. */
export const PASSWORD_HASH = /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]{16,}\$[A-Za-z0-9_-]{32,}$/;

export const userSchema = k.object({
  name: k.string({ pattern: /^[A-Za-z0-9_.@-]{1,64}$/, patternHint: 'a user name of letters, digits and _.@- (at most 64)' }),
  password_hash: k.string({ pattern: PASSWORD_HASH, patternHint: 'a hash printed by "porthole passwd" (scrypt$…)' }),
  /** May use the dashboard and the admin API. */
  admin: k.withDefault(k.boolean(), false),
});
export type UserConfig = k.Infer<typeof userSchema>;

export const authTokenSchema = k.object({
  /** Who the token stands for: sent to apps as X-Forwarded-User. */
  name: k.string({ pattern: /^[A-Za-z0-9_.@-]{1,64}$/, patternHint: 'a name of letters, digits and _.@- (at most 64)' }),
  /** SHA-256 of the token, in hex (`porthole passwd --token` prints a token and this). */
  sha256: k.string({ pattern: /^[0-9a-f]{64}$/, patternHint: '64 lowercase hex digits (the SHA-256 of the token)' }),
});
export type AuthTokenConfig = k.Infer<typeof authTokenSchema>;

/** Problems of the auth keys taken together: a mode that needs users or tokens that are not there. */
export function authProblems(cfg: { auth?: AuthConfig; users: readonly UserConfig[]; auth_tokens: readonly AuthTokenConfig[]; apps: readonly { name: string; auth?: AuthConfig }[] }): string[] {
  const issues: string[] = [];
  const check = (a: AuthConfig | undefined, at: string) => {
    if (a?.mode === 'login' && cfg.users.length === 0) issues.push(`${at}: login needs at least one entry in users (make a password_hash with "porthole passwd")`);
    if (a?.mode === 'token' && cfg.auth_tokens.length === 0 && cfg.users.length === 0) issues.push(`${at}: token needs auth_tokens (make one with "porthole passwd --token")`);
  };
  check(cfg.auth, 'auth');
  cfg.apps.forEach((app, i) => check(app.auth, `apps[${i}].auth`));
  const seen = new Set<string>();
  cfg.users.forEach((u, i) => {
    if (seen.has(u.name)) issues.push(`users[${i}].name: "${u.name}" is already a user`);
    seen.add(u.name);
  });
  return issues;
}
