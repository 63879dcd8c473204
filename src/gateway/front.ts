/**
 * The front: WebSocket handshakes done on the native addon's thread
 * (native/front.c), JavaScript only deciding.
 *
 * Node accepts each connection as usual, but before its socket exists the
 * connection's fd goes to the addon, which peeks at the request head. Anything
 * but a complete WebSocket GET head comes back untouched and Node's own
 * connection handler takes it (`handoff`): HTTP, slow or broken heads, TLS
 * and HTTP/2 never meet the front. A WebSocket head is parsed here, strictly,
 * and the gateway asked (frontPlan): an upgrade that needs nothing but a tunnel
 * to a plain TCP app at an IP address is carried out by the addon — the head
 * taken from the socket, the upstream connected, our head written, the
 * answer's head read — and a clean 101 becomes a native tunnel. No Node
 * socket, HTTP parser, IncomingMessage of Node's or upstream socket is made.
 *
 * Everything else goes where it always went. An upgrade the front does not
 * take (any check that would refuse it, auth, a bridge, a waking app…) is
 * handed back before anything was read, and Node parses it again. A failure
 * after that (connect refused, a timeout, the client leaving, a drain) and any
 * answer but a clean 101 get Node sockets made from the addon's fds and go on
 * through upgrade.ts's own code (failures(), awaitAnswer()), so they are
 * answered, relayed and logged exactly as without the front.
 */
import { closeSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { isIP, Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { ConfigError, DrainingError, RequestAbortedError, UpstreamBadResponseError, upstreamError } from '../errors.js';
import { emit } from '../events.js';
import type { GatewayCore } from './core.js';
import { noteConnection } from './memory-reducer.js';
import { armLinks, binding, NativeTunnel } from './native-tunnel.js';
import type { NativeBinding } from './native-binding.js';
import type { Match } from './router.js';
import { peerOf } from './tunnel.js';
import { awaitAnswer, bad101, failures } from './upgrade.js';
import { connectTimeoutError, isOws, isToken, isValue, parse101, requestHeadText, responseTimeoutError, UpgradeRequest, type UpgradeRequestOptions } from './upstream-upgrade.js';
import { processShared } from './process-shared.js';

/** What the addon reports (native/tunnel.h, FRONT_*). */
const HANDOFF = 0;
const HEAD = 1;
const ANSWER = 2;
const FAILED = 3;
const LEFT = 4;
const CONNECT_TIMEOUT = 5;
const RESPONSE_TIMEOUT = 6;
const ABORTED = 7;

/** The answers' heads the front takes: as upstream-upgrade.ts's MAX_HEAD. */
const MAX_HEAD = 16 * 1024;

/**
 * How long a connection may take to send a complete head before Node is given it (and starts
 * its own header timeout): browsers send the handshake in one segment right after connecting.
 */
export const FRONT_WAIT_MS = 200;

/**
 * At most how long the kernel holds a new connection that has sent nothing before Node accepts
 * it anyway (TCP_DEFER_ACCEPT; the kernel counts it in SYN-ACK retransmissions, about a second).
 * A connection that never sends costs the process no descriptor meanwhile.
 */
export const DEFER_S = 1;

/**
 * Whether the front is wanted: yes, unless PORTHOLE_FRONT=node (every handshake through
 * Node's own path). It needs the native tunnel engine and a cleartext listener (gateway.ts).
 * Any other value is a configuration error (PH_ERR_CONFIG).
 */
export function frontWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.PORTHOLE_FRONT?.trim();
  if (!v || v === 'native') return true;
  if (v === 'node') return false;
  throw new ConfigError([`PORTHOLE_FRONT=${v}: expected native (the default: WebSocket handshakes through the front) or node (through Node's own path)`], 'environment');
}

/** The gateway's side: the same decisions as its upgrade listener, without answering. */
export interface FrontOwner extends GatewayCore {
  /** Where an upgrade goes if it needs nothing but a tunnel (gateway.ts), else null. */
  frontPlan(req: IncomingMessage): { match: Match; o: UpgradeRequestOptions } | null;
}

/** libuv's TCP handle as Node's server hands it to `onconnection`. */
interface TcpHandle {
  fd: number;
  close(cb?: () => void): void;
  getpeername(out: Record<string, unknown>): number;
  getsockname(out: Record<string, unknown>): number;
}
type OnConnection = (this: unknown, err: number, client?: TcpHandle) => void;

/** One connection in the front, from Node's accept to its tunnel or its way back. */
interface Held {
  readonly owner: FrontOwner;
  /** The listener that accepted it. */
  readonly server: http.Server;
  readonly conn: object;
  /** Node's handle for the connection, until the front takes the handshake on. */
  handle: TcpHandle | null;
  /** Node's connection handler: a connection handed back goes through it as if just accepted. */
  readonly accept: () => void;
  req?: IncomingMessage;
  match?: Match;
  o?: UpgradeRequestOptions;
  started?: number;
  /** A drain came while the addon worked on the upstream. */
  aborted?: boolean;
  /** The addon let go of it (frontTake, frontDrop, a tunnel): it must not be named to the addon again. */
  taken?: boolean;
  drained?: () => void;
}

// Once per process, whichever copy of this module watched a connection: the addon reports to the copy that started the front (process-shared.ts).
const shared = processShared('front', () => ({ held: new Map<number, Held>(), cut: new WeakSet<http.Server>(), counts: { tunnels: 0, handedBack: 0, atAccept: 0 }, nextId: 1, binding: null as NativeBinding | null }));
const held = shared.held;
/**
 * Listeners whose connections were all cut (the end of a drain, closeAllConnections): Node
 * no longer counts or checks the ones it would be given (no header timeout once closed), so
 * a connection the front still held then is closed when it would have been handed back.
 */
const cut = shared.cut;
/** Handshakes the front completed (tunnels), connections it gave back to Node (any reason), and connections whose first bytes were there when Node accepted them, since start. */
const counts = shared.counts;

/** What the front did so far in this process (tests, diagnostics). */
export function frontCounts(): Readonly<typeof counts> {
  return { ...counts };
}
/** @internal Tests: the id the next connection gets. Ids go to the addon as int32 (napi_get_value_int32 keeps the low 32 bits): they wrap before 2^31. */
export function setNextFrontId(id: number): void {
  shared.nextId = id;
}
let front: NativeBinding | null = null;
const fds = new Int32Array(2);

/** The front on a listener: `deferWhy` says why its accepts are not deferred, when they are not. */
export interface FrontInstalled {
  deferWhy?: string;
}

/**
 * Puts the front before `server`'s accepts (its listening handle's onconnection). Returns
 * null, and changes nothing, when the server's handle is not a listener of this process (a
 * cluster worker's is the primary's).
 */
export function installFront(owner: FrontOwner, server: http.Server, waitMs = FRONT_WAIT_MS): FrontInstalled | null {
  const listener = (server as unknown as { _handle?: { fd?: number; onconnection?: OnConnection } | null })._handle;
  if (!listener || typeof listener.fd !== 'number' || listener.fd < 0 || typeof listener.onconnection !== 'function') return null;
  if (!front) {
    const b = binding();
    // Started by another copy of this module: its onReport serves this copy's connections too (one `held`).
    if (!shared.binding) {
      b.frontInit(onReport);
      shared.binding = b;
    }
    front = b;
  }
  const b = front;
  // Accepts wait for the client's first bytes (at most about DEFER_S): the head is met at accept,
  // on this thread, and the addon's loop is not woken for it. Refused (not Linux's TCP): the
  // loop waits for heads as it would for a head sent in pieces, and the listening event says so.
  const deferErr = b.frontDefer(listener.fd, DEFER_S);
  const nodeAccepts = listener.onconnection;
  listener.onconnection = function (this: unknown, err: number, client?: TcpHandle) {
    if (err || !client || owner.draining) return nodeAccepts.call(this, err, client);
    let r: object | [object, string] | null;
    try {
      r = b.frontWatch(shared.nextId, client.fd, waitMs);
    } catch {
      // No fd for the duplicate, no memory: Node takes it, as it would have.
      return nodeAccepts.call(this, err, client);
    }
    // Not a WebSocket handshake, seen at accept: Node's from the start.
    if (r === null) {
      counts.handedBack++;
      counts.atAccept++;
      return nodeAccepts.call(this, err, client);
    }
    const id = shared.nextId;
    shared.nextId = id >= 0x7fffffff ? 1 : id + 1;
    const now = Array.isArray(r) ? (r as [object, string]) : null;
    const h: Held = { owner, server, conn: now ? now[0] : r, handle: client, accept: nodeAccepts.bind(this, 0, client) };
    held.set(id, h);
    if (now) {
      // Its head came with it: decided now, without the addon's loop.
      counts.atAccept++;
      try {
        head(id, h, now[1]);
      } catch (err) {
        fault(id, h, err);
      }
    }
    // The addon links it (its wait limit) at its loop's next turn: the head's arrival, or this timer's.
    armLinks(b);
  };
  return deferErr ? { deferWhy: `accepts are not deferred (TCP_DEFER_ACCEPT: ${getSystemErrorName(-deferErr)}): each head is waited for on the front's loop` } : {};
}

function onReport(kind: number, id: number, errno: number, bytes: Buffer | string | undefined, ended: boolean): void {
  const h = held.get(id);
  if (!h) return;
  if (kind === HANDOFF) {
    held.delete(id);
    counts.handedBack++;
    return accept(h);
  }
  try {
    if (kind === HEAD) head(id, h, bytes as string);
    else if (kind === ANSWER) answer(id, h, (bytes as Buffer | undefined) ?? Buffer.alloc(0), ended);
    else failed(id, h, kind, errno);
  } catch (err) {
    fault(id, h, err);
  }
}

/** A fault of ours in a connection's step costs that connection, never the process (a throw from a report would end it). */
function fault(id: number, h: Held, err: unknown): void {
  held.delete(id);
  if (h.drained) h.owner.handshakes.delete(h.drained);
  if (!h.taken) {
    h.taken = true;
    front!.frontDrop(h.conn);
  }
  h.handle?.close();
  h.handle = null;
  emit('error', { code: 'PH_ERR_NATIVE_TUNNEL', message: `the front could not finish a WebSocket handshake (${(err as Error).message}); its connection is closed`, gateway: h.owner.id });
}

/** Gives a connection back to Node unread: the addon's duplicate closed, Node's handle accepted. */
function handBack(id: number, h: Held): void {
  held.delete(id);
  counts.handedBack++;
  h.taken = true;
  front!.frontDrop(h.conn);
  accept(h);
}

/** Node's connection handler takes a connection the front gives back, unless its listener's connections were cut meanwhile. */
function accept(h: Held): void {
  if (!cut.has(h.server)) return h.accept();
  h.handle!.close();
  h.handle = null;
}

/**
 * The listener's connections were all cut (drain): those the front still holds, waiting for
 * their heads, are closed when the addon gives them back (within FRONT_WAIT_MS).
 */
export function cutFront(server: http.Server): void {
  cut.add(server);
}

function head(id: number, h: Held, text: string): void {
  const req = requestOf(text, h.handle!);
  const plan = req && h.owner.frontPlan(req);
  if (!plan) return handBack(id, h);
  const { match, o } = plan;
  const t = o.target;
  h.req = req;
  h.match = match;
  h.o = o;
  h.started = performance.now();
  let r: number;
  try {
    r = front!.frontProceed(h.conn, isIP(t.host) as 4 | 6, t.host, t.port, requestHeadText('GET', o.path, o.headers), o.connectMs, o.responseMs);
  } catch {
    return handBack(id, h);
  }
  // Not a number: the addon refused its arguments before doing anything.
  if (typeof r !== 'number') return handBack(id, h);
  if (r !== 0) {
    // Nothing of the upstream's to wait for: the client left (-1), or the connect failed at once.
    h.handle!.close();
    h.handle = null;
    return failed(id, h, r < 0 ? LEFT : FAILED, r);
  }
  armLinks(front!);
  // Counted for the memory reducer here: a connection handed back is counted by the server's 'connection'.
  noteConnection();
  // The addon's duplicate holds the connection from here on.
  h.handle!.close();
  h.handle = null;
  // A drain gives the handshake up (1001) rather than waiting for the upstream, as upgrade.ts's do.
  h.drained = () => {
    h.aborted = true;
    front!.frontAbort(h.conn);
  };
  h.owner.handshakes.add(h.drained);
  // Until its tunnel opens (then the tunnel counts), the handshake is the app's latest use.
  h.owner.activity.touch(o.app);
}

function answer(id: number, h: Held, bytes: Buffer, ended: boolean): void {
  held.delete(id);
  const { owner: gw, req, match, o } = h as Required<Held>;
  gw.handshakes.delete(h.drained!);
  if (h.aborted) return failed(id, h, ABORTED, 0);
  const end = bytes.indexOf('\r\n\r\n', 0, 'latin1');
  const res = end >= 0 && end + 4 <= MAX_HEAD ? parse101(bytes.toString('latin1', 0, end)) : null;
  if (!res) {
    // Not plainly a 101: Node's client reads it (relayed answers, parse errors, hang-ups), as for any upgrade.
    const [client, upstream] = sockets(h, true);
    const { fail } = failures(gw, req, client, match);
    awaitAnswer(gw, req, client, Buffer.alloc(0), match, fail, UpgradeRequest.replaying(o, upstream!, bytes, ended), h.started!);
    return;
  }
  const app = match.route.app.name;
  const path = req.url ?? '/';
  const wrong = bad101(res, req);
  if (wrong) {
    const [client] = sockets(h);
    failures(gw, req, client, match).fail(new UpstreamBadResponseError(`${app}: upstream ${match.target.label} ${wrong}`, { app }));
    return;
  }
  let response = `HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}\r\n`;
  const raw = res.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) response += `${raw[i]}: ${raw[i + 1]}\r\n`;
  const route = match.route;
  const tunnel = new NativeTunnel(null, null, { app, path, gateway: gw.id, client: peerOf(req.socket) }, { idleMs: route.idleMs, pingMs: route.pingMs, onEnd: (t) => gw.tunnels.delete(t) });
  try {
    // Header values are the upstream's bytes read as latin1: written back the same way.
    tunnel.startFront(h.conn, Buffer.from(`${response}\r\n`, 'latin1'));
    h.taken = true;
    armLinks(front!);
  } catch (err) {
    const [client] = sockets(h);
    failures(gw, req, client, match).fail(upstreamError(err, app, match.target.label));
    return;
  }
  counts.tunnels++;
  emit('upgrade', { gateway: gw.id, app, path, accepted: true, status: 101, ms: Math.round((performance.now() - h.started!) * 1000) / 1000, protocol: 'http/1.1' });
  gw.tunnels.add(tunnel);
}

