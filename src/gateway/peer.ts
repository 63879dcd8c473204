/**
 * The hop between the nodes of a cluster (docs/cluster.md, "The hop between
 * nodes"). A request that reaches node A for an app that runs on node B is
 * forwarded to B's peer listener, which routes it to the app on B's loopback
 * as if the client had come to B and been admitted there.
 *
 * Edge side (A): a route whose target is a peer (`peerTarget`), a request sent
 * on verbatim (no prefix stripping, no rewriting: B does that once), with the
 * cluster secret and the identity A admitted in `X-Porthole-Peer*` headers.
 *
 * Peer side (B): a second listener of the same gateway (`createPeerServer`)
 * that answers only requests carrying the secret (`peerSecretRefusal`); for
 * those, A's Host check and access decision stand (`peerAdmission`) and A's
 * `X-Forwarded-*` headers are trusted (`trustsForwarded`).
 *
 * Every `X-Porthole-Peer*` header a client sends is dropped on the way to an
 * app (headers.ts), on every listener.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { ConfigError, PeerAuthError, PeerRefusedError } from '../errors.js';
import type { Admission } from '../auth/admission.js';
import type { AppConfig, Config } from '../config/schema.js';
import type { AgentPool, Target } from './router.js';

/** The cluster secret, on every request from one node's gateway to another's peer listener. */
export const PEER_HEADER = 'X-Porthole-Peer';
/** The user the edge node admitted (URI-encoded), when there is one. */
export const PEER_USER_HEADER = 'X-Porthole-Peer-User';

/** Where an app that runs on another node is reached: that node's peer listener. */
export interface PeerTarget {
  /** The node's name: error messages and close reasons name it. */
  node: string;
  /** `http://host:port` or `https://host:port` of the node's peer listener (no path). */
  url: string;
  /** The cluster secret its peer listener expects. */
  secret: string;
  /** PEM of the CA that signed the peer listener's certificate (`https:` only); default: the system's CAs. */
  ca?: string;
}

/** The second argument of `Gateway.reload` and `Gateway.validate`. */
export interface RouteExtras {
  /** Apps (by name) that run on another node: their HTTP and WebSocket traffic goes to that node's peer listener. */
  peers?: ReadonlyMap<string, PeerTarget>;
}

export interface PeerListenOptions {
  host: string;
  port: number;
  /** The cluster secret, read for every request (so it can rotate). An empty secret admits nobody. */
  secret: () => string;
  /**
   * Serve TLS on the peer listener. Each value is PEM text, or the path of a
   * PEM file (anything not starting with `-----BEGIN`). `ca`: intermediate
   * certificates sent after `cert`.
   */
  tls?: { cert: string; key: string; ca?: string };
  /** How long a client may take to send its request head (default: the config's `header_timeout`). */
  headersTimeoutMs?: number;
}

/** The supervisor's default `start_timeout` (admin/registry.ts): how long the node running an app may hold a request while the app starts. */
const DEFAULT_START_TIMEOUT_MS = 60_000;
/** Time for the node running the app to turn its own timeout into an answer and send it back. */
const PEER_ANSWER_MARGIN_MS = 1_000;

/**
 * How long the edge waits for the head of a peer's answer. The node running the app may hold
 * the request while the app starts (`start_timeout`), then connect to it and wait for it with
 * the app's own timeouts; its answer (a 503 or 504 naming the app) must arrive before the edge
 * gives up and answers a 504 that names only the node. 0 (no limit) stays 0.
 */
export function peerResponseMs(app: AppConfig, cfg: Config): number {
  const response = app.response_timeout ?? cfg.response_timeout;
  if (response <= 0) return 0;
  return (app.start_timeout ?? DEFAULT_START_TIMEOUT_MS) + (app.connect_timeout ?? cfg.connect_timeout) + response + PEER_ANSWER_MARGIN_MS;
}

