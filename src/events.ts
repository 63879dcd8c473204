/**
 * Lifecycle events, published on `node:diagnostics_channel`. The core only
 * publishes; the logger (and later metrics and the dashboard) subscribe. A
 * channel without subscribers costs one property read on the hot path.
 */
import diagnostics from 'node:diagnostics_channel';

export interface EventMap {
  /** An HTTP request finished (or failed). */
  request: { app: string | null; method: string; path: string; status: number; ms: number; code?: string; gateway: string };
  /** A WebSocket upgrade was accepted (101 from the upstream) or refused. */
  upgrade: { app: string | null; path: string; accepted: boolean; status?: number; code?: string; reason?: string; closeCode?: number; gateway: string; /** On an accepted proxied upgrade: from connecting to the app to the 101 sent back. */ ms?: number; /** The client's handshake: HTTP/1.1 Upgrade, or an HTTP/2 extended CONNECT (RFC 8441). Set by every upgrade the gateway handles. */ protocol?: 'h2' | 'http/1.1' };
  /** A tunnel ended. `closedBy` says which side sent the first close frame (or cut the TCP connection). */
  'tunnel.close': {
    app: string;
    path: string;
    ms: number;
    bytesIn: number;
    bytesOut: number;
    framesIn: number;
    framesOut: number;
    /** Data messages each way (the bridge: WebSocket messages from the client, TCP chunks to it). */
    messagesIn?: number;
    messagesOut?: number;
    /** The connection's number (as in the admin API's `tunnels`), `tunnel` (proxied) or `bridge`, and the client's `address:port`. */
    id?: number;
    kind?: 'tunnel' | 'bridge' | 'stdio';
    /** Tunnels and bridges: who moved the bytes, the native addon's loop or JavaScript. */
    engine?: 'native' | 'js';
    client?: string;
    closeCode: number | null;
    closedBy: 'client' | 'upstream' | 'gateway';
    reason?: string;
    gateway: string;
  };
  /** A config was loaded, swapped in, or rejected. */
  config: { action: 'loaded' | 'reloaded' | 'rejected'; source: string; apps?: number; error?: string; code?: string };
  /** The gateway's own lifecycle. */
  gateway: { action: 'listening' | 'draining' | 'closed'; address?: string; tunnels?: number; requests?: number; gateway: string; /** On `listening`: each app's URLs (prefix, host names). */ apps?: Record<string, string[]>; /** On `listening`: who moves tunnels' bytes, and why not native when it is not. */ tunnelEngine?: 'native' | 'js'; tunnelEngineWhy?: string; /** On `listening`: the front (front.ts) takes WebSocket handshakes. */ front?: boolean; /** On `listening`: what the front lacks here, when it lacks something (its accepts not deferred). */ frontWhy?: string };
  /** A failure that is not tied to one request (socket errors, watcher errors). */
  error: { code: string; message: string; app?: string; gateway?: string };
  /**
   * The listener's certificate: `loaded` at start, `renewed` (internal, near expiry or new names),
   * `reloaded` (the files changed), `rejected` (new files or a renewal failed; the one in force stays).
   */
  tls: { action: 'loaded' | 'renewed' | 'reloaded' | 'rejected'; source: 'files' | 'internal'; names?: readonly string[]; notAfter?: string; serial?: string; code?: string; error?: string; gateway: string };
  /**
   * Access control (docs/auth.md): a `login`, a `login_failed` (with its code), a login
   * `rate_limited`, a `logout`, a `token` exchanged for a session, a cross-host `handoff`.
   */
  auth: { action: 'login' | 'login_failed' | 'rate_limited' | 'logout' | 'token' | 'handoff'; user?: string; client?: string; host?: string; code?: string; gateway: string };
  /**
   * A cluster node's view (docs/cluster.md): it `joined`; another node is `node_up` / `node_down`;
   * it became the `leader` (places `node: any` apps) or a `follower`; an app was `placed`;
   * the store went `store_down` / `store_up`; it read the whole registry again (`resync`);
   * it wrote its registry back into a Redis that had lost it (`reseed`); it took the cluster
   * secret another node wrote back into such a Redis (`secret`).
   */
  cluster: { action: 'joined' | 'node_up' | 'node_down' | 'leader' | 'follower' | 'placed' | 'store_down' | 'store_up' | 'resync' | 'reseed' | 'secret' | 'forgot'; node: string; app?: string; nodes?: number; version?: number; message?: string };
  /**
   * After a burst of connections, the quiet moment that followed was used for one full garbage
   * collection (memory-reducer.ts): how many connections the burst had, how long the collection
   * took, and the JavaScript heap in use before and after it, in MiB.
   */
  memory: { action: 'collected'; connections: number; ms: number; heapBeforeMiB: number; heapAfterMiB: number };
  /** A supervised app changed state. */
  app: { app: string; state: string; pid?: number; exit?: { code: number | null; signal: string | null }; message?: string; /** With state `routed` (a new app on a listening gateway): its URLs. */ urls?: string[] };
}

export type EventName = keyof EventMap;

const channels = new Map<EventName, diagnostics.Channel>();

export function channel(name: EventName): diagnostics.Channel {
  let ch = channels.get(name);
  if (!ch) {
    ch = diagnostics.channel(`porthole:${name}`);
    channels.set(name, ch);
  }
  return ch;
}

export function emit<N extends EventName>(name: N, data: EventMap[N]): void {
  const ch = channel(name);
  if (ch.hasSubscribers) ch.publish(data);
}

export function subscribe<N extends EventName>(name: N, fn: (data: EventMap[N]) => void): () => void {
  const handler = (data: unknown) => fn(data as EventMap[N]);
  diagnostics.subscribe(`porthole:${name}`, handler);
  return () => diagnostics.unsubscribe(`porthole:${name}`, handler);
}

export const EVENT_NAMES: readonly EventName[] = ['request', 'upgrade', 'tunnel.close', 'config', 'gateway', 'error', 'app', 'tls', 'auth', 'cluster', 'memory'];
