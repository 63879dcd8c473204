/**
 * What the request handlers need from the gateway that owns them. Kept as an
 * interface so forwarding and upgrade code do not depend on the listener,
 * reload or drain logic.
 */
import type { IncomingMessage } from 'node:http';
import type { PortholeError } from '../errors.js';
import type { BridgeConnection } from './bridge-connection.js';
import type { StdioApps } from './stdio-apps.js';
import type { Tunnel } from './tunnel.js';

export interface GatewayCore {
  /** Distinguishes gateways in one process (tests, libraries) in events. */
  readonly id: string;
  readonly draining: boolean;
  readonly trustForwarded: boolean;
  readonly tunnels: Set<Tunnel>;
  /** Open WebSocket→TCP bridge connections (apps with a bridge); drained like tunnels. */
  readonly bridges: Set<BridgeConnection>;
  /** The `stdio` apps' programs and connections; drained like tunnels. */
  readonly stdio: StdioApps;
  /** The global error page template, if any. */
  readonly errorPage: string | undefined;
  /** Scheme the client used to reach us. */
  proto(req: IncomingMessage): 'http' | 'https';
  /** The client-facing host from X-Forwarded-Host when trusted, for same-origin checks. */
  forwardedHost(req: IncomingMessage): string | undefined;
  /**
   * Whether an app can take traffic: null when it can right now (the fast
   * path, no promise), or a promise that settles when a starting app is ready
   * (null) or cannot be (the error to answer with).
   */
  appGate(app: string): null | Promise<PortholeError | null>;
}
