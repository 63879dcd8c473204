/**
 * The cluster panel (shown when the gateway is a node of a cluster): the
 * store and its state, then every node with its health, the lease holder,
 * this node, its peer address, its registry version, when it was last seen
 * and the apps it runs. Kept current by the live stream's `cluster` event.
 * Up and down are said in words (and a sign), never by colour alone.
 */
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { ConfirmGroup, useConfirm } from './confirm.js';
import { html } from './html.js';
import { formatAgo, formatClock, formatDuration, formatFull, formatIso, toMs } from './format.js';
import { useNow } from './live.js';

/** Apps listed by name in a node's row; the rest are counted. */
const MAX_APPS_SHOWN = 12;

function Health({ up }) {
  return html`<span class=${`badge health ${up ? 'health-up' : 'health-down'}`}>
    <span aria-hidden="true">${up ? '●' : '✕'} </span>${up ? 'up' : 'down'}
  </span>`;
}

function Store({ store, version }) {
  const since = toMs(store.down_since);
  return html`<div class=${`store ${store.up ? 'store-up' : 'store-down'}`} data-store=${store.up ? 'up' : 'down'}>
    <span class="store-label">Store</span>
    <code title=${`kind: ${store.kind}`}>${store.url}</code>
    <${Health} up=${store.up} />
    ${store.up
      ? html`<span class="muted">registry version <strong class="version">${version}</strong></span>`
      : html`<span class="store-down-note" role="status">
          ${since !== null ? html`since <time datetime=${formatIso(since)} title=${formatFull(since)}>${formatClock(since)}</time>: ` : null}serving the last registry
          (version <strong class="version">${version}</strong>); changes are refused.
        </span>`}
  </div>`;
}

function NodeApps({ apps }) {
  if (!apps?.length) return html`<span class="muted">none</span>`;
  const shown = apps.slice(0, MAX_APPS_SHOWN);
  return html`<ul class="node-apps">
    ${shown.map((name) => html`<li><code>${name}</code></li>`)}
    ${apps.length > shown.length ? html`<li class="muted">and ${apps.length - shown.length} more</li>` : null}
  </ul>`;
}

/** Only an http(s) address becomes a link: a heartbeat is whatever was written into Redis. */
const webUrl = (url) => typeof url === 'string' && /^https?:\/\/[^\s]+$/i.test(url);

/**
 * "Forget" on a node that is down (`DELETE /cluster/nodes/{name}`, as
 * `porthole nodes --forget`): asked in place first, the confirm button
 * taking focus, Escape cancelling.
 */
function Forget({ node, forget }) {
  const confirm = useConfirm();
  const [busy, setBusy] = useState(false);
  if (!confirm.confirming) {
    return html`<button type="button" class="forget" ref=${confirm.askRef} aria-label=${`Forget node ${node.name}`} onClick=${confirm.ask}>Forget</button>`;
  }
  const onYes = () => {
    if (busy) return;
    setBusy(true);
    forget(node.name).then((gone) => {
      // Forgotten: the panel has taken focus, and the row goes; focus is not handed back to it.
      if (gone) confirm.gone();
      setBusy(false);
      confirm.cancel();
    });
  };
  return html`<${ConfirmGroup} confirm=${confirm} question=${`Forget node ${node.name}?`} yes="Yes, forget" busy=${busy} onYes=${onYes} />`;
}

function NodeRow({ node, ttl, now, forget }) {
  const seen = toMs(node.last_seen);
  return html`<tr class=${`node-row ${node.up ? 'node-up' : 'node-down'}`} data-node=${node.name} data-up=${node.up ? 'true' : 'false'}>
    <th scope="row" data-label="Node">
      <span class="node-name">${node.name}</span>
      ${node.self ? html` <span class="tag self">this node</span>` : null}
      ${node.leader ? html` <span class="tag leader" title="holds the lease: places the node: any apps">leader</span>` : null}
      ${webUrl(node.url) ? html`<a class="sub node-url" href=${`${node.url.replace(/\/$/, '')}/_porthole/`} target="_blank" rel="noopener" title="its own dashboard (log in there)">${node.url}<span class="visually-hidden"> (opens in a new tab)</span></a>` : null}
    </th>
    <td data-label="Health" class="health-cell">
      <${Health} up=${node.up} />
      ${node.up || node.self ? null : html`<${Forget} node=${node} forget=${forget} />`}
    </td>
    <td data-label="Address">${node.advertise ? html`<code>${node.advertise}</code>` : html`<span class="muted">—</span>`}</td>
    <td data-label="Version" class="num">${node.version ?? html`<span class="muted">—</span>`}</td>
    <td data-label="Last seen" class="last-seen" title=${seen !== null ? formatFull(seen) : ''}>
      ${node.up
        ? html`<span>now</span><span class="sub">heartbeat within ${formatDuration(ttl)}</span>`
        : seen !== null
          ? html`<span class="bad">${formatAgo(seen, now)}</span>`
          : html`<span class="muted">never</span>`}
    </td>
    <td data-label="Apps" class="apps-cell"><${NodeApps} apps=${node.apps} /></td>
  </tr>`;
}

export function ClusterPanel({ cluster }) {
  const now = useNow(1000);
  const [notice, setNotice] = useState(/** @type {{ kind: 'ok' | 'error', text: string } | null} */ (null));
  const forget = async (name) => {
    setNotice(null);
    try {
      await api(`cluster/nodes/${encodeURIComponent(name)}`, { method: 'DELETE' });
      setNotice({ kind: 'ok', text: `Forgot node ${name}.` });
      // Its row (and the focused button in it) goes with the next cluster event.
      document.getElementById('cluster-title')?.focus();
      return true;
    } catch (err) {
      setNotice({ kind: 'error', text: `Forgetting node ${name} failed: ${err.message}${err.code ? ` (${err.code})` : ''}` });
      return false;
    }
  };
  const nodes = cluster.nodes ?? [];
  const up = nodes.filter((n) => n.up).length;
  return html`<section class="panel cluster" aria-labelledby="cluster-title">
    <div class="panel-head">
      <h2 id="cluster-title" tabindex="-1">Cluster <span class="count">${nodes.length}</span></h2>
      <p class="panel-note" id="cluster-summary">
        ${up} of ${nodes.length} node${nodes.length === 1 ? '' : 's'} up · this is node <strong>${cluster.node}</strong>${cluster.leader ? ' (the leader)' : ''}
      </p>
    </div>
    <${Store} store=${cluster.store} version=${cluster.version} />
    <div class="notice-slot" role="status" aria-live="polite">
      ${notice ? html`<p class=${`notice ${notice.kind}`}>${notice.text} <button type="button" class="link" onClick=${() => setNotice(null)}>Dismiss</button></p>` : null}
    </div>
    <div class="table-wrap">
      <table class="nodes stack" aria-describedby="cluster-summary">
        <thead>
          <tr>
            <th scope="col">Node</th><th scope="col">Health</th><th scope="col">Peer address</th>
            <th scope="col" class="num">Version</th><th scope="col">Last seen</th><th scope="col">Apps</th>
          </tr>
        </thead>
        <tbody>
          ${nodes.map((n) => html`<${NodeRow} key=${n.name} node=${n} ttl=${cluster.heartbeat_ttl_ms} now=${now} forget=${forget} />`)}
        </tbody>
      </table>
    </div>
  </section>`;
}
