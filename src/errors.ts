/**
 * Every failure Porthole can report: one class per failure, each with a stable
 * code, the HTTP status an HTTP client gets, and the WebSocket close code a
 * WebSocket client gets (RFC 6455 §7.4.1). Callers match on `code`, never on
 * the message text.
 */

export interface ErrorDetails {
  app?: string;
  cause?: unknown;
}

export abstract class PortholeError extends Error {
  abstract readonly code: string;
  /** Status used when the failure reaches an HTTP client. */
  abstract readonly status: number;
  /** Close code used when the failure reaches a WebSocket client after a completed handshake. */
  abstract readonly closeCode: number;
  readonly app?: string;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.app = details.app;
  }
}

/** A config file or option is invalid. Exit code 2 from the CLI. */
export class ConfigError extends PortholeError {
  readonly code: string = 'PH_ERR_CONFIG';
  readonly status = 500;
  readonly closeCode = 1011;
  /** One line per problem: `apps[0].wsport: unknown key, did you mean ws_port?` */
  readonly problems: readonly string[];
  constructor(problems: readonly string[], source?: string) {
    super(`${source ? `${source}: ` : ''}invalid configuration\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

/** `tunnel_engine: native` (or PORTHOLE_TUNNEL=native) where the native tunnel cannot load: the reason is in the message. */
export class NativeTunnelUnavailableError extends ConfigError {
  override readonly code: string = 'PH_ERR_NATIVE_TUNNEL';
  constructor(problem: string) {
    super([problem]);
  }
}

/** No app is routed at this path or host. */
export class RouteNotFoundError extends PortholeError {
  readonly code = 'PH_ERR_NOT_FOUND';
  readonly status = 404;
  readonly closeCode = 1008;
}

/** The Host header is not `host[:port]` (RFC 9110 §7.2, RFC 3986 §3.2.2), e.g. `127.0.0.1:80@evil.com`. */
export class BadHostError extends PortholeError {
  readonly code = 'PH_ERR_BAD_HOST';
  readonly status = 400;
  readonly closeCode = 1002;
}

/**
 * The Host is not a name of this gateway (DNS rebinding, or a tunnel's name
 * not listed in `server_names`). 421 Misdirected Request: RFC 9110 §15.5.20.
 */
export class HostRefusedError extends PortholeError {
  readonly code = 'PH_ERR_HOST_REFUSED';
  readonly status = 421;
  readonly closeCode = 1008;
}

/** The WebSocket handshake is malformed (RFC 6455 §4.2.1). */
export class BadHandshakeError extends PortholeError {
  readonly code = 'PH_ERR_BAD_HANDSHAKE';
  readonly status = 400;
  readonly closeCode = 1002;
}

/** The client asked for a WebSocket version other than 13 (RFC 6455 §4.4). */
export class UnsupportedVersionError extends PortholeError {
  readonly code = 'PH_ERR_WS_VERSION';
  readonly status = 426;
  readonly closeCode = 1002;
}

/**
 * The request cannot be passed on safely: ambiguous or unsupported framing (a Transfer-Encoding
 * other than `chunked`, Content-Length beside Transfer-Encoding), two Host headers (RFC 9112
 * §3.2), or bytes that are not HTTP. Refused rather than guessed at: two parsers that guess
 * differently are how requests get smuggled.
 */
export class MalformedRequestError extends PortholeError {
  readonly code = 'PH_ERR_MALFORMED_REQUEST';
  readonly status = 400;
  readonly closeCode = 1002;
}

/** The client did not send its request head within the gateway's header timeout. */
export class RequestTimeoutError extends PortholeError {
  readonly code = 'PH_ERR_REQUEST_TIMEOUT';
  readonly status = 408;
  readonly closeCode = 1002;
}

/** The request head is larger than the gateway accepts (Node's `maxHeaderSize`, 16 KiB by default). */
export class HeadersTooLargeError extends PortholeError {
  readonly code = 'PH_ERR_HEADERS_TOO_LARGE';
  readonly status = 431;
  readonly closeCode = 1009;
}

/** The client's request body broke off or was malformed after the head was routed: nothing was answered. */
export class RequestAbortedError extends PortholeError {
  readonly code = 'PH_ERR_REQUEST_ABORTED';
  readonly status = 400;
  readonly closeCode = 1002;
}

/** The upgrade's Origin is not in the app's `allowed_origins`. */
export class OriginRefusedError extends PortholeError {
  readonly code = 'PH_ERR_ORIGIN_REFUSED';
  readonly status = 403;
  readonly closeCode = 1008;
}

/** The upgrade's path is not in the app's `ws_paths`. */
export class WsPathRefusedError extends PortholeError {
  readonly code = 'PH_ERR_WS_PATH_REFUSED';
  readonly status = 403;
  readonly closeCode = 1008;
}

/** The upstream refused the TCP connection (nothing listens there). */
export class UpstreamRefusedError extends PortholeError {
  readonly code = 'PH_ERR_UPSTREAM_REFUSED';
  readonly status = 502;
  readonly closeCode = 1014;
}

/** The upstream reset or closed the connection before answering. */
export class UpstreamResetError extends PortholeError {
  readonly code = 'PH_ERR_UPSTREAM_RESET';
  readonly status = 502;
  readonly closeCode = 1014;
}

/** The TCP (or TLS) connection to the upstream did not complete in `connect_timeout`. */
export class UpstreamConnectTimeoutError extends PortholeError {
  readonly code = 'PH_ERR_UPSTREAM_CONNECT_TIMEOUT';
  readonly status = 504;
  readonly closeCode = 1014;
}

/** The upstream accepted the request but sent no response head in `response_timeout`. */
export class UpstreamTimeoutError extends PortholeError {
  readonly code = 'PH_ERR_UPSTREAM_TIMEOUT';
  readonly status = 504;
  readonly closeCode = 1014;
}

/** The upstream answered with something that is not HTTP. */
export class UpstreamBadResponseError extends PortholeError {
  readonly code = 'PH_ERR_UPSTREAM_BAD_RESPONSE';
  readonly status = 502;
  readonly closeCode = 1014;
}

/** TLS to the upstream failed (certificate, hostname, protocol). */
export class UpstreamTlsError extends PortholeError {
  readonly code = 'PH_ERR_UPSTREAM_TLS';
  readonly status = 502;
  readonly closeCode = 1014;
}

/** The upstream host name did not resolve. */
export class UpstreamDnsError extends PortholeError {
  readonly code = 'PH_ERR_UPSTREAM_DNS';
  readonly status = 502;
  readonly closeCode = 1014;
}

/**
 * The gateway has no file descriptor left for the upstream connection
 * (EMFILE/ENFILE): its open-file limit is reached. Not the upstream's fault,
 * and it passes once connections close: 503 and 1013 (try again later).
 */
export class FdLimitError extends PortholeError {
  readonly code = 'PH_ERR_FD_LIMIT';
  readonly status = 503;
  readonly closeCode = 1013;
}

/**
 * A permessage-deflate message (RFC 7692) inflates to more than the caller's
 * bound: refused before the whole output exists, so a small compressed frame
 * cannot exhaust memory (a decompression bomb). Close 1009, like an oversized message.
 */
export class InflateLimitError extends PortholeError {
  readonly code = 'PH_ERR_INFLATE_LIMIT';
  readonly status = 413;
  readonly closeCode = 1009;
}

/** A permessage-deflate message is not valid raw deflate data for the negotiated window (RFC 7692 §7.2.2). */
export class InflateError extends PortholeError {
  readonly code = 'PH_ERR_INFLATE';
  readonly status = 400;
  readonly closeCode = 1007;
}

/** `porthole conformance --html DIR`: DIR is an existing file, or cannot be created or written. */
export class ReportDirError extends PortholeError {
  readonly code = 'PH_ERR_REPORT_DIR';
  readonly status = 500;
  readonly closeCode = 1011;
}

/**
 * The store a bridge reads its token targets from (`bridge_token_redis`:
 * Redis) did not answer in time or refused the command. Not the client's
 * fault and it passes once the store is back: 503 and 1013 (try again later).
 */
export class TokenStoreError extends PortholeError {
  readonly code = 'PH_ERR_TOKEN_STORE';
  readonly status = 503;
  readonly closeCode = 1013;
}

/**
 * A stdio app (`stdio`, `porthole stdio`) runs as many programs (one per
 * connection) as it may at once: the next upgrade is refused until one ends.
 * 503 and 1013 (try again later).
 */
export class StdioLimitError extends PortholeError {
  readonly code = 'PH_ERR_STDIO_LIMIT';
  readonly status = 503;
  readonly closeCode = 1013;
}

/** A stdio app's program could not be started (no such file, not executable). */
export class StdioSpawnError extends PortholeError {
  readonly code = 'PH_ERR_STDIO_SPAWN';
  readonly status = 502;
  readonly closeCode = 1011;
}

/**
 * A stdio app's program ended with a non-zero exit code or was killed by a
 * signal: its clients get 1011 with the status (and its last stderr line) in
 * the reason. An exit with code 0 is a normal close, 1000.
 */
export class StdioExitError extends PortholeError {
  readonly code = 'PH_ERR_STDIO_EXIT';
  readonly status = 502;
  readonly closeCode = 1011;
}

/** The app is known to be stopped (or failed): nothing will answer. */
export class AppStoppedError extends PortholeError {
  readonly code = 'PH_ERR_APP_STOPPED';
  readonly status = 503;
  readonly closeCode = 1013;
}

/** The app is starting and did not become ready in `start_timeout`. */
export class AppStartingError extends PortholeError {
  readonly code = 'PH_ERR_APP_STARTING';
  readonly status = 503;
  readonly closeCode = 1013;
}

/**
 * A browser asked for a page of an app that is waking (`wake_on_request`) and
 * not ready yet: it gets the waiting page (503, reloading itself) instead of
 * being held. API clients and WebSockets are held and never see this code.
 */
export class AppWakingError extends PortholeError {
  readonly code = 'PH_ERR_APP_WAKING';
  readonly status = 503;
  readonly closeCode = 1013;
  constructor(
    message: string,
    /** The app's state when the page was sent (`stopping`, `starting`…), shown on the page. */
    readonly state: string,
    details: ErrorDetails = {},
  ) {
    super(message, details);
  }
}

/**
 * A stored app no longer passes validation (its `error_page` was deleted, or
 * the schema changed): it is shown with state `invalid` and not routed.
 */
export class AppInvalidError extends PortholeError {
  readonly code = 'PH_ERR_APP_INVALID';
  readonly status = 503;
  readonly closeCode = 1011;
}

/** The gateway is draining and takes no new work. */
export class DrainingError extends PortholeError {
  readonly code = 'PH_ERR_DRAINING';
  readonly status = 503;
  readonly closeCode = 1001;
}

/** An admin API request body or parameter is invalid. `field` names the key path. */
export class BadRequestError extends PortholeError {
  readonly code = 'PH_ERR_BAD_REQUEST';
  readonly status = 400;
  readonly closeCode = 1008;
  readonly problems: readonly string[];
  constructor(problems: readonly string[] | string) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(list.join('; '));
    this.problems = list;
  }
}

/** An admin API request body is larger than the limit (1 MiB). */
export class BodyTooLargeError extends PortholeError {
  readonly code = 'PH_ERR_BODY_TOO_LARGE';
  readonly status = 413;
  readonly closeCode = 1009;
}

/** An admin API call without a valid token. */
export class UnauthorizedError extends PortholeError {
  readonly code = 'PH_ERR_UNAUTHORIZED';
  readonly status = 401;
  readonly closeCode = 1008;
}

/** An admin API call from a foreign Host (DNS rebinding) or Origin (cross-site request). */
export class ForbiddenError extends PortholeError {
  readonly code = 'PH_ERR_FORBIDDEN';
  readonly status = 403;
  readonly closeCode = 1008;
}

/**
 * An admin API call carried the dashboard's session cookie without the
 * session's CSRF secret (`X-Porthole-CSRF`): a page of another site, or a
 * script of an app on this origin, riding the dashboard's session.
 */
export class CsrfError extends PortholeError {
  readonly code = 'PH_ERR_CSRF';
  readonly status = 403;
  readonly closeCode = 1008;
}

/** No app of that name is registered. */
export class AppUnknownError extends PortholeError {
  readonly code = 'PH_ERR_APP_UNKNOWN';
  readonly status = 404;
  readonly closeCode = 1008;
}

/** The call conflicts with what exists (a name from the config file, a reserved name, a taken prefix or host). */
export class ConflictError extends PortholeError {
  readonly code = 'PH_ERR_CONFLICT';
  readonly status = 409;
  readonly closeCode = 1008;
}

/** The app has no `cmd`, so there is nothing to start or stop. */
export class AppNotSupervisedError extends PortholeError {
  readonly code = 'PH_ERR_APP_NO_CMD';
  readonly status = 409;
  readonly closeCode = 1008;
}

/** The app's `user`/`group` (or `app_defaults`) names nobody, or a gateway that is not root would have to become them. */
export class AppUserError extends PortholeError {
  readonly code = 'PH_ERR_APP_USER';
  readonly status = 400;
  readonly closeCode = 1008;
}

/** The app's process could not be spawned (its `cwd` is not a directory, /bin/sh cannot run…). */
export class AppSpawnError extends PortholeError {
  readonly code = 'PH_ERR_APP_SPAWN';
  readonly status = 500;
  readonly closeCode = 1011;
}

/** The registry file in the data directory cannot be read. */
export class StoreCorruptError extends PortholeError {
  readonly code = 'PH_ERR_STORE_CORRUPT';
  readonly status = 500;
  readonly closeCode = 1011;
}

/**
 * The cluster's store (Redis) cannot be reached, or did not answer in time:
 * a change through the API is refused (nothing is acknowledged that is not
 * stored); routing goes on from the last snapshot.
 */
export class StoreUnavailableError extends PortholeError {
  readonly code = 'PH_ERR_STORE_UNAVAILABLE';
  readonly status = 503;
  readonly closeCode = 1013;
}

/**
 * The app runs on another node of the cluster, and that node is down (no
 * heartbeat within the TTL) or not known: requests get 503, WebSockets 1013.
 */
export class NodeDownError extends PortholeError {
  readonly code = 'PH_ERR_NODE_DOWN';
  readonly status = 503;
  readonly closeCode = 1013;
}

/** Another live node of the cluster already has this node's name: the node does not start. */
export class NodeNameTakenError extends PortholeError {
  readonly code = 'PH_ERR_NODE_NAME_TAKEN';
  readonly status = 409;
  readonly closeCode = 1011;
}

/**
 * The separate metrics address (`metrics.listen`) cannot be bound (in use,
 * not an address of this machine): the server does not start.
 */
export class MetricsListenError extends PortholeError {
  readonly code = 'PH_ERR_METRICS_LISTEN';
  readonly status = 500;
  readonly closeCode = 1011;
}

/** `tls.cert` / `tls.key` cannot be read, are not PEM, or are not a pair: the gateway does not start, a reload keeps the certificate in force. */
export class TlsCertError extends PortholeError {
  readonly code = 'PH_ERR_TLS_CERT';
  readonly status = 500;
  readonly closeCode = 1011;
}

/** `tls: internal`: the local certificate authority in the data directory cannot be created, read or used. */
export class TlsCaError extends PortholeError {
  readonly code = 'PH_ERR_TLS_CA';
  readonly status = 500;
  readonly closeCode = 1011;
}

/** A cleartext WebSocket upgrade on a TLS port with `tls.redirect_http` on: the page must use `wss://`. */
export class TlsRequiredError extends PortholeError {
  readonly code = 'PH_ERR_TLS_REQUIRED';
  readonly status = 403;
  readonly closeCode = 1008;
}

/**
 * The gateway would listen on an address other than loopback with no `auth`
 * in its config: it refuses to start (docs/auth.md). `auth: login` (or
 * `token`, `forward_auth`) protects the apps; `auth: none` opts out.
 */
export class AuthUnsetError extends PortholeError {
  readonly code = 'PH_ERR_AUTH_UNSET';
  readonly status = 500;
  readonly closeCode = 1011;
}

/** An app with `auth: login` or `token` was asked for without a live session or a valid token. */
export class AuthRequiredError extends PortholeError {
  readonly code = 'PH_ERR_AUTH_REQUIRED';
  readonly status = 401;
  readonly closeCode = 1008;
}

/** A login with an unknown user or a wrong password, or a token that matches none. */
export class LoginFailedError extends PortholeError {
  readonly code = 'PH_ERR_LOGIN_FAILED';
  readonly status = 401;
  readonly closeCode = 1008;
}

/** Too many failed logins from one client address: 429 with Retry-After. */
export class LoginRateLimitedError extends PortholeError {
  readonly code = 'PH_ERR_LOGIN_RATE_LIMITED';
  readonly status = 429;
  readonly closeCode = 1008;
}

/** `forward_auth`: the auth service refused the request (its own answer is relayed to HTTP clients). */
export class AuthDeniedError extends PortholeError {
  readonly code = 'PH_ERR_AUTH_DENIED';
  readonly status = 403;
  readonly closeCode = 1008;
}

/** `forward_auth`: the auth service cannot be reached, timed out or did not answer HTTP. */
export class AuthUnavailableError extends PortholeError {
  readonly code = 'PH_ERR_AUTH_UNAVAILABLE';
  readonly status = 503;
  readonly closeCode = 1011;
}

/**
 * `workers: N` (docs/workers.md): a request to the primary's internal listener without the
 * per-start secret in `X-Porthole-Worker`, or with a wrong one. Only the workers hold it.
 */
export class WorkerAuthError extends PortholeError {
  readonly code = 'PH_ERR_WORKER_AUTH';
  readonly status = 403;
  readonly closeCode = 1008;
}

/**
 * `workers: N`: a worker could not pass a `/_porthole/` request (admin API, dashboard,
 * metrics, health) on to the primary, or ask it whether an app may take traffic.
 */
export class PrimaryUnreachableError extends PortholeError {
  readonly code = 'PH_ERR_PRIMARY_UNREACHABLE';
  readonly status = 502;
  readonly closeCode = 1011;
}

/** `workers: N`: a worker process ended while the gateway was not draining; it is replaced (logged only). */
export class WorkerExitError extends PortholeError {
  readonly code = 'PH_ERR_WORKER_EXIT';
  readonly status = 500;
  readonly closeCode = 1011;
}

/**
 * `workers: N`: workers ended more often than the restart limit allows (a crash at start,
 * every time): the slot is left empty rather than forked in a loop (logged only).
 */
export class WorkerRestartLimitError extends PortholeError {
  readonly code = 'PH_ERR_WORKER_RESTARTS';
  readonly status = 500;
  readonly closeCode = 1011;
}

/**
 * A request to a node's peer listener (the hop between cluster nodes, docs/cluster.md) without the
 * cluster secret in `X-Porthole-Peer`, or with a wrong one: nothing is routed.
 */
export class PeerAuthError extends PortholeError {
  readonly code = 'PH_ERR_PEER_AUTH';
  readonly status = 403;
  readonly closeCode = 1008;
}

/**
 * The node that runs the app refused this node's cluster secret (PeerAuthError there): the
 * nodes do not share one secret (a rotation half done). The client gets a gateway failure.
 */
export class PeerRefusedError extends PortholeError {
  readonly code = 'PH_ERR_PEER_REFUSED';
  readonly status = 502;
  readonly closeCode = 1014;
}

/** `porthole init`: no template of that name (the message names the nearest one). CLI exit code 2. */
export class InitTemplateError extends PortholeError {
  readonly code = 'PH_ERR_INIT_TEMPLATE';
  readonly status = 404;
  readonly closeCode = 1008;
}

/** `porthole init`: the app name (`--name`, or the one taken from DIR) is not a valid app name. CLI exit code 2. */
export class InitNameError extends PortholeError {
  readonly code = 'PH_ERR_INIT_NAME';
  readonly status = 400;
  readonly closeCode = 1008;
}

/** `porthole init`: DIR holds files already and `--force` was not given: nothing is written. CLI exit code 2. */
export class InitDirNotEmptyError extends PortholeError {
  readonly code = 'PH_ERR_INIT_NOT_EMPTY';
  readonly status = 409;
  readonly closeCode = 1008;
}

/** `porthole init`: DIR or a file in it cannot be created or written (a file in the way, no permission, a full disk). CLI exit code 1. */
export class InitWriteError extends PortholeError {
  readonly code = 'PH_ERR_INIT_WRITE';
  readonly status = 500;
  readonly closeCode = 1011;
}

/**
 * `porthole conformance`: the endpoint under test cannot be reached (refused,
 * no DNS, TLS failure, no answer in time). Nothing was tested.
 */
export class ConformanceConnectError extends PortholeError {
  readonly code = 'PH_ERR_CONFORMANCE_CONNECT';
  readonly status = 502;
  readonly closeCode = 1014;
}

/**
 * `porthole conformance`: the endpoint answered the upgrade with something
 * other than a valid 101 (a refusal, a wrong Sec-WebSocket-Accept). Nothing was tested.
 */
export class ConformanceHandshakeError extends PortholeError {
  readonly code = 'PH_ERR_CONFORMANCE_HANDSHAKE';
  readonly status = 502;
  readonly closeCode = 1014;
}

/** A failure Porthole did not foresee: a bug to report, logged with its stack. */
export class InternalError extends PortholeError {
  readonly code = 'PH_ERR_INTERNAL';
  readonly status = 500;
  readonly closeCode = 1011;
}

/** Turns a socket-level error from an upstream connection into a Porthole error. */
export function upstreamError(err: unknown, app: string, target: string): PortholeError {
  if (err instanceof PortholeError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  const details = { app, cause: err };
  switch (code) {
    case 'ECONNREFUSED':
    case 'ENOENT': // unix socket path missing
      return new UpstreamRefusedError(`${app}: upstream ${target} refused the connection`, details);
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      return new UpstreamResetError(`${app}: upstream ${target} reset the connection`, details);
    case 'ETIMEDOUT':
      return new UpstreamConnectTimeoutError(`${app}: connecting to ${target} timed out`, details);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UpstreamDnsError(`${app}: upstream host of ${target} does not resolve`, details);
    case 'EMFILE':
    case 'ENFILE':
      return new FdLimitError(`${app}: the gateway is out of file descriptors (${code}) for a connection to ${target}: raise its open-file limit (ulimit -n, systemd LimitNOFILE)`, details);
  }
  if (code.startsWith('HPE_')) {
    return new UpstreamBadResponseError(`${app}: upstream ${target} answered with something that is not HTTP`, details);
  }
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return new UpstreamTlsError(`${app}: TLS to ${target} failed (${code})`, details);
  }
  if (e?.message === 'socket hang up') {
    return new UpstreamResetError(`${app}: upstream ${target} closed the connection before answering`, details);
  }
  return new UpstreamResetError(`${app}: upstream ${target} failed (${code || e?.message || 'unknown error'})`, details);
}

/** Every error code, for docs and for the test that checks each is documented. */
export const ERROR_CODES = [
  'PH_ERR_CONFIG',
  'PH_ERR_NOT_FOUND',
  'PH_ERR_BAD_HOST',
  'PH_ERR_HOST_REFUSED',
  'PH_ERR_BAD_HANDSHAKE',
  'PH_ERR_WS_VERSION',
  'PH_ERR_MALFORMED_REQUEST',
  'PH_ERR_REQUEST_TIMEOUT',
  'PH_ERR_HEADERS_TOO_LARGE',
  'PH_ERR_REQUEST_ABORTED',
  'PH_ERR_ORIGIN_REFUSED',
  'PH_ERR_WS_PATH_REFUSED',
  'PH_ERR_UPSTREAM_REFUSED',
  'PH_ERR_UPSTREAM_RESET',
  'PH_ERR_UPSTREAM_CONNECT_TIMEOUT',
  'PH_ERR_UPSTREAM_TIMEOUT',
  'PH_ERR_UPSTREAM_BAD_RESPONSE',
  'PH_ERR_UPSTREAM_TLS',
  'PH_ERR_UPSTREAM_DNS',
  'PH_ERR_FD_LIMIT',
  'PH_ERR_INFLATE_LIMIT',
  'PH_ERR_INFLATE',
  'PH_ERR_REPORT_DIR',
  'PH_ERR_TOKEN_STORE',
  'PH_ERR_STDIO_LIMIT',
  'PH_ERR_STDIO_SPAWN',
  'PH_ERR_STDIO_EXIT',
  'PH_ERR_APP_STOPPED',
  'PH_ERR_APP_STARTING',
  'PH_ERR_APP_WAKING',
  'PH_ERR_APP_INVALID',
  'PH_ERR_DRAINING',
  'PH_ERR_BAD_REQUEST',
  'PH_ERR_BODY_TOO_LARGE',
  'PH_ERR_UNAUTHORIZED',
  'PH_ERR_FORBIDDEN',
  'PH_ERR_CSRF',
  'PH_ERR_APP_UNKNOWN',
  'PH_ERR_CONFLICT',
  'PH_ERR_APP_NO_CMD',
  'PH_ERR_APP_USER',
  'PH_ERR_APP_SPAWN',
  'PH_ERR_STORE_CORRUPT',
  'PH_ERR_STORE_UNAVAILABLE',
  'PH_ERR_NODE_DOWN',
  'PH_ERR_NODE_NAME_TAKEN',
  'PH_ERR_METRICS_LISTEN',
  'PH_ERR_NATIVE_TUNNEL',
  'PH_ERR_TLS_CERT',
  'PH_ERR_TLS_CA',
  'PH_ERR_TLS_REQUIRED',
  'PH_ERR_AUTH_UNSET',
  'PH_ERR_AUTH_REQUIRED',
  'PH_ERR_LOGIN_FAILED',
  'PH_ERR_LOGIN_RATE_LIMITED',
  'PH_ERR_AUTH_DENIED',
  'PH_ERR_AUTH_UNAVAILABLE',
  'PH_ERR_PEER_AUTH',
  'PH_ERR_PEER_REFUSED',
  'PH_ERR_WORKER_AUTH',
  'PH_ERR_PRIMARY_UNREACHABLE',
  'PH_ERR_WORKER_EXIT',
  'PH_ERR_WORKER_RESTARTS',
  'PH_ERR_INIT_TEMPLATE',
  'PH_ERR_INIT_NAME',
  'PH_ERR_INIT_NOT_EMPTY',
  'PH_ERR_INIT_WRITE',
  'PH_ERR_CONFORMANCE_CONNECT',
  'PH_ERR_CONFORMANCE_HANDSHAKE',
  'PH_ERR_INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];
