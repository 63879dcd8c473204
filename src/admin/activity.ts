/**
 * What the dashboard shows besides the apps: the last tunnel closes and the
 * gateway's own recent events, kept from the events (src/events.ts) in two
 * bounded rings, with listeners for the live stream. Like the metrics, it
 * only subscribes: the gateway knows nothing of it.
 */
import { subscribe, type EventMap } from '../events.js';
// Paths as the log writes them: an app's token in a query (Jupyter's `?token=`) shown as `…`.
import { redactPath } from '../log/logger.js';

/** A closed tunnel or bridge connection. */
export interface CloseView {
  id: number | null;
  kind: 'tunnel' | 'bridge' | 'stdio';
  app: string;
  path: string;
  client: string;
  /** Epoch ms of the close. */
  at: number;
  /** How long it was open. */
  ms: number;
  close_code: number | null;
  reason: string;
  closed_by: 'client' | 'upstream' | 'gateway';
  bytes_in: number;
  bytes_out: number;
  messages_in: number;
  messages_out: number;
}

/** One line of the gateway's own recent history. */
export interface GatewayEventView {
  id: number;
  at: number;
  type: 'upgrade' | 'config' | 'error' | 'gateway' | 'app';
  level: 'info' | 'warn' | 'error';
  app?: string;
  code?: string;
  message: string;
}

export const MAX_CLOSES = 100;
export const MAX_EVENTS = 200;

export interface ActivityOptions {
  /** This server's gateway: events of another gateway in the same process are not its. */
  gatewayId: string;
  /** True for an app of this server (app events carry no gateway id). */
  isOwnApp: (name: string) => boolean;
}

export class Activity {
  /** Newest first. */
  readonly closes: CloseView[] = [];
  readonly events: GatewayEventView[] = [];
  readonly #onClose = new Set<(c: CloseView) => void>();
  readonly #onEvent = new Set<(e: GatewayEventView) => void>();
  readonly #offs: (() => void)[];
  #lastId = 0;

  constructor(private readonly opts: ActivityOptions) {
    const own = (d: { gateway?: string }) => d.gateway === undefined || d.gateway === opts.gatewayId;
    this.#offs = [
      subscribe('tunnel.close', (d) => own(d) && this.#close(d)),
      subscribe('upgrade', (d) => {
        if (!own(d) || d.accepted) return;
        const why = [d.code ?? (d.status ? `status ${d.status}` : undefined), d.closeCode ? `close ${d.closeCode}` : undefined].filter(Boolean).join(', ');
        this.#event({ type: 'upgrade', level: 'warn', app: d.app ?? undefined, code: d.code, message: `WebSocket ${redactPath(d.path)}${d.protocol === 'h2' ? ' over HTTP/2' : ''} refused${why ? ` (${why})` : ''}${d.reason ? `: ${d.reason}` : ''}` });
      }),
      subscribe('config', (d) =>
        this.#event({
          type: 'config',
          level: d.action === 'rejected' ? 'error' : 'info',
          code: d.code,
          message: d.action === 'rejected' ? `config ${d.source} rejected: ${d.error}` : `config ${d.source} ${d.action}${d.apps !== undefined ? ` (${d.apps} apps)` : ''}`,
        }),
      ),
      subscribe('error', (d) => own(d) && (d.app === undefined || opts.isOwnApp(d.app)) && this.#event({ type: 'error', level: 'error', app: d.app, code: d.code, message: d.message })),
      subscribe('gateway', (d) => own(d) && this.#event({ type: 'gateway', level: 'info', message: `gateway ${d.action}${d.address ? ` on ${d.address}` : ''}` })),
      subscribe('app', (d) => {
        if (!opts.isOwnApp(d.app)) return;
        const level = d.state === 'failed' ? 'error' : d.state === 'backoff' ? 'warn' : 'info';
        const exit = d.exit ? ` (exit ${d.exit.signal ?? d.exit.code})` : '';
        this.#event({ type: 'app', level, app: d.app, message: `${d.app}: ${d.state}${exit}${d.message ? ` — ${d.message}` : ''}` });
      }),
    ];
  }

  /** Calls `fn` with every new close until the returned function is called. */
  onClose(fn: (c: CloseView) => void): () => void {
    this.#onClose.add(fn);
    return () => void this.#onClose.delete(fn);
  }

  /** Calls `fn` with every new event (app state changes included) until the returned function is called. */
  onEvent(fn: (e: GatewayEventView) => void): () => void {
    this.#onEvent.add(fn);
    return () => void this.#onEvent.delete(fn);
  }

  close(): void {
    this.#offs.forEach((off) => off());
    this.#onClose.clear();
    this.#onEvent.clear();
  }

  #close(d: EventMap['tunnel.close']): void {
    const c: CloseView = {
      id: d.id ?? null,
      kind: d.kind ?? 'tunnel',
      app: d.app,
      path: redactPath(d.path),
      client: d.client ?? 'unknown',
      at: Date.now(),
      ms: d.ms,
      close_code: d.closeCode,
      reason: d.reason ?? '',
      closed_by: d.closedBy,
      bytes_in: d.bytesIn,
      bytes_out: d.bytesOut,
      messages_in: d.messagesIn ?? d.framesIn,
      messages_out: d.messagesOut ?? d.framesOut,
    };
    push(this.closes, c, MAX_CLOSES);
    notify(this.#onClose, c);
  }

  #event(e: Omit<GatewayEventView, 'id' | 'at'>): void {
    const full: GatewayEventView = { id: ++this.#lastId, at: Date.now(), ...e };
    if (full.app === undefined) delete full.app;
    if (full.code === undefined) delete full.code;
    push(this.events, full, MAX_EVENTS);
    notify(this.#onEvent, full);
  }
}

function push<T>(ring: T[], item: T, max: number): void {
  ring.unshift(item);
  if (ring.length > max) ring.length = max;
}

function notify<T>(fns: Set<(v: T) => void>, v: T): void {
  for (const fn of fns) {
    try {
      fn(v);
    } catch {
      // A listener's bug must not stop the others.
    }
  }
}
