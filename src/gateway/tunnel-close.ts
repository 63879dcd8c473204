/**
 * The `tunnel.close` event, as both tunnel engines report it: who closed a
 * tunnel, with which code and why, from what each direction saw. The
 * JavaScript tunnel (tunnel.ts) and the native one (native-tunnel.ts) gather
 * the same facts their own way; the verdict and the event are one.
 */
import { emit } from '../events.js';
import type { TunnelInfo } from './tunnel.js';

export type Side = 'client' | 'upstream';

/** Bytes, frames and messages each way: what both engines count. */
export interface TunnelCounts {
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
  messagesIn: number;
  messagesOut: number;
}

/** What a tunnel knows when it ends. */
export interface TunnelEnd extends TunnelCounts {
  /** The gateway's own close (drain, idle, logout), if it sent one. */
  gateway: { code: number; reason?: string } | null;
  /** The first close frame seen from each side (code null: none). */
  client: { code: number | null; reason: string };
  upstream: { code: number | null; reason: string };
  /** Which side sent a close frame first, and which side's connection ended first. */
  firstClose?: Side | null;
  firstCut?: Side | null;
  /** Who moved the bytes. */
  engine: 'native' | 'js';
}

/** Emits `tunnel.close` for a tunnel that ended. */
export function emitTunnelClose(info: TunnelInfo, id: number, started: number, end: TunnelEnd): void {
  let closedBy: Side | 'gateway';
  let closeCode: number | null;
  let reason: string | undefined;
  if (end.gateway) {
    closedBy = 'gateway';
    closeCode = end.gateway.code;
    reason = end.gateway.reason;
  } else if (end.client.code !== null || end.upstream.code !== null) {
    // Whoever sent a close frame first; a reply comes back with the same code.
    const clientFirst = end.client.code !== null && (end.upstream.code === null || (end.firstClose ?? 'client') === 'client');
    const first = clientFirst ? end.client : end.upstream;
    closedBy = clientFirst ? 'client' : 'upstream';
    closeCode = first.code;
    reason = first.reason || undefined;
  } else {
    closedBy = end.firstCut ?? 'client';
    closeCode = null;
    reason = 'connection cut without a close frame';
  }
  emit('tunnel.close', {
    app: info.app,
    path: info.path,
    gateway: info.gateway,
    ms: Date.now() - started,
    bytesIn: end.bytesIn,
    bytesOut: end.bytesOut,
    framesIn: end.framesIn,
    framesOut: end.framesOut,
    messagesIn: end.messagesIn,
    messagesOut: end.messagesOut,
    id,
    kind: 'tunnel',
    engine: end.engine,
    client: info.client,
    closeCode,
    closedBy,
    reason,
  });
}
