/**
 * The dashboard's entry module: the header (views, live status, logout), the
 * "session ended" notice, and the view the location hash names:
 * `#apps` (default), `#live`, `#logs` or `#logs/{app}`.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { BASE, logout, onSessionEnded } from './api.js';
import { AppsView } from './apps.js';
import { ClusterPanel } from './cluster.js';
import { useLive } from './live.js';
import { LogsView } from './logs.js';
import { TunnelsView } from './tunnels.js';

const VIEWS = [
  { id: 'apps', label: 'Apps' },
  { id: 'live', label: 'Live tunnels' },
  { id: 'logs', label: 'Logs' },
];

/** @returns {{ view: string, app: string }} */
function parseHash() {
  const [view, ...rest] = location.hash.replace(/^#/, '').split('/');
  let app = '';
  try {
    app = decodeURIComponent(rest.join('/'));
  } catch {
    /* a malformed name: no app selected */
  }
  return { view: VIEWS.some((v) => v.id === view) ? view : 'apps', app };
}

function LiveStatus({ stream }) {
  const [label, title] =
    stream.state === 'open'
      ? ['live', 'updates arrive as they happen']
      : stream.state === 'retrying'
        ? ['reconnecting', `the live stream dropped (${stream.reason}); retrying in ${Math.ceil(stream.inMs / 1000)} s`]
        : stream.state === 'ended'
          ? ['offline', 'the session ended']
          : ['connecting', 'opening the live stream'];
  return html`<span class=${`live-status ${stream.state}`} title=${title} role="status">
    <span class="dot" aria-hidden="true"></span>${label}
  </span>`;
}

function SessionEnded() {
  return html`<div class="session-ended" role="alert">
    <p><strong>Session ended</strong> — <a href=${BASE}>log in again</a>.</p>
  </div>`;
}

function App() {
  const [route, setRoute] = useState(parseHash);
  const [ended, setEnded] = useState(false);
  const live = useLive();

  useEffect(() => {
    const onHash = () => setRoute(parseHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => onSessionEnded(() => setEnded(true)), []);
  useEffect(() => {
    document.title = `${VIEWS.find((v) => v.id === route.view)?.label ?? 'Apps'} · Porthole`;
  }, [route.view]);

  const [loggingOut, setLoggingOut] = useState(false);
  // The Logs tab returns to the app last followed.
  const [logApp, setLogApp] = useState('');
  useEffect(() => {
    if (route.view === 'logs' && route.app) setLogApp(route.app);
  }, [route.view, route.app]);
  const href = (id) => (id === 'logs' && logApp ? `#logs/${encodeURIComponent(logApp)}` : `#${id}`);

  return html`<header class="top">
      <div class="brand"><span class="logo" aria-hidden="true"></span>Porthole</div>
      <nav aria-label="Views">
        <ul>
          ${VIEWS.map(
            (v) => html`<li>
              <a href=${href(v.id)} aria-current=${route.view === v.id ? 'page' : undefined}>
                ${v.label}${v.id === 'live' && live.tunnelsTotal ? html` <span class="count">${live.tunnelsTotal}</span>` : null}
              </a>
            </li>`,
          )}
        </ul>
      </nav>
      <div class="top-right">
        <${LiveStatus} stream=${live.stream} />
        <button
          type="button"
          class="logout"
          disabled=${loggingOut}
          onClick=${() => {
            setLoggingOut(true);
            logout();
          }}
        >Log out</button>
      </div>
    </header>
    ${ended ? html`<${SessionEnded} />` : null}
    <main id="main" class=${`view-${route.view}`}>
      ${route.view === 'apps'
        ? html`${live.cluster ? html`<${ClusterPanel} cluster=${live.cluster} />` : null}
            <${AppsView} apps=${live.apps} cluster=${live.cluster ?? null} updateApp=${live.updateApp} refreshApps=${live.refreshApps} />`
        : route.view === 'live'
          ? html`<${TunnelsView} tunnels=${live.tunnels} total=${live.tunnelsTotal} closes=${live.closes} />`
          : html`<${LogsView} apps=${live.apps} selected=${route.app} events=${live.events} />`}
    </main>`;
}

render(html`<${App} />`, document.getElementById('app') ?? document.body);
