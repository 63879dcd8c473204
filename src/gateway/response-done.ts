/**
 * When a response is over, for logging and counting: its `close` event, or
 * the close of its connection. Node emits no `close` on a response still
 * queued behind an earlier one of the same connection (HTTP pipelining) when
 * the client leaves, so relying on `close` alone left such requests unlogged
 * and counted as in flight for ever (a drain then waited its whole
 * drain_timeout for them).
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A response's callbacks, in the order they were asked for. Several parts of the gateway wait
 * for the same response (in-flight count, log line, cancelling the upstream request): one
 * record and one `close` listener per response rather than one per caller, on the path every
 * request takes.
 */
interface Waiting {
  res: ServerResponse;
  socket: Socket;
  fns: ((() => void) | null)[];
  over: boolean;
}

const kWaiting = Symbol('porthole.responseDone');
type Tracked = ServerResponse & { [kWaiting]?: Waiting };

/** Per connection, its responses not over yet: one `close` listener per socket, whatever the pipelining depth. */
const pending = new WeakMap<Socket, Set<Waiting>>();

function fire(w: Waiting): void {
  if (w.over) return;
  w.over = true;
  pending.get(w.socket)?.delete(w);
  w.res.off('close', responseClosed);
  for (const fn of w.fns) if (fn !== null) fn();
}

function responseClosed(this: Tracked): void {
  const w = this[kWaiting];
  if (w) fire(w);
}

function connectionClosed(this: Socket): void {
  const waiting = pending.get(this);
  pending.delete(this);
  if (waiting) for (const w of waiting) fire(w);
}

/**
 * Calls `fn` once, when `res` closes or its connection does, whichever comes
 * first. Returns a function that cancels the call.
 */
export function onResponseDone(res: ServerResponse, fn: () => void): () => void {
  const tracked = res as Tracked;
  let w = tracked[kWaiting];
  if (w === undefined || w.over) {
    const socket = res.req.socket as Socket;
    let waiting = pending.get(socket);
    if (!waiting) {
      if (socket.destroyed) {
        let cancelled = false;
        queueMicrotask(() => cancelled || fn());
        return () => void (cancelled = true);
      }
      waiting = new Set();
      pending.set(socket, waiting);
      socket.once('close', connectionClosed);
    }
    w = { res, socket, fns: [], over: false };
    tracked[kWaiting] = w;
    waiting.add(w);
    res.on('close', responseClosed);
  }
  const fns = w.fns;
  const at = fns.push(fn) - 1;
  return () => void (fns[at] = null);
}