function failed(id: number, h: Held, kind: number, errno: number): void {
  held.delete(id);
  const { owner: gw, req, match, o } = h as Required<Held>;
  if (h.drained) gw.handshakes.delete(h.drained);
  const app = match.route.app.name;
  if (kind === LEFT) {
    h.taken = true;
    front!.frontDrop(h.conn);
    const err = new RequestAbortedError(`${app}: the client left before upstream ${match.target.label} answered the handshake`, { app });
    emit('upgrade', { gateway: gw.id, app, path: req.url ?? '/', accepted: false, status: err.status, code: err.code, reason: err.message, protocol: 'http/1.1' });
    return;
  }
  const [client] = sockets(h);
  const { fail } = failures(gw, req, client, match);
  if (kind === ABORTED || h.aborted) return fail(new DrainingError(`${app}: the gateway is shutting down; reconnect in a moment`, { app }));
  if (kind === CONNECT_TIMEOUT) return fail(connectTimeoutError(o));
  if (kind === RESPONSE_TIMEOUT) return fail(responseTimeoutError(o));
  fail(upstreamError(connectError(errno, o), app, match.target.label));
}

/**
 * The addon's sockets as Node sockets. The upstream's only when `upstream` asks for it: else
 * it is closed here (the handshake is given up; Node's path destroys it the same way).
 */
