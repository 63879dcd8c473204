/**
 * The gateway's own recent events: refused upgrades with their codes,
 * config reloads and rejections, errors, app state changes.
 */
import { useState } from 'preact/hooks';
import { html } from './html.js';
import { formatClock, formatFull, formatIso } from './format.js';

const FILTERS = {
  all: () => true,
  problems: (e) => e.level === 'warn' || e.level === 'error',
};

export function EventsPanel({ events }) {
  const [filter, setFilter] = useState('all');
  const shown = events.filter(FILTERS[filter] ?? FILTERS.all);
  return html`<section class="panel events-panel" aria-labelledby="events-title">
    <div class="panel-head">
      <h2 id="events-title">Gateway events ${events.length ? html`<span class="count">${events.length}</span>` : null}</h2>
      <div class="panel-tools">
        <label for="events-filter">Show</label>
        <select id="events-filter" value=${filter} onChange=${(e) => setFilter(e.currentTarget.value)}>
          <option value="all">all events</option>
          <option value="problems">warnings and errors</option>
        </select>
      </div>
    </div>
    ${shown.length
      ? html`<ol class="events" tabindex="0" aria-label="Gateway events, newest first">
          ${shown.map(
            (e) => html`<li key=${e.id} class=${`event level-${e.level}`}>
              <time datetime=${formatIso(e.at)} title=${formatFull(e.at)}>${formatClock(e.at)}</time>
              <span class=${`level badge level-${e.level}`}>${e.level}</span>
              <span class="type">${e.type}</span>
              ${e.app ? html`<span class="app">${e.app}</span>` : null}
              ${e.code ? html`<code class="code">${e.code}</code>` : null}
              <span class="message">${e.message}</span>
            </li>`,
          )}
        </ol>`
      : html`<p class="empty">${events.length ? 'No warnings or errors.' : 'No events yet.'}</p>`}
  </section>`;
}
