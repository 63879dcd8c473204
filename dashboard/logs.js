/**
 * The Logs view: pick an app, follow its output live (stdout and stderr told
 * apart by a visible "err" marker, not by colour alone), with the gateway's
 * events in their own panel beside it.
 */
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { html } from './html.js';
import { appPath, follow } from './api.js';
import { EventsPanel } from './events.js';
import { formatClock, formatFull } from './format.js';

/** Lines kept in the page; older ones are dropped. */
export const MAX_LINES = 2000;
/** Lines are added to the page in batches, at most this often. */
const FLUSH_MS = 80;
/** Scrolled this close to the bottom counts as "at the bottom" (follows new lines). */
const STICK_PX = 24;

const STREAMS = ['stdout', 'stderr', 'porthole'];
/** The visible marker of each stream: stderr is told apart by more than colour. */
const MARKER = { stdout: '', stderr: 'err', porthole: 'ph' };

/** A log entry from the stream: JSON `{stream, text, at}`, or a bare line from an older server. */
function parseEntry(data) {
  if (data.startsWith('{')) {
    try {
      const e = JSON.parse(data);
      // "porthole" marks the supervisor's own lines about the app (started, exited).
      if (typeof e.text === 'string') return { stream: STREAMS.includes(e.stream) ? e.stream : 'stdout', text: e.text, at: e.at };
    } catch {
      /* a stdout line that starts with "{" */
    }
  }
  return { stream: 'stdout', text: data, at: undefined };
}

/** Whether the tab is shown (Page Visibility). */
function useVisible() {
  const [visible, setVisible] = useState(document.visibilityState !== 'hidden');
  useEffect(() => {
    const on = () => setVisible(document.visibilityState !== 'hidden');
    document.addEventListener('visibilitychange', on);
    return () => document.removeEventListener('visibilitychange', on);
  }, []);
  return visible;
}

function LogStatus({ state, count }) {
  const text =
    state.state === 'paused' ? 'paused while the tab is hidden' : state.state === 'open' ? 'following' : state.state === 'retrying' ? `reconnecting in ${Math.ceil(state.inMs / 1000)} s (${state.reason})` : state.state === 'ended' ? 'session ended' : state.state === 'connecting' ? 'connecting…' : 'stopped';
  return html`<p class="log-status">
    <span class=${`dot ${state.state}`} aria-hidden="true"></span>
    <span>${text}</span> · <span>${count} line${count === 1 ? '' : 's'}${count >= MAX_LINES ? ` (the last ${MAX_LINES})` : ''}</span>
    <span class="legend"><b class="err">err</b> stderr · <b class="ph">ph</b> Porthole</span>
  </p>`;
}

function AppLog({ name }) {
  const [lines, setLines] = useState(/** @type {{ id: number, stream: string, text: string, at?: number }[]} */ ([]));
  const [state, setState] = useState(/** @type {import('./api.js').StreamState} */ ({ state: 'connecting' }));
  const [stuck, setStuck] = useState(true);
  const [unseen, setUnseen] = useState(0);
  const box = useRef(/** @type {HTMLElement | null} */ (null));
  const stick = useRef(true);

  const visible = useVisible();
  useEffect(() => {
    // A hidden tab lets its stream go (each holds one of the browser's few connections to the gateway);
    // it follows again, from a fresh tail, when shown.
    if (!visible) {
      setState({ state: 'paused' });
      return undefined;
    }
    let nextId = 0;
    /** @type {any[]} */
    let pending = [];
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    let reset = false;
    const flush = () => {
      timer = undefined;
      const batch = pending;
      const clear = reset;
      pending = [];
      reset = false;
      setLines((old) => {
        const all = clear ? batch : old.concat(batch);
        return all.length > MAX_LINES ? all.slice(all.length - MAX_LINES) : all;
      });
      if (!stick.current) setUnseen((n) => n + batch.length);
    };
    const schedule = () => {
      timer ??= setTimeout(flush, FLUSH_MS);
    };
    const stop = follow(`${appPath(name)}/logs?lines=200&entries=1&follow=1`, {
      // The server sends the tail again on every connection: start over rather than repeat it.
      onOpen: () => {
        pending = [];
        reset = true;
        schedule();
      },
      onState: setState,
      onMessage: ({ data }) => {
        pending.push({ id: nextId++, ...parseEntry(data) });
        if (pending.length > MAX_LINES) pending.splice(0, pending.length - MAX_LINES);
        schedule();
      },
    });
    return () => {
      stop();
      clearTimeout(timer);
    };
  }, [name, visible]);

  // Whether to follow is read from where the view was before these lines were
  // added, not only from scroll events: those come a frame late, after a batch may have landed.
  const lastHeight = useRef(0);
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const wasAtBottom = el.scrollTop + el.clientHeight >= lastHeight.current - STICK_PX;
    stick.current = wasAtBottom;
    if (wasAtBottom) el.scrollTop = el.scrollHeight;
    lastHeight.current = el.scrollHeight;
  }, [lines]);

  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight <= STICK_PX;
    stick.current = atBottom;
    setStuck(atBottom);
    if (atBottom) setUnseen(0);
  };

  const jump = () => {
    const el = box.current;
    if (!el) return;
    stick.current = true;
    setStuck(true);
    setUnseen(0);
    el.scrollTop = el.scrollHeight;
  };

  return html`<div class="app-log">
    <${LogStatus} state=${state} count=${lines.length} />
    <div class="log" ref=${box} onScroll=${onScroll} tabindex="0" role="log" aria-live="off" aria-label=${`Output of ${name}`}>
      ${lines.length === 0
        ? html`<p class="empty">No output yet.</p>`
        : lines.map(
            (l) => html`<div key=${l.id} class=${`line ${l.stream}`}>
              <span class="ts" title=${l.at ? formatFull(l.at) : ''}>${l.at ? formatClock(l.at) : ''}</span>
              <span class="stream" title=${l.stream === 'porthole' ? 'from Porthole' : l.stream}>${MARKER[l.stream]}</span>
              <span class="text">${l.text}</span>
            </div>`,
          )}
    </div>
    ${stuck ? null : html`<button type="button" class="jump" onClick=${jump}>${unseen ? `${unseen} new line${unseen === 1 ? '' : 's'} — ` : ''}Follow the latest</button>`}
  </div>`;
}

export function LogsView({ apps, selected, events }) {
  const names = (apps ?? []).map((a) => a.name);
  const name = selected && names.includes(selected) ? selected : selected && apps === null ? selected : '';
  const choose = (e) => {
    const v = e.currentTarget.value;
    location.hash = v ? `#logs/${encodeURIComponent(v)}` : '#logs';
  };
  return html`<div class="logs-layout">
    <section class="panel log-panel" aria-labelledby="log-title">
      <div class="panel-head">
        <h2 id="log-title">App log</h2>
        <div class="panel-tools">
          <label for="log-app">App</label>
          <select id="log-app" value=${name} onChange=${choose}>
            <option value="">choose an app…</option>
            ${names.map((n) => html`<option value=${n}>${n}</option>`)}
          </select>
        </div>
      </div>
      ${name
        ? html`<${AppLog} key=${name} name=${name} />`
        : html`<p class="empty">${apps && apps.length === 0 ? 'No apps yet.' : 'Choose an app to follow its output.'}</p>`}
    </section>
    <${EventsPanel} events=${events} />
  </div>`;
}
