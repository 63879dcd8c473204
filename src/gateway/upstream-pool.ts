/**
 * Keep-alive connection pools (undici) for the gateway's most frequent
 * exchange: a plain-HTTP or unix-socket GET or OPTIONS without a body. Node's
 * http.request machinery (ClientRequest, the agent's bookkeeping, a readable
 * IncomingMessage per response) cost about a third more CPU per request than
 * undici's dispatcher with a handler that copies the body straight to the
 * client. Requests with a body, upgrades, HEAD and TLS targets keep
 * http.request (upstream-request.ts): undici writes a request head only with
 * the body's first chunk (an upload streaming beside its answer needs it at
 * once), refuses `Expect`, and fails a request on an interim `100 Continue`.
 *
 * One pool per target and connect timeout, held on the target's http.Agent:
 * a route snapshot that stops using the agent forgets its pools with it, and
 * idle pooled connections close after 4 s, as the agent's do.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import { Client, Pool, type Dispatcher } from 'undici';
import type { Target } from './router.js';

const kPools = Symbol('porthole.undiciPools');
const kUses = Symbol('porthole.connectionUses');
const kClient = Symbol('porthole.client');
const kContinues = Symbol('porthole.sendsContinue');

type PooledAgent = http.Agent & { [kPools]?: Map<number, Pool>; [kContinues]?: boolean };
type Counted = Client & { [kUses]: number };

/** A dispatch handler, told by the pool's client which connection took its request. */
interface ClientAware {
  [kClient]?: Counted;
}

/**
 * Whether the request about to be written (called from the handler's onConnect) goes out on a
 * connection that has carried a request before: a reset there may be the upstream closing an
 * idle connection just as it was reused, which is safe to retry once.
 */
export function onReusedConnection(handler: object): boolean {
  const client = (handler as ClientAware)[kClient];
  if (client === undefined) return false;
  return client[kUses]++ > 0;
}

function freshConnection(this: Counted): void {
  this[kUses] = 0;
}

/**
 * The code a reset from the upstream (ECONNRESET) carries while undici handles it; the
 * handler reads it back as ECONNRESET (peerReset()).
 *
 * undici 7.30 reads a reset on a connection whose response has no keep-alive (no length and
 * no chunking, `Connection: close`, HTTP/1.0) as the end of that response (macOS resets after
 * a whole body, its comment says). A body delimited by the connection's close then reached the
 * client as whole when it had been broken off; and on a connection paused for a slow client,
 * its parser failed an assertion, an exception that ended the gateway. Node's client (the
 * http.request path) reads a reset as a broken response, and so does the gateway now: the
 * listener below comes before undici's on every pooled connection and renames the reset, which
 * undici then fails the exchange with, as it does any other socket error.
 */
const PEER_RESET = 'PH_UPSTREAM_ECONNRESET';

function renameReset(err: NodeJS.ErrnoException): void {
  if (err.code === 'ECONNRESET') err.code = PEER_RESET;
}

/** An error undici passed on, with a reset's code put back (renameReset()). */
export function peerReset(err: Error): Error {
  const e = err as NodeJS.ErrnoException;
  if (e.code === PEER_RESET) e.code = 'ECONNRESET';
  return err;
}

type Connector = (options: object, callback: (err: Error | null, socket: Socket | null) => void) => void;

// Each pooled client counts the requests of its current connection (a Client holds one
// connection at a time; 'connect' announces a new one before any request is written on it).
function clientFactory(origin: URL, opts: { connect: Connector }): Dispatcher {
  const connect = opts.connect;
  const connectFirst: Connector = (options, callback) =>
    connect(options, (err, socket) => {
      // Called before undici adds its own listeners to the new connection.
      if (socket !== null && socket !== undefined) socket.on('error', renameReset);
      callback(err, socket);
    });
  const client = new Client(origin, { ...opts, connect: connectFirst } as unknown as Client.Options) as Counted;
  client[kUses] = 0;
  client.on('connect', freshConnection);
  const dispatch = client.dispatch;
  client.dispatch = function (this: Counted, o: Dispatcher.DispatchOptions, h: Dispatcher.DispatchHandler): boolean {
    (h as ClientAware)[kClient] = client;
    return dispatch.call(this, o, h);
  };
  return client;
}

/**
 * Whether a target is reached through an undici pool (plain TCP and unix sockets), unless it
 * has answered an interim 100 Continue to a pooled request (sendsContinue()).
 */
export function poolable(t: Target): boolean {
  return (t.kind === 'unix' || (t.kind === 'tcp' && t.port !== 0)) && (t.agent as PooledAgent)[kContinues] !== true;
}

/**
 * The target answered a pooled request with an interim 100 Continue, which undici cannot take
 * (it closes the connection), so the request was sent again through http.request. Its GETs and
 * OPTIONS go through http.request from now on rather than each being sent twice; remembered on
 * the agent, so forgotten with it when a reload points the app elsewhere.
 */
export function sendsContinue(t: Target): void {
  (t.agent as PooledAgent)[kContinues] = true;
}

/** The pool for a target and connect timeout (0: no limit), created on first use. */
export function poolFor(t: Target, connectMs: number): Pool {
  const agent = t.agent as PooledAgent;
  let pools = agent[kPools];
  if (pools === undefined) pools = agent[kPools] = new Map();
  let pool = pools.get(connectMs);
  if (pool === undefined) {
    const unix = t.kind === 'unix';
    const origin = unix ? 'http://localhost' : `http://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
    pool = new Pool(origin, {
      factory: clientFactory as unknown as Pool.Options['factory'],
      // As the agent: up to 256 connections, idle ones closed after 4 s (before the usual 5 s
      // server keep-alive timeout, so a request rarely picks a connection being closed). Never
      // longer, whatever an upstream's `Keep-Alive: timeout=…` offers (undici would keep an
      // idle connection for as long as it says, minus 2 s).
      connections: 256,
      pipelining: 1,
      keepAliveTimeout: 4000,
      keepAliveMaxTimeout: 4000,
      // The gateway times the response head itself (route.responseMs); a body may take as long
      // as it takes (event streams, long downloads).
      headersTimeout: 0,
      bodyTimeout: 0,
      connectTimeout: connectMs,
      ...(unix ? { socketPath: t.socketPath } : {}),
    });
    pools.set(connectMs, pool);
  }
  return pool;
}

/** How many undici pools an agent holds (tests). */
export function poolsOf(agent: http.Agent): number {
  return (agent as PooledAgent)[kPools]?.size ?? 0;
}

/** Closes an agent's pools and their connections (the gateway is closing). */
export function destroyPools(agent: http.Agent): void {
  const pools = (agent as PooledAgent)[kPools];
  if (pools === undefined) return;
  (agent as PooledAgent)[kPools] = undefined;
  for (const pool of pools.values()) pool.destroy().catch(() => {});
}
