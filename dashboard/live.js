/**
 * The dashboard's shared state, kept current by one `GET /_porthole/api/live`
 * stream: the apps, the open tunnels, the last closes and the gateway's
 * events, and the cluster (null outside one). On each (re)connection the
 * close history and the events are read again, since the stream only sends
 * what happens after it opened.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { followLive } from './shared-live.js';

const MAX_CLOSES = 100;
const MAX_EVENTS = 200;

/** Newest first, one entry per id, at most `max`. */
function mergeNewest(current, incoming, max) {
  const seen = new Set();
  const out = [];
  for (const item of [...incoming, ...current].sort((a, b) => toNumber(b.at) - toNumber(a.at))) {
    const key = item.id ?? `${item.at}:${item.message ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(item);
    if (out.length >= max) break;
  }
  return out;
}

function toNumber(at) {
  return typeof at === 'number' ? at : Date.parse(at) || 0;
}

/**
 * @returns {{
 *   apps: any[] | null, tunnels: any[] | null, tunnelsTotal: number, closes: any[], events: any[],
 *   cluster: any | null | undefined,
 *   stream: import('./api.js').StreamState,
 *   updateApp: (app: any) => void, refreshApps: () => Promise<void>,
 * }}
 */
export function useLive() {
  const [apps, setApps] = useState(/** @type {any[] | null} */ (null));
  const [tunnels, setTunnels] = useState(/** @type {any[] | null} */ (null));
  /** All open connections; `tunnels` lists at most the server's cap of them. */
  const [tunnelsTotal, setTunnelsTotal] = useState(0);
  const [closes, setCloses] = useState(/** @type {any[]} */ ([]));
  const [events, setEvents] = useState(/** @type {any[]} */ ([]));
  /** `GET /cluster`'s body: undefined until known, null outside a cluster. */
  const [cluster, setCluster] = useState(/** @type {any | null | undefined} */ (undefined));
  const [stream, setStream] = useState(/** @type {import('./api.js').StreamState} */ ({ state: 'connecting' }));
  const feedTunnels = useRef(false);

  const refreshApps = useCallback(async () => {
    try {
      const r = await api('apps');
      setApps(r.apps ?? []);
    } catch {
      /* a 401 is reported by api(); the live stream retries the rest */
    }
  }, []);

  const updateApp = useCallback((app) => {
    if (!app?.name) return;
    setApps((list) => {
      if (!list) return [app];
      const i = list.findIndex((a) => a.name === app.name);
      if (i === -1) return [...list, app];
      const next = list.slice();
      next[i] = app;
      return next;
    });
  }, []);

  useEffect(() => {
    refreshApps();
    const seed = () => {
      api('tunnels')
        .then((r) => {
          // The feed's own list (sent as it opens) is as new or newer: do not overwrite it.
          if (!feedTunnels.current) {
            setTunnels(r.tunnels ?? []);
            setTunnelsTotal(r.total ?? r.tunnels?.length ?? 0);
          }
          setCloses((c) => mergeNewest(c, r.closes ?? [], MAX_CLOSES));
        })
        .catch(() => {});
      api('events')
        .then((r) => setEvents((e) => mergeNewest(e, r.events ?? [], MAX_EVENTS)))
        .catch(() => {});
      // The stream sends it as it opens too; a tab that follows another tab's stream may join later.
      api('cluster')
        .then((r) => setCluster((c) => (c === undefined ? (r.cluster ?? null) : c)))
        .catch(() => {});
    };
    return followLive({
      onOpen: seed,
      onState: setStream,
      onMessage: ({ event, data }) => {
        let body;
        try {
          body = JSON.parse(data);
        } catch {
          return;
        }
        if (event === 'tunnels') {
          feedTunnels.current = true;
          setTunnels(body.tunnels ?? []);
          setTunnelsTotal(body.total ?? body.tunnels?.length ?? 0);
        } else if (event === 'apps') setApps(body.apps ?? []);
        else if (event === 'cluster') setCluster(body.cluster ?? null);
        else if (event === 'close') setCloses((c) => mergeNewest(c, [body], MAX_CLOSES));
        else if (event === 'event') setEvents((e) => mergeNewest(e, [body], MAX_EVENTS));
      },
    });
  }, [refreshApps]);

  return { apps, tunnels, tunnelsTotal, closes, events, cluster, stream, updateApp, refreshApps };
}

/** The current time, re-rendering every `ms`. */
export function useNow(ms = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
