/**
 * The WebSocket series: open tunnels and bridge connections, their bytes and
 * messages each way, closes, durations. Closed connections are added up from
 * the `tunnel.close` events; open ones are read when Prometheus scrapes
 * (`open`, from the composition root), so a VNC session open for hours shows
 * its traffic as it flows, not only when it ends.
 *
 * The counters stay monotonic: the gateway emits `tunnel.close` and drops the
 * connection from its set in one synchronous step, and the event's final
 * counts are never below what a scrape read from the open connection, so a
 * connection is counted either live or closed, never both, never less.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { subscribe, type EventMap } from '../events.js';
import { HotCounter, HotHistogram } from './hot-series.js';

/** An open WebSocket connection as the gateway counts it now. */
export interface OpenConnection {
  app: string;
  /** `tunnel` (proxied to the app's WebSocket server) or `bridge` (WebSocket to TCP). */
  kind: 'tunnel' | 'bridge' | 'stdio';
  /** Bytes from the client (to the app), and to the client. */
  bytesIn: number;
  bytesOut: number;
  /** Data messages each way (a bridge: WebSocket messages in, TCP chunks out); when not given, they are added at close. */
  messagesIn?: number;
  messagesOut?: number;
}

/** Seconds; tunnels live from a moment to days. */
const TUNNEL_BUCKETS = [0.1, 1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600];

interface Totals {
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
}

/** Registers the tunnel series; returns the unsubscribe of the events it follows. */
export function tunnelMetrics(registry: Registry, mine: (e: { gateway?: string }) => boolean, open: (() => Iterable<OpenConnection>) | undefined): () => void {
  /** Per app, what closed connections carried. */
  const closed = new Map<string, Totals>();
  // A scrape calls the three collect()s below in one synchronous pass: they share one read of the
  // open connections (thousands of them on a busy gateway), dropped once that pass is over.
  let now: OpenConnection[] | undefined;
  const openNow = (): OpenConnection[] => {
    if (!now) {
      now = open ? [...open()] : [];
      queueMicrotask(() => (now = undefined));
    }
    return now;
  };
  const totals = (): Map<string, Totals> => {
    const all = new Map<string, Totals>();
    for (const [app, t] of closed) all.set(app, { ...t });
    for (const c of openNow()) {
      let t = all.get(c.app);
      if (!t) all.set(c.app, (t = { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 }));
      t.bytesIn += c.bytesIn;
      t.bytesOut += c.bytesOut;
      t.messagesIn += c.messagesIn ?? 0;
      t.messagesOut += c.messagesOut ?? 0;
    }
    return all;
  };

  new Gauge({
    name: 'porthole_tunnels_open',
    help: 'Open WebSocket connections, by app and kind (tunnel: proxied to the app; bridge: WebSocket to TCP).',
    labelNames: ['app', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, { app: string; kind: string; n: number }>();
      for (const c of openNow()) {
        const key = `${c.kind} ${c.app}`;
        const e = counts.get(key);
        if (e) e.n++;
        else counts.set(key, { app: c.app, kind: c.kind, n: 1 });
      }
      for (const { app, kind, n } of counts.values()) this.set({ app, kind }, n);
    },
  });
  new Counter({
    name: 'porthole_tunnel_bytes_total',
    help: 'Bytes carried by WebSocket tunnels and bridge connections, open and closed, by app and direction (in: client to app, out: app to client).',
    labelNames: ['app', 'direction'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [app, t] of totals()) {
        this.inc({ app, direction: 'in' }, t.bytesIn);
        this.inc({ app, direction: 'out' }, t.bytesOut);
      }
    },
  });
  new Counter({
    name: 'porthole_tunnel_messages_total',
    help: 'Messages carried by WebSocket tunnels and bridge connections, by app and direction.',
    labelNames: ['app', 'direction'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [app, t] of totals()) {
        this.inc({ app, direction: 'in' }, t.messagesIn);
        this.inc({ app, direction: 'out' }, t.messagesOut);
      }
    },
  });
  // Updated per tunnel: hot-series.ts says why these are not prom-client's own.
  const closes = new HotCounter({ name: 'porthole_tunnel_closes_total', help: 'Tunnels and bridge connections closed, by app, close code (none: no close frame) and the side that closed first.', labelNames: ['app', 'code', 'closed_by'], registry });
  const seconds = new HotHistogram({ name: 'porthole_tunnel_duration_seconds', help: 'How long tunnels and bridge connections stayed open, by app.', labelNames: ['app'], buckets: TUNNEL_BUCKETS, registry });

  return subscribe('tunnel.close', (e: EventMap['tunnel.close']) => {
    if (!mine(e)) return;
    let t = closed.get(e.app);
    if (!t) closed.set(e.app, (t = { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 }));
    t.bytesIn += e.bytesIn;
    t.bytesOut += e.bytesOut;
    // Data messages; an event without them (an older emitter) gives its frames, control frames included.
    t.messagesIn += e.messagesIn ?? e.framesIn;
    t.messagesOut += e.messagesOut ?? e.framesOut;
    closes.inc(e.app, e.closeCode === null ? 'none' : String(e.closeCode), e.closedBy);
    seconds.observe(e.ms / 1000, e.app);
  });
}
