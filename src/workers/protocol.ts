/**
 * The messages between the primary and its workers (`workers: N`, docs/workers.md), over
 * node:cluster's IPC channel. The primary owns the state (registry, supervisor, store,
 * admin API); a worker owns connections. What crosses is small: the route table, the
 * answer to "may this app take traffic", batches of events, and each worker's open
 * connections.
 */
import type { Config } from '../config/schema.js';
import type { EventMap, EventName } from '../events.js';
import { AppWakingError, PortholeError } from '../errors.js';
import type { LiveConnection } from '../gateway/tunnel.js';

/** The header that carries the per-start secret on the hop from a worker to the primary. */
export const WORKER_HEADER = 'x-porthole-worker';
/** The client's addresses as the worker saw them (JSON `ClientAddress`): the admin API's loopback check needs the client's, not the worker's. */
export const WORKER_CLIENT_HEADER = 'x-porthole-worker-client';

export interface ClientAddress {
  remote: string;
  remotePort: number;
  local: string;
  localPort: number;
  /** The pid of the worker that took the connection (`/_porthole/health` shows it). */
  worker: number;
}

/** Everything a worker needs to route: sent before it listens, then on every change. */
export interface Snapshot {
  t: 'snapshot';
  /** The route table's config: the config file's apps and the registry's, with the ports the supervisor gave them. */
  config: Config;
  /**
   * Apps a request may go to without asking: running, or not run by Porthole. Any other app
   * (starting, stopped, sleeping, invalid) is asked about (`gate`), so a stopped app is
   * woken by the primary, which runs it.
   */
  open: string[];
}

export interface Start {
  t: 'start';
  gatewayId: string;
  baseDir: string;
  dataDir: string;
  listen: { host: string; port: number };
  /** The primary's internal listener (loopback) and its secret. */
  primary: { port: number; secret: string };
  snapshot: Snapshot;
}

export type ToWorker =
  | Start
  | Snapshot
  | { t: 'gate'; id: number; error: WireError | null }
  | { t: 'report' }
  | { t: 'drain'; timeoutMs: number };

export type ToPrimary =
  /** Sent once the worker's message handler is in place: a message sent before would be lost. */
  | { t: 'ready' }
  | { t: 'listening'; host: string; port: number }
  | { t: 'listen-failed'; code: string; message: string }
  | { t: 'gate'; id: number; app: string; method?: string; accept?: string }
  | { t: 'events'; batch: [EventName, EventMap[EventName]][] }
  | { t: 'report'; connections: LiveConnection[]; busy: string[] };

/** A PortholeError as it crosses the channel. */
export interface WireError {
  code: string;
  status: number;
  closeCode: number;
  message: string;
  app?: string;
  state?: string;
}

export function toWire(err: PortholeError): WireError {
  return { code: err.code, status: err.status, closeCode: err.closeCode, message: err.message, ...(err.app ? { app: err.app } : {}), ...(err instanceof AppWakingError ? { state: err.state } : {}) };
}

/** An error the primary decided, answered by the worker with the primary's code, status and close code. */
class RelayedError extends PortholeError {
  readonly code: string;
  readonly status: number;
  readonly closeCode: number;
  constructor(w: WireError) {
    super(w.message, w.app ? { app: w.app } : {});
    this.code = w.code;
    this.status = w.status;
    this.closeCode = w.closeCode;
  }
}

/** The waiting page is chosen by class (http-forward.ts): that one is rebuilt as itself. */
export function fromWire(w: WireError): PortholeError {
  if (w.code === 'PH_ERR_APP_WAKING') return new AppWakingError(w.message, w.state ?? 'starting', w.app ? { app: w.app } : {});
  return new RelayedError(w);
}
