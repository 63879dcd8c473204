/**
 * A worker process of `workers: N` (docs/workers.md): a Gateway on the shared port with
 * the route table the primary sends, and nothing else. Apps' processes, the registry and
 * the admin API stay in the primary; a worker asks it whether a stopped app may be woken,
 * passes `/_porthole/` requests to it, and sends it its events and open connections so
 * the metrics, the dashboard and idle_stop see every worker.
 */
import type { IncomingMessage } from 'node:http';
import { deepFreeze } from '../config/schema-kit.js';
import type { Config } from '../config/schema.js';
import { PrimaryUnreachableError, type PortholeError } from '../errors.js';
import { EVENT_NAMES, subscribe, type EventMap, type EventName } from '../events.js';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import { primaryHop } from './internal-hop.js';
import { fromWire, type Start, type ToPrimary, type ToWorker } from './protocol.js';

/** How often a worker tells the primary its open connections and busy apps (the dashboard's tunnel list refreshes as often). */
export const REPORT_EVERY_MS = 1_000;
/** Events wait at most this long in a worker before they go to the primary together. */
const EVENTS_EVERY_MS = 10;
/** ...or until this many are waiting. */
const EVENTS_MAX = 512;

function send(msg: ToPrimary, done?: () => void): void {
  if (process.connected) process.send!(msg, undefined, {}, () => done?.());
  else done?.();
}

export function runWorker(): void {
  // The primary drains the workers (SIGINT from a terminal reaches the whole process group).
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});

  // Events go to the primary in batches, not one message per request: at the end of the turn
  // when the last batch left EVENTS_EVERY_MS ago or more, else when that much time has passed
  // (a busy worker sends one message per few ms instead of one per turn), or at EVENTS_MAX.
  let batch: [EventName, EventMap[EventName]][] = [];
  let lastSent = 0;
  let soon: NodeJS.Immediate | null = null;
  let later: NodeJS.Timeout | null = null;
  const flush = (done?: () => void) => {
    if (soon) clearImmediate(soon);
    if (later) clearTimeout(later);
    soon = later = null;
    if (!batch.length) return done?.();
    const out = batch;
    batch = [];
    lastSent = performance.now();
    send({ t: 'events', batch: out }, done);
  };
  const queue = (name: EventName, data: EventMap[EventName]) => {
    if (batch.push([name, data]) >= EVENTS_MAX) return flush();
    if (soon || later) return;
    const wait = EVENTS_EVERY_MS - (performance.now() - lastSent);
    if (wait <= 0) soon = setImmediate(flush);
    else later = setTimeout(flush, wait);
  };
  for (const name of EVENT_NAMES) subscribe(name, (data) => queue(name, data));

  let gateway: Gateway | undefined;
  let open = new Set<string>();
  const asking = new Map<number, (err: PortholeError | null) => void>();
  let nextAsk = 1;
  const gate = (app: string, req?: IncomingMessage): null | Promise<PortholeError | null> => {
    if (open.has(app)) return null;
    return new Promise((resolve) => {
      const id = nextAsk++;
      asking.set(id, resolve);
      send({ t: 'gate', id, app, method: req?.method, accept: req?.headers.accept });
    });
  };

  let lastSeen = new Map<string, number>();
  const report = () => {
    if (!gateway) return;
    const conns = [...[...gateway.tunnels].map((t) => t.snapshot()), ...[...gateway.bridges].map((b) => b.snapshot())];
    const busy = new Set(conns.map((c) => c.app));
    // An app used since the last report (or with requests in flight) keeps its idle_stop clock at zero.
    const seen = new Map<string, number>();
    for (const app of gateway.config.apps) {
      const use = gateway.activity.get(app.name);
      if (!use) continue;
      seen.set(app.name, use.last);
      if (use.inflight > 0 || use.last !== lastSeen.get(app.name)) busy.add(app.name);
    }
    lastSeen = seen;
    send({ t: 'report', connections: conns.map((c) => ({ ...c, worker: process.pid })), busy: [...busy] });
  };
  const timer = setInterval(report, REPORT_EVERY_MS);
  timer.unref();

  const start = async (msg: Start) => {
    const hop = primaryHop({ port: msg.primary.port, secret: msg.primary.secret, gatewayId: msg.gatewayId });
    open = new Set(msg.snapshot.open);
    gateway = createGateway(deepFreeze(msg.snapshot.config) as Config, {
      id: msg.gatewayId,
      baseDir: msg.baseDir,
      dataDir: msg.dataDir,
      appGate: gate,
      intercept: (req, res) => {
        const url = req.url ?? '/';
        if (url !== '/_porthole' && !url.startsWith('/_porthole/') && !url.startsWith('/_porthole?')) return false;
        hop.forward(req, res);
        return true;
      },
    });
    try {
      const at = await gateway.listen(msg.listen.host, msg.listen.port);
      send({ t: 'listening', host: at.host, port: at.port });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      send({ t: 'listen-failed', code: e.code ?? 'PH_ERR_LISTEN', message: e.message }, () => process.exit(1));
    }
  };

  const drain = async (timeoutMs: number) => {
    clearInterval(timer);
    await gateway?.drain(timeoutMs);
    // The last events (tunnel closes, `gateway closed`) reach the primary before this process ends.
    flush(() => process.exit(0));
  };

  process.on('message', (msg: ToWorker) => {
    switch (msg.t) {
      case 'start':
        return void start(msg);
      case 'snapshot':
        open = new Set(msg.open);
        return gateway?.reload(deepFreeze(msg.config) as Config);
      case 'gate': {
        const resolve = asking.get(msg.id);
        asking.delete(msg.id);
        return resolve?.(msg.error ? fromWire(msg.error) : null);
      }
      case 'report':
        return report();
      case 'drain':
        return void drain(msg.timeoutMs);
    }
  });
  send({ t: 'ready' });
  // Without the primary nothing is routed right for long (node:cluster ends the worker too).
  process.on('disconnect', () => {
    for (const resolve of asking.values()) resolve(new PrimaryUnreachableError('the primary process is gone'));
    asking.clear();
  });
}
