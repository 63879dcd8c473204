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

/** Per connection, the callbacks of its responses not over yet: one `close` listener per socket, whatever the pipelining depth. */
const pending = new WeakMap<Socket, Set<() => void>>();

function connectionClosed(this: Socket): void {
  const waiting = pending.get(this);
  pending.delete(this);
  if (waiting) for (const done of waiting) done();
}

/**
 * Calls `fn` once, when `res` closes or its connection does, whichever comes
 * first. Returns a function that cancels the call.
 */
export function onResponseDone(res: ServerResponse, fn: () => void): () => void {
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
  const set = waiting;
  let over = false;
  const done = () => {
    if (over) return;
    over = true;
    set.delete(done);
    res.off('close', done);
    fn();
  };
  set.add(done);
  res.once('close', done);
  return () => {
    over = true;
    set.delete(done);
    res.off('close', done);
  };
}