function sockets(h: Held, upstream = false): [Socket, Socket | null] {
  h.taken = true;
  front!.frontTake(h.conn, fds);
  const [c, u] = fds;
  if (u >= 0 && !upstream) closeSync(u);
  // The server's sockets are half-open (a FIN read does not end the writing side), as Node's own.
  const client = new Socket({ fd: c, readable: true, writable: true, allowHalfOpen: true });
  client.on('error', destroySelf);
  return [client, u >= 0 && upstream ? new Socket({ fd: u, readable: true, writable: true }) : null];
}

function destroySelf(this: Socket): void {
  this.destroy();
}

/** A connect that failed in the addon, as Node's net would have reported it. */
function connectError(errno: number, o: UpgradeRequestOptions): NodeJS.ErrnoException {
  const code = errno > 0 ? getSystemErrorName(-errno) : 'ECONNRESET';
  const { host, port } = o.target;
  return Object.assign(new Error(`connect ${code} ${host}:${port}`), { errno: -errno, code, syscall: 'connect', address: host, port });
}

// Request heads as the front takes them (field names and values as parse101 reads an answer's);
// anything else goes to Node's parser, which decides.
const TARGET = /^\/[\x21-\x7e]*$/;
const LINE = ' HTTP/1.1';
/**
 * Header lines the front takes at most. Node's parser keeps only the first 2000 fields and
 * values (maxHeadersCount; about a thousand lines) and drops the rest, unseen by the checks
 * and not forwarded: a head with more than a handshake needs goes to Node, which reads it so.
 */
