/**
 * ioredis (5.x) listens for its socket's first 'error' only (`stream.once`).
 * A TLS socket can report two: a write that met ECONNRESET, then the alert
 * Redis sent before hanging up (a client certificate it wanted, cleartext on
 * its TLS port). The second one, unheard, is an uncaughtException that ends
 * the whole gateway. Every socket a client opens gets a listener of ours as
 * it is assigned, so no error of it can go unheard; the client still reports
 * the first one through its own 'error' event.
 */
import type { Redis } from 'ioredis';

const ignore = (): void => {};

export function hearEveryStreamError(client: Redis): void {
  let current = (client as { stream?: NodeJS.EventEmitter }).stream;
  current?.on('error', ignore);
  Object.defineProperty(client, 'stream', {
    configurable: true,
    enumerable: true,
    get: () => current,
    set: (stream: NodeJS.EventEmitter | undefined) => {
      current = stream;
      if (stream && !stream.listeners('error').includes(ignore)) stream.on('error', ignore);
    },
  });
}
