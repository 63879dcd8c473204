/**
 * The Apps view: every app with its URLs, state and process figures (and,
 * in a cluster, the node that runs it), the start/stop/restart/remove
 * buttons, and the register form below.
 */
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';
import { ConfirmGroup, useConfirm } from './confirm.js';
import { api, appPath } from './api.js';
import { formatAgo, formatFull, formatUptime, toMs } from './format.js';
import { useNow } from './live.js';
import { RegisterForm } from './register.js';

const RUNNING = new Set(['running', 'starting']);

/** True when the app's node is down: its state is only the last one that node published. */
const nodeDown = (app) => app.error?.code === 'PH_ERR_NODE_DOWN';

/** The text of a link to one of an app's URLs: its path for the prefix URL, its host for a host-name URL. */
function urlLabel(url, i) {
  try {
    const u = new URL(url);
    return i === 0 ? u.pathname : u.host;
  } catch {
    return url;
  }
}

function ports(app) {
  const out = [];
  if (app.port !== undefined) out.push(`${app.port}`);
  if (app.ws_port !== undefined) out.push(`ws ${app.ws_port}`);
  if (app.bridge) out.push(`tcp ${app.bridge}`);
  if (app.ws_bridge) out.push(`ws→tcp ${app.ws_bridge}`);
  if (app.url) out.push(app.url.replace(/^http:\/\//, ''));
  if (app.socket) out.push(app.socket);
  return out;
}

function LastExit({ exit }) {
  if (!exit) return html`<span class="muted">—</span>`;
  const what = exit.signal ? exit.signal : `${exit.code}`;
  return html`<span class="${exit.code === 0 ? '' : 'bad'}" title=${exit.at ? `at ${formatFull(exit.at)}` : ''}>${what}</span>
    ${exit.at ? html`<span class="sub">${formatAgo(exit.at)}</span>` : null}`;
}

export function StateBadge({ state }) {
  return html`<span class="badge state-${state}">${state}</span>`;
}

/**
 * One row's buttons. A remove first asks, in place: the buttons turn into
 * "Remove NAME?" with confirm and cancel, the confirm button taking focus.
 */
function Actions({ app, busy, act }) {
  const confirm = useConfirm();
  const supervised = typeof app.cmd === 'string';
  const fromConfig = app.source === 'config';
  const notSupervised = supervised ? undefined : `${app.name} has no cmd: Porthole does not run it`;
  const disabled = (why) => ({ disabled: Boolean(why), title: why || undefined });
  const running = RUNNING.has(app.state);
  // Its node carries out a start or stop: while that node is down, nothing can.
  const down = nodeDown(app) ? app.message || `the node of ${app.name} is down` : '';
  if (confirm.confirming) {
    return html`<${ConfirmGroup} confirm=${confirm} question=${`Remove ${app.name}?`} yes="Yes, remove" onYes=${() => act('remove').finally(confirm.cancel)} />`;
  }
  // Busy rows keep their buttons focusable (aria-disabled) so keyboard focus is not lost mid-action.
  const guard = (what) => () => {
    if (!busy) act(what);
  };
  const remove = html`<button
    type="button"
    class="danger"
    ref=${confirm.askRef}
    aria-label=${`Remove ${app.name}`}
    aria-disabled=${busy ? 'true' : undefined}
    ...${disabled(fromConfig ? `${app.name} comes from the config file: remove it there` : '')}
    onClick=${() => !busy && confirm.ask()}
  >Remove</button>`;
  if (!supervised) {
    return html`<div class="actions">
      <span class="muted not-run" title=${notSupervised}>not run by Porthole</span>
      ${remove}
    </div>`;
  }
  return html`<div class="actions" aria-busy=${busy ? 'true' : 'false'}>
    <button type="button" aria-label=${`Start ${app.name}`} aria-disabled=${busy ? 'true' : undefined} ...${disabled(down || (running ? `${app.name} is ${app.state}` : ''))} onClick=${guard('start')}>Start</button>
    <button type="button" aria-label=${`Stop ${app.name}`} aria-disabled=${busy ? 'true' : undefined} ...${disabled(down || (app.state === 'stopped' ? `${app.name} is stopped` : ''))} onClick=${guard('stop')}>Stop</button>
    <button type="button" aria-label=${`Restart ${app.name}`} aria-disabled=${busy ? 'true' : undefined} ...${disabled(down)} onClick=${guard('restart')}>Restart</button>
    ${remove}
    ${busy ? html`<span class="busy" role="status">${busy}…</span>` : null}
  </div>`;
}

/** Where the app runs, in a cluster: its node, marked when it is this one or when it is down. */
function NodeCell({ app, cluster }) {
  if (!app.node) {
    return html`<td data-label="Node" class="node-cell"><span class="muted" title="from this node's config file: every node runs its own">this node's config</span></td>`;
  }
  return html`<td data-label="Node" class="node-cell">
    <span class="node-name">${app.node}</span>
    ${app.node === cluster.node ? html` <span class="tag self">this node</span>` : null}
    ${nodeDown(app) ? html` <span class="tag bad node-down"><span aria-hidden="true">✕ </span>node down</span>` : null}
  </td>`;
}

function StateCell({ app }) {
  const cause = app.message || app.last_probe;
  if (nodeDown(app)) {
    return html`<td data-label="State" class="state-cell">
      <span class="badge state-unknown">unknown</span>
      <span class="sub">last known: ${app.state}</span>
      ${cause ? html`<span class="sub cause">${cause}</span>` : null}
    </td>`;
  }
  return html`<td data-label="State" class="state-cell">
    <${StateBadge} state=${app.state} />
    ${app.state === 'running' && app.ready === false ? html` <span class="tag warn">not ready</span>` : null}
    ${cause ? html`<span class="sub cause">${cause}</span>` : null}
  </td>`;
}

function AppRow({ app, now, busy, act, cluster }) {
  const started = toMs(app.started_at);
  // A process on a node that is down: its pid and uptime are not known any more.
  const down = nodeDown(app);
  return html`<tr class=${`app-row state-${app.state}`} data-app=${app.name} data-state=${app.state} data-node=${app.node ?? undefined} data-node-down=${nodeDown(app) ? 'true' : undefined}>
    <th scope="row" data-label="Name">
      <span class="app-name">${app.name}</span>
      <span class="sub kind">
        <span class="visually-hidden">kind: </span>${app.kind ?? '—'}
        ${app.source === 'config' ? html` <span class="tag" title="defined in the config file">config</span>` : null}
        ${typeof app.cmd === 'string'
          ? html` <a class="logs-link" href=${`#logs/${encodeURIComponent(app.name)}`} aria-label=${`Logs of ${app.name}`}>logs</a>`
          : null}
      </span>
      ${app.description ? html`<span class="sub">${app.description}</span>` : null}
    </th>
    <td data-label="Open">
      <ul class="urls">
        ${(app.urls ?? []).map(
          (url, i) => html`<li><a href=${url} target="_blank" rel="noopener" title=${url}>${urlLabel(url, i)}<span class="visually-hidden"> (${app.name}, opens in a new tab)</span></a></li>`,
        )}
      </ul>
    </td>
    ${cluster ? html`<${NodeCell} app=${app} cluster=${cluster} />` : null}
    <${StateCell} app=${app} />
    <td data-label="PID" class="num">${app.pid && !down ? app.pid : html`<span class="muted">—</span>`}</td>
    <td data-label="Uptime" class="num" title=${started && !down ? `since ${formatFull(started)}` : ''}>
      ${started && app.pid && !down ? formatUptime(now - started) : html`<span class="muted">—</span>`}
    </td>
    <td data-label="Restarts" class="num">${app.restarts ?? 0}</td>
    <td data-label="Last exit" class="num"><${LastExit} exit=${app.last_exit} /></td>
    <td data-label="Ports" class="ports">${ports(app).map((p) => html`<code>${p}</code> `)}</td>
    <td data-label="Actions" class="actions-cell">
      <${Actions} app=${app} busy=${busy} act=${act} />
    </td>
  </tr>`;
}

const VERB = { start: 'Starting', stop: 'Stopping', restart: 'Restarting', remove: 'Removing' };
const DONE = { start: 'Started', stop: 'Stopped', restart: 'Restarted', remove: 'Removed' };
/** A success notice goes away by itself after this long; an error stays until dismissed. */
const OK_NOTICE_MS = 6000;

export function AppsView({ apps, cluster, updateApp, refreshApps }) {
  const now = useNow(1000);
  const [busy, setBusy] = useState(/** @type {Record<string, string>} */ ({}));
  const [notice, setNotice] = useState(/** @type {{ kind: 'ok' | 'error', text: string } | null} */ (null));

  useEffect(() => {
    if (notice?.kind !== 'ok') return undefined;
    const t = setTimeout(() => setNotice((n) => (n === notice ? null : n)), OK_NOTICE_MS);
    return () => clearTimeout(t);
  }, [notice]);

  const act = (name) => async (what) => {
    setBusy((b) => ({ ...b, [name]: VERB[what] }));
    setNotice(null);
    try {
      if (what === 'remove') {
        await api(appPath(name), { method: 'DELETE' });
        setNotice({ kind: 'ok', text: `Removed ${name}.` });
        // Its row (and the focused button in it) is gone: keep keyboard focus on the table's heading.
        document.getElementById('apps-title')?.focus();
      } else {
        const r = await api(`${appPath(name)}/${what}`, { method: 'POST' });
        updateApp(r.app);
        setNotice({ kind: 'ok', text: r.app?.state ? `${name} is ${r.app.state}.` : `${DONE[what]} ${name}.` });
      }
    } catch (err) {
      setNotice({ kind: 'error', text: `${VERB[what]} ${name} failed: ${err.message}${err.code ? ` (${err.code})` : ''}` });
    } finally {
      setBusy((b) => {
        const { [name]: _, ...rest } = b;
        return rest;
      });
      refreshApps();
    }
  };

  return html`<section class="panel" aria-labelledby="apps-title">
      <div class="panel-head">
        <h2 id="apps-title" tabindex="-1">Apps ${apps ? html`<span class="count">${apps.length}</span>` : null}</h2>
      </div>
      <div class="notice-slot" role="status" aria-live="polite">
        ${notice ? html`<p class=${`notice ${notice.kind}`}>${notice.text} <button type="button" class="link" onClick=${() => setNotice(null)}>Dismiss</button></p>` : null}
      </div>
      ${apps === null
        ? html`<p class="empty">Loading apps…</p>`
        : apps.length === 0
          ? html`<p class="empty">No apps yet. Register one below, or add it to the config file.</p>`
          : html`<div class="table-wrap">
              <table class="apps stack">
                <thead>
                  <tr>
                    <th scope="col">Name, kind</th><th scope="col">Open</th>${cluster ? html`<th scope="col">Node</th>` : null}<th scope="col">State</th>
                    <th scope="col" class="num">PID</th><th scope="col" class="num">Uptime</th><th scope="col" class="num">Restarts</th>
                    <th scope="col" class="num">Last exit</th><th scope="col">Ports</th><th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  ${apps.map((app) => html`<${AppRow} key=${app.name} app=${app} now=${now} busy=${busy[app.name]} act=${act(app.name)} cluster=${cluster} />`)}
                </tbody>
              </table>
            </div>`}
    </section>
    <${RegisterForm} apps=${apps ?? []} cluster=${cluster} onRegistered=${(app) => {
      updateApp(app);
      refreshApps();
    }} />`;
}
