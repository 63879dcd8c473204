/**
 * The Live tunnels view: every open WebSocket tunnel and bridge connection
 * (refreshed each second by the live stream), and the last closes.
 */
import { html } from './html.js';
import { closeCodeMeaning, formatBytes, formatClock, formatCount, formatDuration, formatFull } from './format.js';

/** Bytes and messages one way; the exact counts ride along as data attributes. */
function Traffic({ bytes, messages }) {
  return html`<span class="bytes" data-bytes=${bytes} data-messages=${messages} title=${`${formatCount(bytes)} bytes`}>${formatBytes(bytes)}</span>
    <span class="sub">${formatCount(messages)} msg</span>`;
}

function OpenTunnels({ tunnels }) {
  if (tunnels === null) return html`<p class="empty">Waiting for the live stream…</p>`;
  if (!tunnels.length) return html`<p class="empty">No open tunnels. A WebSocket opened through the gateway shows here while it lasts.</p>`;
  return html`<div class="table-wrap">
    <table class="tunnels stack">
      <thead>
        <tr>
          <th scope="col">App</th><th scope="col">Path</th><th scope="col">Client</th>
          <th scope="col" class="num">Age</th><th scope="col" class="num">Idle</th>
          <th scope="col" class="num"><abbr title="from the browser to the app">In</abbr></th>
          <th scope="col" class="num"><abbr title="from the app to the browser">Out</abbr></th>
        </tr>
      </thead>
      <tbody>
        ${tunnels.map(
          (t) => html`<tr key=${t.id} data-id=${t.id} data-app=${t.app} class="tunnel-row">
            <th scope="row" data-label="App">${t.app ?? '—'}${t.kind === 'bridge' ? html` <span class="tag">bridge</span>` : null}</th>
            <td data-label="Path" class="path"><code>${t.path}</code></td>
            <td data-label="Client">${t.client}</td>
            <td data-label="Age" class="num" title=${t.started_at ? `since ${formatFull(t.started_at)}` : ''}>${formatDuration(t.age_ms)}</td>
            <td data-label="Idle" class="num">${formatDuration(t.idle_ms)}</td>
            <td data-label="In" class="num bytes-in"><${Traffic} bytes=${t.bytes_in} messages=${t.messages_in} /></td>
            <td data-label="Out" class="num bytes-out"><${Traffic} bytes=${t.bytes_out} messages=${t.messages_out} /></td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function CloseHistory({ closes }) {
  if (!closes.length) return html`<p class="empty">No tunnel has closed yet.</p>`;
  return html`<div class="table-wrap">
    <table class="closes stack">
      <thead>
        <tr>
          <th scope="col">Closed</th><th scope="col">App</th><th scope="col">Path</th><th scope="col">Client</th>
          <th scope="col">Code</th><th scope="col">Reason</th><th scope="col">Closed by</th>
          <th scope="col" class="num">Lasted</th><th scope="col" class="num">In</th><th scope="col" class="num">Out</th>
        </tr>
      </thead>
      <tbody>
        ${closes.map(
          (c) => html`<tr key=${c.id} data-id=${c.id} data-app=${c.app} data-code=${c.close_code ?? ''} class="close-row">
            <td data-label="Closed" title=${formatFull(c.at)}>${formatClock(c.at)}</td>
            <th scope="row" data-label="App">${c.app ?? '—'}${c.kind === 'bridge' ? html` <span class="tag">bridge</span>` : null}</th>
            <td data-label="Path" class="path"><code>${c.path}</code></td>
            <td data-label="Client">${c.client}</td>
            <td data-label="Code" class="close-code">
              <code>${c.close_code ?? '—'}</code> <span class="sub">${closeCodeMeaning(c.close_code)}</span>
            </td>
            <td data-label="Reason" class="close-reason">${c.reason ? c.reason : html`<span class="muted">none</span>`}</td>
            <td data-label="Closed by"><span class=${`tag by-${c.closed_by}`}>${c.closed_by}</span></td>
            <td data-label="Lasted" class="num">${formatDuration(c.ms)}</td>
            <td data-label="In" class="num"><${Traffic} bytes=${c.bytes_in} messages=${c.messages_in} /></td>
            <td data-label="Out" class="num"><${Traffic} bytes=${c.bytes_out} messages=${c.messages_out} /></td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

export function TunnelsView({ tunnels, total, closes }) {
  const count = Math.max(total ?? 0, tunnels?.length ?? 0);
  return html`<section class="panel" aria-labelledby="tunnels-title">
      <div class="panel-head">
        <h2 id="tunnels-title">Open tunnels ${tunnels ? html`<span class="count">${count}</span>` : null}</h2>
        <p class="panel-note">In: browser → app. Out: app → browser. Updated every second.</p>
      </div>
      ${tunnels && count > tunnels.length
        ? html`<p class="notice">Showing the ${tunnels.length} most recently active of ${count} open connections.</p>`
        : null}
      <${OpenTunnels} tunnels=${tunnels} />
    </section>
    <section class="panel" aria-labelledby="closes-title">
      <div class="panel-head">
        <h2 id="closes-title">Recent closes ${closes.length ? html`<span class="count">${closes.length}</span>` : null}</h2>
        <p class="panel-note">Newest first, the last 100.</p>
      </div>
      <${CloseHistory} closes=${closes} />
    </section>`;
}
