/**
 * Refusing an upgrade the gateway itself decided against (no app at the
 * path, a Host that is not the gateway's), by the same rules as the upgrade
 * failures of upgrade.ts: a browser cannot read the status of a failed
 * handshake (it reports 1006), so a well-formed handshake is completed and
 * closed with the error's close code and a reason; `ws_errors: http`, a
 * malformed handshake or a malformed Host get the plain HTTP error.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { PortholeError } from '../errors.js';
import { emit } from '../events.js';
import { acceptAndClose, sendRawHttpError } from './error-response.js';
import { checkHandshake, wsProtocol } from './handshake.js';

export interface UpgradeRefusalOptions {
  app: string | null;
  wsErrors: 'ws' | 'http';
  /** Error page template for the HTTP answer. */
  template?: string;
  /** The close reason, when it should differ from `code: message` (at most 123 bytes are sent). */
  reason?: string;
  /** The path in the event, when the request's own should not be logged (a bridge token hidden). */
  path?: string;
}

/** At most 123 bytes (RFC 6455 §5.5.1); a message too long loses its parenthesised tail first. */
export function closeReason(err: PortholeError): string {
  const full = `${err.code}: ${err.message}`;
  if (Buffer.byteLength(full) <= 123) return full;
  const cut = full.indexOf(' (');
  return cut !== -1 && Buffer.byteLength(full.slice(0, cut)) <= 123 ? full.slice(0, cut) : full;
}

export function refuseUpgrade(gateway: string, req: IncomingMessage, socket: Duplex, err: PortholeError, opts: UpgradeRefusalOptions): void {
  socket.on('error', () => socket.destroy());
  const path = opts.path ?? req.url ?? '/';
  const key = req.headers['sec-websocket-key'];
  if (opts.wsErrors === 'http' || err.status === 400 || typeof key !== 'string' || checkHandshake(req)) {
    emit('upgrade', { gateway, app: opts.app, path, accepted: false, status: err.status, code: err.code, reason: err.message, protocol: wsProtocol(req) });
    sendRawHttpError(socket, err, req.headers.accept, opts.template);
    return;
  }
  const reason = opts.reason ?? closeReason(err);
  emit('upgrade', { gateway, app: opts.app, path, accepted: false, status: 101, code: err.code, reason, closeCode: err.closeCode, protocol: wsProtocol(req) });
  acceptAndClose(socket, key, req.headers['sec-websocket-protocol'], err.closeCode, reason);
}
