/**
 * What the request handlers need from the gateway that owns them. Kept as an
 * interface so forwarding and upgrade code do not depend on the listener,
 * reload or drain logic.
 */
import type { IncomingMessage } from 'node:http';
import type { PortholeError } from '../errors.js';
import type { AppActivity } from './app-activity.js';
import type { OpenBridge } from './bridge.js';
import type { StdioApps } from './stdio-apps.js';
import type { Match } from './router.js';
import type { NativeTunnel } from './native-tunnel.js';
import type { TunnelEngine } from './native-binding.js';
import type { Tunnel } from './tunnel.js';

/** An open WebSocket tunnel, moved by JavaScript or by the native addon. */
export type OpenTunnel = Tunnel | NativeTunnel;

export interface GatewayCore {
  /** Distinguishes gateways in one process (tests, libraries) in events. */
  readonly id: string;
  readonly draining: boolean;
  readonly trustForwarded: boolean;
  readonly tunnels: Set<OpenTunnel>;
  /** Upgrades waiting for the upstream's answer: a drain gives each up (1001) rather than waiting for the upstream. */
  readonly handshakes: Set<() => void>;
  /** Who moves tunnels' bytes (`tunnel_engine`, PORTHOLE_TUNNEL): the native addon or JavaScript. */
  readonly tunnelEngine: TunnelEngine;
  /** Open WebSocket→TCP bridge connections (apps with a bridge); drained like tunnels. */
  readonly bridges: Set<OpenBridge>;
  /** The `stdio` apps' programs and connections; drained like tunnels. */
  readonly stdio: StdioApps;
  /** The global error page template, if any. */
  readonly errorPage: string | undefined;
  /** Scheme the client used to reach us. */
  proto(req: IncomingMessage): 'http' | 'https';
  /** The client-facing host from X-Forwarded-Host when trusted, for same-origin checks. */
  forwardedHost(req: IncomingMessage): string | undefined;
  /** Each app's requests in flight and last use (idle_stop reads it). */
  readonly activity: AppActivity;
  /**
   * Whether an app can take traffic: null when it can right now (the fast
   * path, no promise), or a promise that settles when a starting app is ready
   * (null) or cannot be (the error to answer with). `req`, for a plain HTTP
   * request: a browser's GET for a waking app may get the waiting page
   * (AppWakingError) instead of being held.
   */
  appGate(app: string, req?: IncomingMessage): null | Promise<PortholeError | null>;
  /**
   * A request held by appGate, routed again once its app is ready: the routes
   * may have changed meanwhile (a woken app given a new port). The same match
   * when its app is no longer routed there.
   */
  rematch(req: IncomingMessage, match: Match, upgrade: boolean): Match;
}