/** A peer's route target: the node's peer listener, labelled with the node's name for error messages. */
export function peerTarget(app: string, peer: PeerTarget, agents: AgentPool): Target {
  const problem = (msg: string) => new ConfigError([`peers.${app}: ${msg}`]);
  let u: URL;
  try {
    u = new URL(peer.url);
  } catch {
    throw problem(`url ${JSON.stringify(peer.url)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw problem(`url ${peer.url} must be http:// or https://`);
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.username || u.password) throw problem(`url ${peer.url} must be scheme://host:port only`);
  // The secret goes out as a header value: nothing a header cannot carry, and never empty.
  if (!/^[\x21-\x7e]+$/.test(peer.secret)) throw problem('secret must be non-empty visible ASCII (no spaces or control characters)');
  if (!/^[\x21-\x7e]+$/.test(peer.node)) throw problem('node must be a non-empty name');
  const secure = u.protocol === 'https:';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port ? Number(u.port) : secure ? 443 : 80;
  const servername = secure && !isIP(host) ? host : undefined;
  const kind = secure ? 'tls' : 'tcp';
  const ca = secure ? peer.ca : undefined;
  return {
    kind,
    host,
    port,
    basePath: '',
    scheme: secure ? 'https' : 'http',
    authority: u.host,
    servername,
    rejectUnauthorized: true,
    ca,
    label: `node ${peer.node} (${u.host})`,
    // A pool per app, as for an app on this node: long requests (event streams) to one app
    // cannot take every connection to the node from its other apps.
    agent: agents.get(kind, `${host}:${port}#${app}`, { servername, rejectUnauthorized: true, ca }),
  };
}

/**
 * The refusal of a peer node's answer that says it refused this node's secret (its
 * PH_ERR_PEER_AUTH), or null: relayed as it is, a client would read a 403 as its own
 * fault, and a browser's WebSocket would fail with a bare 1006.
 */
export function peerRefusal(app: string, target: Target, status: number | undefined, headers: IncomingHttpHeaders): PeerRefusedError | null {
  if (status !== 403 || headers['x-porthole-error'] !== 'PH_ERR_PEER_AUTH') return null;
  return new PeerRefusedError(`${app}: ${target.label} refused the cluster secret of this node`, { app });
}

/**
 * Sent only with a node's own admin calls to another node's peer listener (the
 * registry version the caller holds). The peer listener takes a `/_porthole/`
 * request for an admin call only when it carries this header, so it is one of
 * the gateway's own headers: a client's copy never passes a node.
 */
export const REGISTRY_VERSION_HEADER = 'x-porthole-registry-version';

/** Whether a lower-cased header name is one of the peer headers (or the admin calls' version), in any `-`/`_` spelling. */
export function isPeerHeader(lower: string): boolean {
  // 'x' first: the common header names cost one comparison.
  if (lower.length < 15 || lower.charCodeAt(0) !== 120) return false;
  const name = lower.includes('_') ? lower.replaceAll('_', '-') : lower;
  return name.startsWith('x-porthole-peer') || name === REGISTRY_VERSION_HEADER;
}

/** Requests that came in on a peer listener with the right secret. */
const peerRequests = new WeakSet<IncomingMessage>();

export function markPeerRequest(req: IncomingMessage): void {
  peerRequests.add(req);
}

export function isPeerRequest(req: IncomingMessage): boolean {
  return peerRequests.has(req);
}

/** Whether the request's `X-Forwarded-*` are believed: `trust_forwarded`, or an authenticated peer (the edge node set them). */
export function trustsForwarded(gw: { readonly trustForwarded: boolean }, req: IncomingMessage): boolean {
  return gw.trustForwarded || peerRequests.has(req);
}

/**
 * What the edge node admitted, as the app's request is to carry it: the user
 * (sent on as `X-Forwarded-User` by headers.ts). The edge has already removed
 * the gateway's cookie and a consumed Authorization (or kept them, with
 * `auth_forward_credentials`), and added forward_auth's headers: nothing is
 * stripped again here.
 */
export function peerAdmission(req: IncomingMessage): Admission {
  const raw = req.headers['x-porthole-peer-user'];
  let user: string | undefined;
  if (typeof raw === 'string' && raw !== '') {
    try {
      user = decodeURIComponent(raw);
    } catch {
      user = undefined;
    }
  }
  return { user, stripCookie: false, stripAuthorization: false, replace: EMPTY, headers: [] };
}

const EMPTY: ReadonlySet<string> = new Set();

/** The peer header value of a user name (URI-encoded: a header carries no line breaks or non-ASCII). */
export function encodePeerUser(user: string): string {
  return encodeURIComponent(user);
}

/**
 * Checks the secret on a request to the peer listener: null when it matches,
 * else the refusal. Compared as SHA-256 digests in constant time, so neither
 * the content nor the length of the secret shows in the timing.
 */
export class PeerSecret {
  private last = '';
  private digest: Buffer = Buffer.alloc(32);

  constructor(private readonly read: () => string) {}

  refusal(req: IncomingMessage): PeerAuthError | null {
    const secret = this.read();
    const from = req.socket.remoteAddress ?? 'unknown';
    if (typeof secret !== 'string' || secret === '') return new PeerAuthError(`peer request from ${from} refused: this node has no cluster secret`);
    if (secret !== this.last) {
      this.last = secret;
      this.digest = sha256(secret);
    }
    const got = req.headers['x-porthole-peer'];
    if (typeof got !== 'string' || got === '') return new PeerAuthError(`peer request from ${from} without ${PEER_HEADER}`);
    if (!timingSafeEqual(sha256(got), this.digest)) return new PeerAuthError(`peer request from ${from} with a wrong cluster secret`);
    return null;
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** PEM text as given, or read from the file it names. */
function pem(value: string): string {
  return value.trimStart().startsWith('-----BEGIN') ? value : readFileSync(value, 'utf8');
}

/** The peer listener's server: HTTP/1.1, over TLS when `tls` is given; same timeouts as the main listener. */
export function createPeerServer(opts: PeerListenOptions, headersTimeout: number): http.Server {
  const settings: http.ServerOptions = {
    noDelay: true,
    requestTimeout: 0,
    headersTimeout,
    connectionsCheckingInterval: headersTimeout > 0 ? Math.min(30_000, Math.max(100, Math.round(headersTimeout / 4))) : 30_000,
    keepAliveTimeout: 65_000,
  };
  if (!opts.tls) return http.createServer(settings);
  const { cert, key, ca } = opts.tls;
  return https.createServer({ ...settings, cert: pem(cert), key: pem(key), ...(ca ? { ca: pem(ca) } : {}), ALPNProtocols: ['http/1.1'] });
}
