/**
 * An upstream response body copied to the client with backpressure, for the
 * one case the gateway needs: one source, one destination, ended when the
 * source ends. `pipe()` does the same with about a dozen listener adds and
 * removes and two events per response (its bookkeeping for many
 * destinations and unpiping), a visible share of a small request's cost.
 *
 * What pipe() would do on failure is handled where it belongs: a client that
 * leaves destroys the upstream request (http-forward.ts), and a body cut
 * short is never ended here ('end' comes only for a whole body), so the
 * client's connection is cut rather than given half a body for a whole one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

const kTo = Symbol('porthole.relayTo');
const kFrom = Symbol('porthole.relayFrom');
type Source = IncomingMessage & { [kTo]: ServerResponse };
type Sink = ServerResponse & { [kFrom]: IncomingMessage };

// Shared functions with `this` rather than closures: nothing is allocated per response but two properties.
function onData(this: Source, chunk: Buffer): void {
  const res = this[kTo];
  if (!res.write(chunk) && !res.destroyed) {
    this.pause();
    res.once('drain', onDrain);
  }
}

function onDrain(this: Sink): void {
  this[kFrom].resume();
}

function onEnd(this: Source): void {
  const res = this[kTo];
  if (!res.destroyed) res.end();
}

export function relay(from: IncomingMessage, to: ServerResponse): void {
  (from as Source)[kTo] = to;
  (to as Sink)[kFrom] = from;
  from.on('data', onData);
  from.on('end', onEnd);
}