const MAX_LINES = 100;

/**
 * The request a head stands for, strictly (GET, an origin-form target in printable ASCII,
 * HTTP/1.1, one `name: value` per CRLF line, each name once, no body framing), or null.
 * `req.socket` is an object with the connection's addresses: nothing reads the socket
 * through the request on the front's path.
 */
function requestOf(head: string, handle: TcpHandle): IncomingMessage | null {
  // Larger than Node's limit (--max-http-header-size; the addon's own is 16 KiB, its default): Node refuses it (431).
  if (head.length > http.maxHeaderSize) return null;
  const text = head.slice(0, -4);
  let eol = text.indexOf('\r\n');
  if (eol < 0 || !text.startsWith('GET ') || text.lastIndexOf(LINE, eol) !== eol - LINE.length) return null;
  const url = text.slice(4, eol - LINE.length);
  if (!TARGET.test(url)) return null;
  const headers: IncomingHttpHeaders = {};
  const rawHeaders: string[] = [];
  while (eol >= 0) {
    const from = eol + 2;
    eol = text.indexOf('\r\n', from);
    const to = eol < 0 ? text.length : eol;
    const colon = text.indexOf(':', from);
    if (colon <= from || colon >= to || !isToken(text, from, colon)) return null;
    let start = colon + 1;
    let end = to;
    while (start < end && isOws(text.charCodeAt(start))) start++;
    while (end > start && isOws(text.charCodeAt(end - 1))) end--;
    if (!isValue(text, start, end)) return null;
    const name = text.slice(from, colon);
    const key = name.toLowerCase();
    if (rawHeaders.length >= 2 * MAX_LINES || headers[key] !== undefined || key === 'content-length' || key === 'transfer-encoding') return null;
    const value = text.slice(start, end);
    headers[key] = value;
    rawHeaders.push(name, value);
  }
  const peer: { address?: string; port?: number; family?: string } = {};
  const local: { address?: string; port?: number; family?: string } = {};
  if (handle.getpeername(peer) !== 0 || handle.getsockname(local) !== 0) return null;
  const socket = { remoteAddress: peer.address, remotePort: peer.port, remoteFamily: peer.family, localAddress: local.address, localPort: local.port, encrypted: false };
  const req = new http.IncomingMessage(socket as unknown as Socket);
  req.method = 'GET';
  req.url = url;
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.httpVersion = '1.1';
  req.headers = headers;
  req.rawHeaders = rawHeaders;
  req.complete = true;
  return req;
}
