/**
 * The optional native tunnel (binding.gyp, native/): loaded once, with the
 * reason it could not be when it is missing, and the choice of engine for
 * WebSocket tunnels — the `tunnel_engine` setting, overridden by the
 * PORTHOLE_TUNNEL environment variable (CI runs the tunnel tests both ways).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeTunnelUnavailableError } from '../errors.js';
import type { TunnelCounts } from './tunnel-close.js';

/** The addon's functions (native/addon.c). */
export interface NativeBinding {
  /**
   * Starts the loop thread. At each tunnel's end, `onEnd` is called with its reasons (the
   * gateway's, the client's, the upstream's, a bridge's; undefined when there is none) and
   * its numbers in `reportOut`, read at once (REPORT_* indexes in native-tunnel.ts).
   */
  init(onEnd: (gatewayReason: string | undefined, clientReason: string | undefined, upstreamReason: string | undefined, bridgeReason: string | undefined) => void, reportOut: Float64Array): void;
  /**
   * With `bridge`, the pair is a WebSocket->TCP bridge (native/bridge.c) rather than a tunnel.
   * A tunnel's `preface` (its 101) is written to the client before the upstream's bytes.
   */
  adopt(id: number, clientFd: number, upstreamFd: number, clientHead: Buffer | null, upstreamHead: Buffer | null, idleMs: number, pingMs: number, graceMs: number, bridge?: NativeBridgeSpec, preface?: Buffer): object;
  close(handle: object, code: number, reason: string): void;
  destroy(handle: object): void;
  release(handle: object): void;
  stats(handle: object, out: Float64Array): void;
  ref(): void;
  unref(): void;
  /**
   * A plain tunnel with nothing to preload is registered from the calling thread and its loop
   * is not woken (its sockets' first event does that); wake() makes the loop arm the timers
   * of such tunnels when no socket stirs.
   */
  wake(): void;
  /** The front (native/front.c, front.ts): reports are (kind, id, errno, bytes, ended); a request head comes as latin1 text. */
  frontInit(onReport: (kind: number, id: number, err: number, bytes: Buffer | string | undefined, ended: boolean) => void): void;
  /** The connection; with its head (latin1) when that came with it; null: Node takes it now. */
  frontWatch(id: number, fd: number, waitMs: number): object | [object, string] | null;
  /** TCP_DEFER_ACCEPT on a listener: 0 or an errno. */
  frontDefer(fd: number, seconds: number): number;
  /** 0, an errno (the connect failed at once), or -1 (the client left). */
  frontProceed(conn: object, family: 4 | 6, ip: string, port: number, head: string, connectMs: number, responseMs: number): number;
  frontTake(conn: object, out: Int32Array): void;
  frontDrop(conn: object): void;
  frontAbort(conn: object): void;
  frontTunnel(conn: object, id: number, preface: Buffer, idleMs: number, pingMs: number, graceMs: number): object;
  /** V8's LowMemoryNotification (memory-reducer.ts); false when this node does not export it. */
  reduceMemory(): boolean;
}

/** What the loop thread knows when a tunnel ends; native-tunnel.ts turns it into `tunnel.close`. */
export interface NativeEndReport extends TunnelCounts {
  id: number;
  lastActivity: number;
  gatewayCode: number | null;
  gatewayReason?: string;
  clientCode: number | null;
  clientReason: string;
  upstreamCode: number | null;
  upstreamReason: string;
  firstClose?: 'client' | 'upstream';
  firstCut?: 'client' | 'upstream';
  /** A bridge's own verdict: who closed first, the code (null: none) and the reason. */
  closedBy?: 'client' | 'upstream' | 'gateway';
  closeCode?: number | null;
  reason?: string;
}

/** What the native bridge says in its own close frames; JavaScript words them (bridge.ts). */
export interface NativeBridgeSpec {
  app: string;
  /** The close reason when the target closes TCP (code 1000). */
  eofReason: string;
  /** The close reasons when TCP to the target fails (code 1014), as upstreamError words them: reset (ECONNRESET, EPIPE, ECONNABORTED)… */
  resetReason: string;
  /** … timed out (ETIMEDOUT) … */
  timeoutReason: string;
  /** … and any other error, whose name (`EHOSTUNREACH`, as Node's `code`) the addon puts between these two. */
  failedBefore: string;
  failedAfter: string;
  /** The close reason for a text message (code 1003), unless textAsBinary. */
  textReason: string;
  textAsBinary: boolean;
  /** The client's 101, written before anything else once the addon holds the sockets. */
  preface: Buffer;
}

export type TunnelEngine = 'native' | 'js';
export type TunnelEngineSetting = 'auto' | TunnelEngine;

let loaded: { binding: NativeBinding | null; error: string | null } | null = null;

/** The built addon: next to src/ and dist/ alike, as build/Release/ of the package. */
export const ADDON_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'Release', 'porthole_tunnel.node');

/** The addon, or null and why (not Linux, not built, built for another Node). Tried once per process. */
export function nativeBinding(): { binding: NativeBinding | null; error: string | null } {
  if (loaded) return loaded;
  if (process.platform !== 'linux') return (loaded = { binding: null, error: `the native tunnel is Linux-only (this is ${process.platform})` });
  try {
    const binding = createRequire(import.meta.url)(ADDON_PATH) as NativeBinding;
    loaded = { binding, error: null };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'MODULE_NOT_FOUND' ? `${ADDON_PATH} is not built (npm install builds it; see docs/development.md)` : `${ADDON_PATH}: ${e.message.split('\n')[0]}`;
    loaded = { binding: null, error: why };
  }
  return loaded;
}

/**
 * The engine in force: PORTHOLE_TUNNEL (js|native) over the setting; `auto`
 * is native when the addon loads. Native asked for and unavailable throws
 * NativeTunnelUnavailableError (PH_ERR_NATIVE_TUNNEL) with the reason.
 */
export function resolveTunnelEngine(setting: TunnelEngineSetting, env: NodeJS.ProcessEnv = process.env): { engine: TunnelEngine; why: string | null } {
  const fromEnv = env.PORTHOLE_TUNNEL?.trim();
  let wanted: TunnelEngineSetting = setting;
  if (fromEnv) {
    if (fromEnv !== 'js' && fromEnv !== 'native' && fromEnv !== 'auto') throw new NativeTunnelUnavailableError(`PORTHOLE_TUNNEL=${fromEnv}: expected js, native or auto`);
    wanted = fromEnv;
  }
  if (wanted === 'js') return { engine: 'js', why: fromEnv ? 'PORTHOLE_TUNNEL=js' : 'tunnel_engine: js' };
  const { binding, error } = nativeBinding();
  if (binding) return { engine: 'native', why: null };
  if (wanted === 'native') throw new NativeTunnelUnavailableError(`${fromEnv ? 'PORTHOLE_TUNNEL' : 'tunnel_engine'}: native, but the native tunnel cannot load: ${error}`);
  return { engine: 'js', why: error };
}

/** One line for `porthole doctor`: which engine a gateway started here would use (the default `auto`, PORTHOLE_TUNNEL applied), and why. */
export function describeTunnelEngine(env: NodeJS.ProcessEnv = process.env): { engine: TunnelEngine | null; line: string } {
  try {
    const { engine, why } = resolveTunnelEngine('auto', env);
    return { engine, line: engine === 'native' ? `native (${ADDON_PATH})` : `js (${why})` };
  } catch (err) {
    return { engine: null, line: `none: ${(err as Error).message}` };
  }
}
