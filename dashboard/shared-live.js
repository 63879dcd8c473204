/**
 * One `/_porthole/api/live` stream for every dashboard tab of this browser.
 *
 * A stream holds an HTTP/1.1 connection for as long as the tab is open, and
 * Chromium keeps at most 6 connections to one host and port: six dashboard
 * tabs (or popups) would leave none for the apps served under the same
 * origin, whose pages would hang. So the tabs elect one of them with the Web
 * Locks API to hold the stream; it passes every message on to the others
 * over a BroadcastChannel. When that tab closes, its lock is released and the
 * next tab takes over. Without Web Locks (not a secure context), each tab
 * follows the stream itself.
 */
import { follow, onSessionEnded, sessionEnded } from './api.js';

const LOCK = 'porthole-live';
/** The snapshots a tab that joins late needs at once (the others arrive as they happen). */
const SNAPSHOTS = new Set(['apps', 'tunnels', 'cluster']);

/**
 * As `follow('live', handlers)`, shared between tabs.
 * @param {{ onOpen?: () => void, onMessage: (msg: import('./sse.js').SseMessage) => void, onState: (s: import('./api.js').StreamState) => void }} handlers
 * @returns {() => void} stops
 */
export function followLive({ onOpen, onMessage, onState }) {
  if (!navigator.locks || typeof BroadcastChannel !== 'function') return follow('live', { onOpen, onMessage, onState });
  const channel = new BroadcastChannel(LOCK);
  const abort = new AbortController();
  let stopped = false;
  /** Set while this tab holds the stream. */
  let lead = /** @type {{ stop: () => void, release: () => void, state: import('./api.js').StreamState, last: Map<string, import('./sse.js').SseMessage> } | null} */ (null);

  channel.onmessage = ({ data }) => {
    if (stopped) return;
    if (data.type === 'hello') {
      // A tab joined: tell it where the stream is and give it the latest snapshots.
      if (lead) {
        channel.postMessage({ type: 'state', state: lead.state });
        for (const msg of lead.last.values()) channel.postMessage({ type: 'message', msg });
      }
      return;
    }
    if (lead) return; // the leading tab has its own stream
    if (data.type === 'open') onOpen?.();
    else if (data.type === 'message') onMessage(data.msg);
    else if (data.type === 'state') {
      onState(data.state);
      if (data.state.state === 'ended') sessionEnded();
    }
  };

  navigator.locks
    .request(LOCK, { signal: abort.signal }, () => {
      if (stopped) return undefined;
      return new Promise((release) => {
        const last = new Map();
        const share = (m) => channel.postMessage(m);
        lead = { stop: () => {}, release: () => release(undefined), state: { state: 'connecting' }, last };
        const current = lead;
        current.stop = follow('live', {
          onOpen: () => {
            onOpen?.();
            share({ type: 'open' });
          },
          onState: (s) => {
            current.state = s;
            onState(s);
            if (s.state !== 'stopped') share({ type: 'state', state: s });
          },
          onMessage: (msg) => {
            if (SNAPSHOTS.has(msg.event)) last.set(msg.event, msg);
            onMessage(msg);
            share({ type: 'message', msg });
          },
        });
      });
    })
    .catch(() => {
      /* stopped before the lock came: nothing to release */
    });
  // A tab that learns by itself that the session ended stops listening to the others too.
  const offEnded = onSessionEnded(() => {
    if (!lead && !stopped) onState({ state: 'ended' });
    stopped = true;
    abort.abort();
    // A leading tab lets go, so that tabs of a new session can elect one of their own.
    lead?.release();
    lead = null;
  });
  // Until a leading tab answers (or this one leads), the state is unknown: ask, and read the snapshots ourselves.
  onState({ state: 'connecting' });
  onOpen?.();
  channel.postMessage({ type: 'hello' });

  return () => {
    offEnded();
    stopped = true;
    abort.abort();
    if (lead) {
      lead.stop();
      lead.release();
      lead = null;
    }
    channel.close();
  };
}
