/**
 * The bridge's wire behaviour, pinned byte by byte so that every engine
 * (the native one in the addon's epoll thread, and JavaScript with
 * PORTHOLE_TUNNEL=js) must behave the same: frames are written and parsed by
 * hand here (masked, fragmented, split across TCP writes inside the header
 * and the mask key), against a real `porthole bridge` child process and a
 * real TCP target. Every test also checks that the child's open descriptors
 * return to what they were once its connections are closed.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { logEvents, startBridgeCli, type BridgeCli } from '../fixtures/bridge/bridge-cli.js';
import { closeServer, listen, sleep, waitFor } from '../helpers/net.js';
import { acceptOf, handshakeText } from '../reliability/peers.js';

const MiB = 1024 * 1024;
const MAX_MESSAGE = 16 * MiB;
/** Cases of one suite run at once on a shared bridge (see CasesAtOnce). */
const CASES_AT_ONCE = 12;
/** Pipes the native bridge keeps for later connections at most (native/bridge.c). */
const PIPE_POOL = 16;

// ---------------------------------------------------------------- the child

function fdsOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

const isPipe = (target: string) => target.includes('→pipe:');

/** What each of a process's descriptors is (socket:[…], pipe:[…], a path): `fd→target`. */
function fdTargets(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(`${fd}→${readlinkSync(`/proc/${pid}/fd/${fd}`)}`);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** Pipes among a process's descriptors (the native bridge splices through pooled ones). */
function pipesOf(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('pipe:')) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Samples a process's RSS until stopped; returns the peak. */
function sampleRss(pid: number, everyMs = 20): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssOf(pid));
    } catch {
      /* gone */
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

interface Bridge {
  cli: BridgeCli;
  pid: number;
  /** Open descriptors once listening and warmed up by one connection, with no connection open. */
  baseFds: number;
  /** Pipes the warm-up connection left behind: the native bridge's pooled pipe for splice, or none. */
  warmUpPipes: number;
  /**
   * Waits for the descriptors to return to the baseline (every connection gone). `atOnce`:
   * how many connections were open at the same time since the last check. The splicing
   * bridge pools the pipe of each connection that had bytes in flight beside another, for
   * later ones (bridge.c, PIPE_POOL 16): up to atOnce - 1 pipes more than after the warm-up
   * one may stay; every other descriptor is back exactly.
   */
  fdsSettled(atOnce?: number): Promise<void>;
  /** The `tunnel.close` events so far. */
  closes(): Record<string, unknown>[];
  /** Waits for the n-th (1-based) `tunnel.close` event. */
  nthClose(n: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/**
 * Starts `porthole bridge` to the target, and bridges one connection first
 * (echoed by the target, not counted in its `conns` nor in `closes()`): an
 * engine may open descriptors of its own on first use (an epoll set, an
 * eventfd), which are not a leak. The baseline is taken once the count is steady.
 */
async function startBridge(target: Target, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Bridge> {
  // The whole environment, so PORTHOLE_TUNNEL picks the engine under test.
  const cli = await startBridgeCli(['127.0.0.1:0', `127.0.0.1:${target.port}`, ...args], { ...process.env, ...env });
  const pid = cli.child.pid!;
  const all = () => logEvents(cli).filter((e) => e.event === 'tunnel.close');
  const pipesBefore = pipesOf(pid);
  target.warmUps++;
  const warm = await rawConnect(cli.port);
  await warm.send(cf(2, Buffer.from('warm')));
  await warm.until(() => warm.dataBytes === 4, 5000, 'the warm-up echo');
  await warm.send(cf(8, closeBody(1000)));
  await warm.closeFrameWithin();
  await warm.endedWithin();
  await waitFor(() => all().length === 1, 5000, 'the warm-up tunnel.close');
  let baseFds = fdsOf(pid);
  for (let i = 0; i < 40; i++) {
    await sleep(50);
    const n = fdsOf(pid);
    if (n === baseFds) break;
    baseFds = n;
  }
  const base = fdTargets(pid);
  // The native bridge splices through pipes; the JavaScript one, and PORTHOLE_SPLICE=0, read instead.
  const splicing = (env.PORTHOLE_TUNNEL ?? process.env.PORTHOLE_TUNNEL) !== 'js' && (env.PORTHOLE_SPLICE ?? process.env.PORTHOLE_SPLICE) !== '0';
  const closes = () => all().slice(1);
  return {
    cli,
    pid,
    baseFds,
    warmUpPipes: pipesOf(pid) - pipesBefore,
    closes,
    async fdsSettled(atOnce = 1) {
      const deadline = Date.now() + 5000;
      const basePipes = base.filter(isPipe).length;
      // Two descriptors a pipe; none more when the bridge does not splice.
      const pooled = splicing ? 2 * (Math.min(atOnce, PIPE_POOL) - 1) : 0;
      for (;;) {
        const now = fdTargets(pid);
        const pipes = now.filter(isPipe).length;
        if (now.length - pipes <= base.length - basePipes && pipes <= basePipes + pooled) return;
        if (Date.now() > deadline) {
          const kinds = (l: string[]) => l.map((t) => t.slice(t.indexOf('→') + 1).replace(/\[\d+\]$/, '')).sort().join(' ');
          assert.fail(`the bridge holds ${now.length} descriptors, ${base.length} with no connection open and up to ${pooled} of pipes pooled for ${atOnce} connections at once (a leak): now ${kinds(now)}; then ${kinds(base)}`);
        }
        await sleep(25);
      }
    },
    nthClose: (n) => waitFor(() => closes()[n - 1], 8000, `tunnel.close event #${n}`),
    async stop() {
      const code = await cli.stop();
      assert.equal(code, 0, `porthole bridge exited ${code}:\n${cli.stderr()}`);
    },
  };
}

// ---------------------------------------------------------------- the TCP target

interface TargetConn {
  socket: net.Socket;
  bytes: number;
  hash: Hash;
  /** What it received, when kept. */
  chunks: Buffer[];
  gotEof: boolean;
  /** Resolves on EOF or on close (a reset), whichever comes first. */
  gone: Promise<'eof' | 'close'>;
  closed: Promise<void>;
}

interface Target {
  port: number;
  /** Warm-up connections still to come (echoed, not in `conns`). */
  warmUps: number;
  conns: TargetConn[];
  nth(i: number): Promise<TargetConn>;
  close(): Promise<void>;
}

/** A TCP target; without `onConn` it echoes everything back. */
async function startTarget(onConn?: (c: TargetConn) => void, keep = true): Promise<Target> {
  const conns: TargetConn[] = [];
  const target = { warmUps: 0 } as Target;
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    if (target.warmUps > 0) {
      target.warmUps--;
      socket.on('data', (d: Buffer) => socket.write(d));
      return;
    }
    const c: TargetConn = {
      socket,
      bytes: 0,
      hash: createHash('sha256'),
      chunks: [],
      gotEof: false,
      gone: new Promise((ok) => {
        socket.once('end', () => ok('eof'));
        socket.once('close', () => ok('close'));
      }),
      closed: new Promise((ok) => socket.once('close', () => ok())),
    };
    socket.once('end', () => (c.gotEof = true));
    socket.on('data', (d: Buffer) => {
      c.bytes += d.length;
      c.hash.update(d);
      if (keep) c.chunks.push(d);
    });
    conns.push(c);
    if (onConn) onConn(c);
    else socket.on('data', (d: Buffer) => socket.write(d));
  });
  const port = await listen(server);
  return Object.assign(target, { port, conns, nth: (i: number) => waitFor(() => conns[i], 5000, `target connection #${i + 1}`), close: () => closeServer(server) });
}

/** A block of 1 MiB that differs at every offset and carries its number (a reordering changes the hash). */
function patternBlock(n: number, size = MiB): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE(((i + n * 7919) * 2654435761) >>> 0, i);
  b.writeUInt32LE(n, 0);
  return b;
}

/** Writes `total` bytes in blocks of `block`, with backpressure; returns the SHA-256 of what was written. */
async function pump(s: net.Socket, total: number, block = MiB, end = true): Promise<string> {
  const hash = createHash('sha256');
  for (let sent = 0, n = 0; sent < total; n++) {
    const b = patternBlock(n, Math.min(block, total - sent));
    hash.update(b);
    sent += b.length;
    if (!s.write(b)) await once(s, 'drain');
  }
  if (end) s.end();
  return hash.digest('hex');
}

// ---------------------------------------------------------------- frames, by hand

interface FrameOpts {
  fin?: boolean;
  rsv?: number;
  mask?: boolean;
  /** Claimed payload length (default: the real one). */
  length?: number | bigint;
  key?: Buffer;
}

/** A client frame (masked unless told), any header field set to anything (RFC 6455 §5.2). */
function cf(opcode: number, payload: Buffer = Buffer.alloc(0), o: FrameOpts = {}): Buffer {
  const mask = o.mask ?? true;
  const big = BigInt(o.length ?? payload.length);
  const ext = big < 126n ? 0 : big < 65536n ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = ((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | (opcode & 0x0f);
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? Number(big) : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(Number(big), 2);
  if (ext === 8) head.writeBigUInt64BE(big, 2);
  if (!mask) return Buffer.concat([head, payload]);
  const key = o.key ?? randomBytes(4);
  key.copy(head, 2 + ext);
  const out = Buffer.concat([head, payload]);
  const h = head.length;
  for (let i = 0; i < payload.length; i++) out[h + i] ^= key[i & 3];
  return out;
}

function closeBody(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

/** Length of a client frame's header (2-14 bytes). */
function headLen(frame: Buffer): number {
  const l = frame[1] & 0x7f;
  return 2 + (l === 126 ? 2 : l === 127 ? 8 : 0) + (frame[1] & 0x80 ? 4 : 0);
}

interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  /** Control frames always; data frames only when the client keeps data. */
  payload: Buffer;
  length: number;
  /** The length field used more bytes than needed (RFC 6455 §5.2: the minimal number MUST be used). */
  nonMinimal: boolean;
}

/**
 * A WebSocket client written by hand on a plain TCP socket: it parses every
 * server frame itself and notes whatever a server must not send.
 */
class RawClient {
  readonly frames: Frame[] = [];
  /** Data payload bytes and data frames received, and their SHA-256. */
  dataBytes = 0;
  dataFrames = 0;
  readonly hash = createHash('sha256');
  /** What the server sent that it must not. */
  readonly problems: string[] = [];
  /** Answer pings (on by default) and close frames (on by default). */
  autoPong = true;
  replyClose = true;
  sentClose = false;
  /** The server ended (or reset) our TCP connection. */
  readonly ended: Promise<void>;
  endedAt = 0;
  private buf: Buffer = Buffer.alloc(0);
  private inMessage = false;
  private waiters: (() => void)[] = [];

  constructor(
    readonly socket: net.Socket,
    readonly keepData: boolean,
  ) {
    this.ended = new Promise((ok) => socket.once('close', () => ok()));
    socket.once('close', () => (this.endedAt = performance.now()));
    socket.on('error', () => undefined);
  }

  feed(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      const b = this.buf;
      if (b.length < 2) break;
      let len = b[1] & 0x7f;
      let h = 2;
      let nonMinimal = false;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        h = 4;
        nonMinimal = len < 126;
      } else if (len === 127) {
        if (b.length < 10) break;
        const big = b.readBigUInt64BE(2);
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
          this.problems.push(`a frame length of ${big}`);
          this.buf = Buffer.alloc(0);
          break;
        }
        len = Number(big);
        h = 10;
        nonMinimal = len < 65536;
      }
      const masked = (b[1] & 0x80) !== 0;
      if (masked) h += 4;
      if (b.length < h + len) break;
      let payload = b.subarray(h, h + len);
      if (masked) {
        const key = b.subarray(h - 4, h);
        payload = Buffer.from(payload);
        for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      }
      this.buf = b.subarray(h + len);
      this.onFrame({ fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7, opcode: b[0] & 0x0f, masked, payload, length: len, nonMinimal });
    }
  }

  private onFrame(f: Frame): void {
    const what = `frame #${this.frames.length + 1} (opcode ${f.opcode}, ${f.length} bytes)`;
    if (this.closeFrame()) this.problems.push(`${what} after the close frame`);
    if (f.masked) this.problems.push(`${what} is masked`);
    if (f.rsv !== 0) this.problems.push(`${what} has RSV ${f.rsv}`);
    if (f.nonMinimal) this.problems.push(`${what} has a non-minimal length`);
    if (f.opcode >= 8) {
      if (!f.fin || f.length > 125) this.problems.push(`${what}: a bad control frame`);
      this.frames.push(f);
      if (f.opcode === 9 && this.autoPong && !this.sentClose) this.write(cf(10, f.payload));
      if (f.opcode === 8 && this.replyClose && !this.sentClose) {
        this.sentClose = true;
        this.write(cf(8, f.payload.length >= 2 ? f.payload.subarray(0, 2) : Buffer.alloc(0)));
      }
    } else {
      // The bridge sends each TCP chunk as one whole binary message.
      if (f.opcode !== 2) this.problems.push(`${what}: not a binary frame`);
      if (!f.fin) this.problems.push(`${what}: FIN clear (fragmented)`);
      if (f.length === 0) this.problems.push(`${what}: an empty data frame`);
      this.inMessage = !f.fin;
      this.dataBytes += f.length;
      this.dataFrames++;
      this.hash.update(f.payload);
      this.frames.push(this.keepData ? { ...f, payload: Buffer.from(f.payload) } : { ...f, payload: Buffer.alloc(0) });
    }
    for (const w of this.waiters.splice(0)) w();
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  /** Writes, then resolves once the bytes are handed to the kernel. */
  send(b: Buffer): Promise<void> {
    return new Promise((ok) => {
      if (this.socket.destroyed) return ok();
      this.socket.write(b, () => ok());
    });
  }

  /** Writes `b` in pieces cut at these offsets, each its own TCP write a few ms apart. */
  async sendCut(b: Buffer, cuts: number[]): Promise<void> {
    let from = 0;
    for (const at of [...cuts.filter((c) => c > 0 && c < b.length).sort((x, y) => x - y), b.length]) {
      if (at <= from) continue;
      await this.send(b.subarray(from, at));
      await sleep(3);
      from = at;
    }
  }

  /** Writes a large amount with backpressure. */
  async sendBig(b: Buffer): Promise<void> {
    if (!this.socket.write(b)) await Promise.race([once(this.socket, 'drain'), this.ended]);
  }

  closeFrame(): Frame | undefined {
    return this.frames.find((f) => f.opcode === 8);
  }

  /** The close frame's code (1005 when it has none). */
  closeCode(): number | null {
    const f = this.closeFrame();
    if (!f) return null;
    return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
  }

  closeReason(): string {
    return this.closeFrame()?.payload.subarray(2).toString('utf8') ?? '';
  }

  /** Waits until `fn` holds (checked after every frame), or fails after `ms`. */
  async until(fn: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!fn()) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`timed out waiting for ${what}; frames: ${this.frames.map((f) => f.opcode).join(',')}; problems: ${this.problems.join('; ')}`);
      await new Promise<void>((ok) => {
        const t = setTimeout(ok, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          ok();
        });
      });
    }
  }

  async closeFrameWithin(ms = 5000): Promise<number> {
    await this.until(() => !!this.closeFrame(), ms, 'a close frame');
    return this.closeCode()!;
  }

  async endedWithin(ms = 5000): Promise<void> {
    const t = sleep(ms).then(() => 'late');
    assert.notEqual(await Promise.race([this.ended.then(() => 'ended'), t]), 'late', `the bridge did not end the client's TCP connection within ${ms} ms`);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Opens a WebSocket on a raw socket (handshake by hand) and resolves after the 101. */
function rawConnect(port: number, keepData = true): Promise<RawClient> {
  return new Promise((ok, fail) => {
    const key = randomBytes(16).toString('base64');
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    const client = new RawClient(socket, keepData);
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error('no 101 within 10 s')), 10_000);
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      clearTimeout(timer);
      const text = head.subarray(0, end).toString('latin1');
      if (!text.startsWith('HTTP/1.1 101') || !text.includes(acceptOf(key))) return fail(new Error(`handshake refused: ${text}`));
      socket.on('data', (x: Buffer) => client.feed(x));
      if (head.length > end + 4) client.feed(head.subarray(end + 4));
      ok(client);
    };
    socket.on('data', onData);
    socket.once('close', () => fail(new Error('closed before the 101')));
    socket.write(handshakeText('/', `127.0.0.1:${port}`, key));
  });
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The target saw its connection closed (EOF or reset) within `ms`. */
async function targetGoneWithin(c: TargetConn, ms = 5000): Promise<void> {
  const r = await Promise.race([c.gone, sleep(ms).then(() => 'late')]);
  assert.notEqual(r, 'late', `the target's TCP connection was not closed within ${ms} ms`);
}

/**
 * Lets the cases of one suite run at the same time on one bridge and one
 * target (most of them wait out the bridge's close grace period, 3 s, after it
 * fails a connection, which is idle time). Each case opens its connection
 * while no other case is opening one, so the target's next connection is its
 * own; finds its `tunnel.close` event by its client address (not by order);
 * and, once it and every case running alongside it are done (no connection of
 * theirs open any more), checks that the bridge's descriptors are back to the
 * baseline: a descriptor any of them leaked still shows.
 */
class CasesAtOnce {
  private opening: Promise<unknown> = Promise.resolve();
  private running = 0;
  /** The most cases running at once since the descriptors were last checked. */
  private peak = 0;
  private waiting: ((settled: Promise<void>) => void)[] = [];
  /** Each client's address as the bridge logs it (read while the socket is open). */
  private readonly clients = new WeakMap<RawClient, string>();

  constructor(
    private readonly bridge: () => Bridge,
    private readonly target: () => Target,
  ) {}

  /** Opens a WebSocket and picks up the target connection the bridge opens for it. */
  connect(keepData = true): Promise<{ ws: RawClient; conn: TargetConn }> {
    const turn = this.opening.then(async () => {
      const n = this.target().conns.length;
      const ws = await rawConnect(this.bridge().cli.port, keepData);
      this.clients.set(ws, `127.0.0.1:${ws.socket.localPort}`);
      const conn = await this.target().nth(n);
      return { ws, conn };
    });
    this.opening = turn.catch(() => undefined);
    return turn;
  }

  /** The `tunnel.close` event of this client's connection. */
  closeOf(ws: RawClient): Promise<Record<string, unknown>> {
    const client = this.clients.get(ws)!;
    return waitFor(() => this.bridge().closes().find((e) => e.client === client), 8000, `the tunnel.close event of ${client}`);
  }

  /** Runs a case, then waits for the cases alongside it and checks the descriptors once for all of them. */
  async run(fn: () => Promise<void>): Promise<void> {
    this.peak = Math.max(this.peak, ++this.running);
    try {
      await fn();
    } finally {
      if (--this.running === 0) {
        const settled = this.bridge().fdsSettled(this.peak);
        this.peak = 0;
        settled.catch(() => undefined);
        for (const w of this.waiting.splice(0)) w(settled);
        await settled;
      }
    }
    if (this.running > 0) await new Promise<Promise<void>>((ok) => this.waiting.push(ok)).then((settled) => settled);
  }
}

// ================================================================= the tests

/** 64 MiB from the target to a client that reads at once: every byte, in order, in valid frames; then 1000. */
async function bigStreamIntact(env: NodeJS.ProcessEnv): Promise<void> {
  const TOTAL = 64 * MiB;
  let sent: Promise<string> | undefined;
  const target = await startTarget((c) => (sent = pump(c.socket, TOTAL, 256 * 1024)));
  const b = await startBridge(target, [], env);
  try {
    // The native bridge splices through a pipe (2 fds) it keeps pooled; without splice, or in JavaScript, none.
    const splicing = process.env.PORTHOLE_TUNNEL !== 'js' && env.PORTHOLE_SPLICE !== '0';
    assert.equal(b.warmUpPipes, splicing ? 2 : 0, 'pipes left by the warm-up connection');
    const ws = await rawConnect(b.cli.port, false);
    assert.equal(await ws.closeFrameWithin(30_000), 1000);
    assert.equal(ws.dataBytes, TOTAL);
    assert.equal(ws.hash.digest('hex'), await sent);
    assert.deepEqual(ws.problems, []);
    await ws.endedWithin();
    const ev = await b.nthClose(1);
    assert.equal(ev.bytesOut, TOTAL);
    assert.equal(ev.messagesOut, ws.dataFrames);
    assert.equal(ev.framesOut, ws.dataFrames);
    assert.equal(ev.closedBy, 'upstream');
    await b.fdsSettled();
  } finally {
    await b.stop();
    await target.close();
  }
}

/** A client that reads slowly, then fast: every byte arrives and the bridge's memory stays bounded. */
async function slowClient(env: NodeJS.ProcessEnv): Promise<void> {
  const TOTAL = 64 * MiB;
  let sent: Promise<string> | undefined;
  const target = await startTarget((c) => (sent = pump(c.socket, TOTAL)), false);
  const b = await startBridge(target, [], env);
  try {
    const base = rssOf(b.pid);
    const rss = sampleRss(b.pid);
    const ws = await rawConnect(b.cli.port, false);
    ws.socket.pause();
    // Slow for 1.5 s: one read (at most 64 KiB) every 100 ms.
    for (let i = 0; i < 15; i++) {
      await sleep(100);
      ws.socket.once('data', () => ws.socket.pause());
      ws.socket.resume();
    }
    await sleep(20);
    const slowBytes = ws.dataBytes;
    ws.socket.resume();
    assert.equal(await ws.closeFrameWithin(30_000), 1000);
    const peak = rss.stop();
    assert.ok(slowBytes < TOTAL / 2, `the client read ${slowBytes} bytes while slow`);
    assert.equal(ws.dataBytes, TOTAL);
    assert.equal(ws.hash.digest('hex'), await sent);
    assert.deepEqual(ws.problems, []);
    assert.ok(peak - base < 80 * MiB, `the bridge's RSS grew by ${((peak - base) / MiB).toFixed(1)} MiB`);
    await ws.endedWithin();
    await b.nthClose(1);
    await b.fdsSettled();
  } finally {
    await b.stop();
    await target.close();
  }
}

describe('bridge wire: integrity', () => {
  test('64 MiB from the target reach the client intact, in order, as valid binary frames', () => bigStreamIntact({}));

  test('8 MiB from the client in messages of 1 B to 1 MiB + 3, fragmented and split across TCP writes, reach the target exactly', async () => {
    const target = await startTarget(() => undefined);
    const b = await startBridge(target);
    try {
      const ws = await rawConnect(b.cli.port);
      const conn = await target.nth(0);
      const sizes = [1, 125, 126, 65535, 65536, MiB + 3];
      const sent: Buffer[] = [];
      let messages = 0;
      let total = 0;
      for (let i = 0; total < 8 * MiB; i++) {
        const payload = randomBytes(sizes[i % sizes.length]);
        sent.push(payload);
        total += payload.length;
        messages++;
        // Fragments: every third message in 3 (one of them empty), every fifth in as many as fit up to 7.
        let frames: Buffer[];
        if (i % 3 === 1 && payload.length >= 2) {
          const a = Math.floor(payload.length / 3);
          frames = [
            cf(2, payload.subarray(0, a), { fin: false }),
            cf(0, Buffer.alloc(0), { fin: false }),
            cf(0, payload.subarray(a, payload.length - 1), { fin: false }),
            cf(0, payload.subarray(payload.length - 1)),
          ];
        } else if (i % 5 === 2 && payload.length >= 7) {
          const step = Math.ceil(payload.length / 7);
          frames = [];
          for (let off = 0; off < payload.length; off += step) {
            const last = off + step >= payload.length;
            frames.push(cf(off === 0 ? 2 : 0, payload.subarray(off, off + step), { fin: last }));
          }
        } else frames = [cf(2, payload)];
        for (const [j, f] of frames.entries()) {
          const h = headLen(f);
          switch ((i + j) % 4) {
            case 0:
              // Inside the 2-byte head, inside the extended length, inside the mask key, just after the header.
              await ws.sendCut(f, [1, 2, 3, h - 3, h - 1, h + 1]);
              break;
            case 1:
              // The whole header byte by byte.
              await ws.sendCut(f, Array.from({ length: h }, (_, k) => k + 1));
              break;
            default:
              await ws.sendBig(f);
          }
        }
      }
      await waitFor(() => conn.bytes >= total, 20_000, `${total} bytes at the target (${conn.bytes} so far)`);
      await sleep(50);
      const got = Buffer.concat(conn.chunks);
      assert.equal(got.length, total);
      assert.ok(got.equals(Buffer.concat(sent)), 'the target received the payloads in order, unchanged');
      // Close, and check the counts.
      await ws.send(cf(8, closeBody(1000)));
      assert.equal(await ws.closeFrameWithin(), 1000);
      await ws.endedWithin();
      const ev = await b.nthClose(1);
      assert.equal(ev.bytesIn, total);
      assert.equal(ev.messagesIn, messages, 'a fragmented message counts once');
      assert.equal(ev.framesIn, messages);
      assert.deepEqual(ws.problems, []);
      await b.fdsSettled();
    } finally {
      await b.stop();
      await target.close();
    }
  });

  test('every frame to the client is one unmasked, unfragmented binary frame with a minimal length, and together they are the TCP bytes', async () => {
    const chunks = [1, 2, 125, 126, 127, 65535, 65536, 65537, 300_000, MiB, 3 * MiB + 5].map((n) => randomBytes(n));
    const target = await startTarget(async (c) => {
      for (const ch of chunks) {
        c.socket.write(ch);
        await sleep(5);
      }
      c.socket.end();
    });
    const b = await startBridge(target);
    try {
      const ws = await rawConnect(b.cli.port);
      assert.equal(await ws.closeFrameWithin(10_000), 1000);
      const data = ws.frames.filter((f) => f.opcode < 8);
      assert.ok(data.length > 0);
      for (const f of data) {
        assert.equal(f.fin, true);
        assert.equal(f.rsv, 0);
        assert.equal(f.opcode, 2);
        assert.equal(f.masked, false);
      }
      assert.ok(Buffer.concat(data.map((f) => f.payload)).equals(Buffer.concat(chunks)));
      assert.deepEqual(ws.problems, []);
      await ws.endedWithin();
      await b.nthClose(1);
      await b.fdsSettled();
    } finally {
      await b.stop();
      await target.close();
    }
  });
});

describe('bridge wire: control frames', () => {
  let target: Target;
  let b: Bridge;
  before(async () => {
    target = await startTarget();
    b = await startBridge(target);
  });
  after(async () => {
    await b.stop();
    await target.close();
  });

  test('a ping with a payload gets a pong with the same payload', async () => {
    const ws = await rawConnect(b.cli.port);
    const payload = Buffer.from('hello');
    await ws.sendCut(cf(9, payload), [1, 3, 5]);
    await ws.until(() => ws.frames.some((f) => f.opcode === 10), 3000, 'a pong');
    const pongs = ws.frames.filter((f) => f.opcode === 10);
    assert.equal(pongs.length, 1);
    assert.ok(pongs[0].payload.equals(payload));
    // An empty ping too.
    await ws.send(cf(9));
    await ws.until(() => ws.frames.filter((f) => f.opcode === 10).length === 2, 3000, 'a second pong');
    assert.equal(ws.frames.filter((f) => f.opcode === 10)[1].length, 0);
    await ws.send(cf(8, closeBody(1000)));
    await ws.closeFrameWithin();
    await ws.endedWithin();
    assert.deepEqual(ws.problems, []);
    await b.fdsSettled();
  });

  test('a ping between the fragments of a message is answered, and the message reaches the target intact', async () => {
    const before = target.conns.length;
    const ws = await rawConnect(b.cli.port);
    const conn = await target.nth(before);
    const payload = randomBytes(70_000);
    const ping = Buffer.from([1, 2, 3, 4, 5]);
    await ws.send(cf(2, payload.subarray(0, 1000), { fin: false }));
    await ws.sendCut(cf(9, ping), [1, 2, 4]);
    await ws.until(() => ws.frames.some((f) => f.opcode === 10), 3000, 'a pong mid-message');
    assert.ok(ws.frames.find((f) => f.opcode === 10)!.payload.equals(ping));
    await ws.send(cf(0, payload.subarray(1000, 50_000), { fin: false }));
    await ws.send(Buffer.concat([cf(9, Buffer.from('x')), cf(0, payload.subarray(50_000))]));
    // Echoed back by the target: the message is one chunk or more, in order.
    await waitFor(() => conn.bytes >= payload.length, 5000, 'the message at the target');
    assert.ok(Buffer.concat(conn.chunks).equals(payload));
    await ws.until(() => ws.dataBytes >= payload.length, 5000, 'the echo');
    assert.equal(ws.frames.filter((f) => f.opcode === 10).length, 2);
    await ws.send(cf(8, closeBody(1000)));
    await ws.closeFrameWithin();
    await ws.endedWithin();
    assert.deepEqual(ws.problems, []);
    await b.fdsSettled();
  });

  test('an unsolicited pong from the client is ignored', async () => {
    const before = target.conns.length;
    const ws = await rawConnect(b.cli.port);
    const conn = await target.nth(before);
    await ws.send(cf(10, Buffer.from('unasked')));
    await ws.send(cf(10));
    await ws.send(cf(2, Buffer.from('after')));
    await waitFor(() => conn.bytes >= 5, 3000, 'data after the pongs');
    assert.equal(Buffer.concat(conn.chunks).toString(), 'after');
    await ws.until(() => ws.dataBytes >= 5, 3000, 'the echo');
    await sleep(100);
    assert.equal(ws.closeFrame(), undefined, 'no close after an unsolicited pong');
    assert.deepEqual(
      ws.frames.map((f) => f.opcode),
      [2],
    );
    await ws.send(cf(8, closeBody(1000)));
    await ws.closeFrameWithin();
    await ws.endedWithin();
    await b.fdsSettled();
  });
});

// Each test has its own bridge and target: four at a time.
describe('bridge wire: closing', { concurrency: 4 }, () => {
  test('a client close 1000 "bye" is answered with 1000, the target sees EOF, and the event has the counts', async () => {
    const target = await startTarget((c) => {
      c.socket.write('RFB 003.008\n');
      c.socket.on('data', (d: Buffer) => c.socket.write(d));
    });
    const b = await startBridge(target);
    try {
      const ws = await rawConnect(b.cli.port);
      const conn = await target.nth(0);
      await ws.until(() => ws.dataBytes >= 12, 3000, 'the banner');
      const msgs = [Buffer.from('RFB 003.008\n'), randomBytes(300), randomBytes(70_000)];
      for (const m of msgs) await ws.send(cf(2, m));
      const inBytes = msgs.reduce((n, m) => n + m.length, 0);
      // The target echoes: wait for all of it back, so the counts are final.
      await ws.until(() => ws.dataBytes >= 12 + inBytes, 5000, 'the echo');
      ws.replyClose = false;
      ws.sentClose = true;
      await ws.sendCut(cf(8, closeBody(1000, 'bye')), [1, 4]);
      assert.equal(await ws.closeFrameWithin(), 1000);
      assert.equal(await conn.gone, 'eof', 'the target sees EOF');
      await ws.endedWithin();
      const ev = await b.nthClose(1);
      assert.equal(ev.kind, 'bridge');
      assert.equal(ev.closedBy, 'client');
      assert.equal(ev.closeCode, 1000);
      assert.equal(ev.reason, 'bye');
      assert.equal(ev.bytesIn, inBytes);
      assert.equal(ev.messagesIn, msgs.length);
      assert.equal(ev.framesIn, msgs.length);
      assert.equal(ev.bytesOut, ws.dataBytes);
      assert.equal(ev.messagesOut, ws.dataFrames);
      assert.equal(ev.framesOut, ws.dataFrames);
      assert.deepEqual(ws.problems, []);
      await b.fdsSettled();
    } finally {
      await b.stop();
      await target.close();
    }
  });

  test('a client close frame without a payload is answered, and logged as 1005', async () => {
    const target = await startTarget();
    const b = await startBridge(target);
    try {
      const ws = await rawConnect(b.cli.port);
      const conn = await target.nth(0);
      ws.sentClose = true;
      await ws.send(cf(8));
      const code = await ws.closeFrameWithin();
      assert.ok(code === 1005 || code === 1000, `the answer to an empty close is empty (or 1000), got ${code}`);
      await targetGoneWithin(conn);
      await ws.endedWithin();
      const ev = await b.nthClose(1);
      assert.equal(ev.closedBy, 'client');
      assert.equal(ev.closeCode, 1005);
      await b.fdsSettled();
    } finally {
      await b.stop();
      await target.close();
    }
  });

  test('a close code the client chose (1001, 1011, 3000, 4999) is answered with the same code', async () => {
    const target = await startTarget();
    const b = await startBridge(target);
    try {
      const codes = [1001, 1011, 3000, 4999];
      for (const [i, code] of codes.entries()) {
        const ws = await rawConnect(b.cli.port);
        const conn = await target.nth(i);
        ws.sentClose = true;
        await ws.send(cf(8, closeBody(code, 'why')));
        assert.equal(await ws.closeFrameWithin(), code);
        assert.equal(await conn.gone, 'eof');
        await ws.endedWithin();
        const ev = await b.nthClose(i + 1);
        assert.equal(ev.closedBy, 'client');
        assert.equal(ev.closeCode, code);
        assert.equal(ev.reason, 'why');
      }
      await b.fdsSettled();
    } finally {
      await b.stop();
      await target.close();
    }
  });

  for (const how of ['ends (FIN)', 'resets'] as const) {
    test(`the client's TCP connection ${how} without a close frame: the target sees EOF, the event has no close code`, async () => {
      const target = await startTarget();
      const b = await startBridge(target);
      try {
        const ws = await rawConnect(b.cli.port);
        const conn = await target.nth(0);
        await ws.send(cf(2, Buffer.from('ab')));
        await ws.until(() => ws.dataBytes === 2, 3000, 'the echo');
        if (how === 'resets') ws.socket.resetAndDestroy();
        else ws.socket.end();
        await targetGoneWithin(conn);
        assert.equal(conn.gotEof, true, 'the target sees EOF (not a reset)');
        const ev = await b.nthClose(1);
        assert.equal(ev.closedBy, 'client');
        assert.equal(ev.closeCode, null);
        assert.equal(ev.bytesIn, 2);
        assert.equal(ev.bytesOut, 2);
        assert.equal(ws.closeFrame(), undefined);
        await b.fdsSettled();
      } finally {
        await b.stop();
        await target.close();
      }
    });
  }

  test('the target closing after N bytes: the client gets all N, then close 1000 naming the target', async () => {
    const N = 5 * MiB + 17;
    const data = randomBytes(N);
    const target = await startTarget(async (c) => {
      for (let off = 0; off < N; off += 777_777) c.socket.write(data.subarray(off, off + 777_777));
      c.socket.end();
    });
    const b = await startBridge(target);
    try {
      const ws = await rawConnect(b.cli.port, false);
      assert.equal(await ws.closeFrameWithin(10_000), 1000);
      assert.equal(ws.dataBytes, N);
      assert.equal(ws.hash.digest('hex'), sha(data));
      assert.match(ws.closeReason(), /closed/);
      assert.deepEqual(ws.problems, []);
      await ws.endedWithin();
      const ev = await b.nthClose(1);
      assert.equal(ev.closedBy, 'upstream');
      assert.equal(ev.closeCode, 1000);
      assert.equal(ev.bytesOut, N);
      await b.fdsSettled();
    } finally {
      await b.stop();
      await target.close();
    }
  });

  test('the target resetting the connection: close 1014', async () => {
    const target = await startTarget(async (c) => {
      c.socket.write('some bytes');
      await sleep(100);
      c.socket.resetAndDestroy();
    });
    const b = await startBridge(target);
    try {
      const ws = await rawConnect(b.cli.port);
      assert.equal(await ws.closeFrameWithin(), 1014);
      assert.deepEqual(ws.problems, []);
      await ws.endedWithin();
      const ev = await b.nthClose(1);
      assert.equal(ev.closedBy, 'upstream');
      assert.equal(ev.closeCode, 1014);
      await b.fdsSettled();
    } finally {
      await b.stop();
      await target.close();
    }
  });
});

describe('bridge wire: protocol errors', { concurrency: CASES_AT_ONCE }, () => {
  let target: Target;
  let b: Bridge;
  const cases = new CasesAtOnce(() => b, () => target);
  before(async () => {
    target = await startTarget();
    b = await startBridge(target);
  });
  after(async () => {
    await b.stop();
    await target.close();
  });

  /**
   * Sends `bytes` (cut at `cuts`) after a valid message, and expects a close
   * with one of `codes`, the client's and the target's connections closed.
   * `streamed`: payload bytes before the error that an engine may already
   * have written to TCP (one that streams fragments rather than holding a
   * whole message).
   */
  function refused(bytes: Buffer, codes: number[], cuts: number[] = [], streamed = ''): Promise<void> {
    return cases.run(async () => {
      const { ws, conn } = await cases.connect();
      await ws.send(cf(2, Buffer.from('ok')));
      await waitFor(() => conn.bytes === 2, 3000, 'the first message at the target');
      await ws.until(() => ws.dataBytes === 2, 3000, 'the echo');
      await ws.sendCut(bytes, cuts);
      const code = await ws.closeFrameWithin();
      assert.ok(codes.includes(code), `close ${code}, expected ${codes.join(' or ')} (reason: ${ws.closeReason()})`);
      await ws.endedWithin();
      await targetGoneWithin(conn);
      const got = Buffer.concat(conn.chunks).toString('latin1');
      assert.ok(got === 'ok' || got === `ok${streamed}`, `nothing of the bad frame reached the target (it got ${JSON.stringify(got)})`);
      const ev = await cases.closeOf(ws);
      assert.equal(ev.closedBy, 'gateway');
      assert.equal(ev.closeCode, code, 'the event logs the code the client was sent');
      assert.deepEqual(ws.problems, []);
    });
  }

  test('an unmasked frame: 1002', () => refused(cf(2, Buffer.from('abc'), { mask: false }), [1002]));
  test('RSV1 set: 1002', () => refused(cf(2, Buffer.from('abc'), { rsv: 4 }), [1002]));
  test('RSV2 and RSV3 set: 1002', () => refused(cf(2, Buffer.from('abc'), { rsv: 3 }), [1002]));
  test('reserved opcode 3: 1002', () => refused(cf(3, Buffer.from('abc')), [1002]));
  test('reserved control opcode 0xB: 1002', () => refused(cf(0xb), [1002]));
  test('a continuation frame first: 1002', () => refused(cf(0, Buffer.from('abc')), [1002]));
  test('a new data frame inside a fragmented message: 1002', () =>
    refused(Buffer.concat([cf(2, Buffer.from('abc'), { fin: false }), cf(2, Buffer.from('def'))]), [1002], [], 'abc'));
  test('a control frame with a 126-byte payload: 1002', () => refused(cf(9, Buffer.alloc(126, 0x61)), [1002]));
  test('a fragmented ping: 1002', () => refused(cf(9, Buffer.from('abc'), { fin: false }), [1002]));
  test('a close payload of 1 byte: 1002', () => refused(cf(8, Buffer.from([3])), [1002]));
  for (const code of [999, 1004, 1005, 1006, 1015, 2999, 5000]) {
    test(`close code ${code} in a close frame: 1002`, () => refused(cf(8, closeBody(code, 'x')), [1002], [1, 3]));
  }
  test('a close reason that is not UTF-8: 1007', () => refused(cf(8, Buffer.concat([closeBody(1000), Buffer.from([0x61, 0xc3, 0x28])])), [1007]));
  test('a message of exactly 16 MiB, in two fragments, passes', () =>
    cases.run(async () => {
      const { ws, conn } = await cases.connect(false);
      const msg = randomBytes(MAX_MESSAGE);
      await ws.sendBig(cf(2, msg.subarray(0, 5 * MiB), { fin: false }));
      await ws.sendBig(cf(0, msg.subarray(5 * MiB)));
      await waitFor(() => conn.bytes >= MAX_MESSAGE, 10_000, 'the 16 MiB at the target');
      assert.equal(conn.bytes, MAX_MESSAGE);
      assert.equal(sha(Buffer.concat(conn.chunks)), sha(msg));
      conn.chunks.length = 0;
      await ws.until(() => ws.dataBytes >= MAX_MESSAGE, 10_000, 'the echo');
      await ws.send(cf(8, closeBody(1000)));
      assert.equal(await ws.closeFrameWithin(), 1000);
      await ws.endedWithin();
      assert.equal((await cases.closeOf(ws)).closedBy, 'client');
    }));
  test('a frame declaring 16 MiB + 1 bytes: 1009 (before its payload arrives)', () => refused(cf(2, Buffer.alloc(0), { length: MAX_MESSAGE + 1 }), [1009], [2, 5]));
  // Both engines answer as `ws` does (the JavaScript bridge is `ws`): a length over 2^53 - 1 is 1009.
  test('a 64-bit length with the top bit set: 1009, as any length over 2^53 - 1', () => refused(cf(2, Buffer.alloc(0), { length: 1n << 63n }), [1009], [3, 9]));
  test('a 64-bit length of 2^53: 1009', () => refused(cf(2, Buffer.alloc(0), { length: 1n << 53n }), [1009], [4]));
  test('a ping whose 5 bytes are declared in the 16-bit length form: 1002 (a control frame uses the 7-bit form)', () =>
    refused(Buffer.from([0x89, 0x80 | 126, 0, 5, 1, 2, 3, 4, 0x61, 0x62, 0x63, 0x64, 0x65]), [1002]));
  test('the first two bytes of a fragmented ping, and nothing after them: 1002 at once', () => refused(Buffer.from([0x09, 0x83]), [1002]));
  test('the first two bytes of a continuation with nothing to continue: 1002 at once', () => refused(Buffer.from([0x80, 0xfe]), [1002]));
  test('the first two bytes of a close frame declaring 1 byte: 1002 at once', () => refused(Buffer.from([0x88, 0x81]), [1002]));
  test('the first two bytes of a new message inside a fragmented one: 1002 at once', () =>
    refused(Buffer.concat([cf(2, Buffer.from('a'), { fin: false }), Buffer.from([0x82, 0x80])]), [1002], [], 'a'));
  test('a 64-bit length over 16 MiB, before its mask key: 1009 at once', () => refused(Buffer.from([0x82, 0xff, 0, 0, 0, 0, 1, 0, 0, 1]), [1009]));
  test('a fragment whose length would wrap the 64-bit count of its message to 1 byte: 1009', () =>
    refused(Buffer.concat([cf(2, Buffer.from('A'), { fin: false }), cf(0, Buffer.alloc(0), { length: 2n ** 64n - 1n })]), [1009], [], 'A'));
  test('a message in 16,385 fragments: 1008, as `ws` limits a message to 16,384', () => {
    const frames = [cf(2, Buffer.alloc(0), { fin: false }), ...Array.from({ length: 16383 }, () => cf(0, Buffer.alloc(0), { fin: false })), cf(0, Buffer.alloc(0))];
    return refused(Buffer.concat(frames), [1008]);
  });
  test('a text message without --text-as-binary: 1003', () => refused(cf(1, Buffer.from('hello')), [1003]));
});

describe('bridge wire: text as binary', { concurrency: CASES_AT_ONCE }, () => {
  let target: Target;
  let b: Bridge;
  const cases = new CasesAtOnce(() => b, () => target);
  before(async () => {
    target = await startTarget();
    b = await startBridge(target, ['--text-as-binary']);
  });
  after(async () => {
    await b.stop();
    await target.close();
  });

  test("a text message's UTF-8 bytes reach the target, a character split across fragments and TCP writes too", () =>
    cases.run(async () => {
      const { ws, conn } = await cases.connect();
      const text = Buffer.from('héllo wörld 😀 ✓', 'utf8');
      await ws.send(cf(1, text));
      // '😀' (4 bytes) split after its second byte, between two fragments, each fragment's header cut too.
      const emoji = Buffer.from('a😀b€', 'utf8');
      const f1 = cf(1, emoji.subarray(0, 3), { fin: false });
      const f2 = cf(0, emoji.subarray(3, 7), { fin: false });
      const f3 = cf(0, emoji.subarray(7));
      await ws.sendCut(Buffer.concat([f1, f2]), [1, 4, f1.length + 1, f1.length + 5]);
      await ws.sendCut(f3, [1, 2, 6]);
      const all = Buffer.concat([text, emoji]);
      await waitFor(() => conn.bytes >= all.length, 3000, 'the text at the target');
      assert.ok(Buffer.concat(conn.chunks).equals(all));
      await ws.send(cf(8, closeBody(1000)));
      assert.equal(await ws.closeFrameWithin(), 1000);
      await ws.endedWithin();
      const ev = await cases.closeOf(ws);
      assert.equal(ev.closedBy, 'client');
      assert.equal(ev.messagesIn, 2);
      assert.equal(ev.bytesIn, all.length);
    }));

  // [name, message, how many leading bytes are valid (an engine that streams fragments may have passed them on)]
  const invalid: [string, Buffer, number][] = [
    ['0xC3 0x28 (a lead byte without its continuation)', Buffer.from([0x61, 0xc3, 0x28]), 1],
    ['an overlong 0xC0 0x80', Buffer.from([0xc0, 0x80]), 0],
    ['a surrogate 0xED 0xA0 0x80', Buffer.from([0xed, 0xa0, 0x80]), 0],
    ['0xF4 0x90 0x80 0x80 (above U+10FFFF)', Buffer.from([0xf4, 0x90, 0x80, 0x80]), 0],
    ['a character cut at the end of the message', Buffer.from([0x61, 0xf0, 0x9f, 0x98]), 1],
  ];
  for (const [name, bytes, valid] of invalid) {
    test(`invalid UTF-8 in a text message, ${name}: 1007`, () =>
      cases.run(async () => {
        const { ws, conn } = await cases.connect();
        // Split in two fragments, the second one's header cut across writes.
        const f1 = cf(1, bytes.subarray(0, 1), { fin: false });
        const f2 = cf(0, bytes.subarray(1));
        await ws.sendCut(Buffer.concat([f1, f2]), [f1.length, f1.length + 1, f1.length + 3]);
        assert.equal(await ws.closeFrameWithin(), 1007, ws.closeReason());
        await ws.endedWithin();
        await targetGoneWithin(conn);
        const got = Buffer.concat(conn.chunks);
        assert.ok(got.length <= valid && got.equals(bytes.subarray(0, got.length)), `no invalid byte reaches the target (it got ${got.toString('hex')})`);
        const ev = await cases.closeOf(ws);
        assert.equal(ev.closedBy, 'gateway');
        assert.equal(ev.closeCode, 1007);
      }));
  }
});

describe('bridge wire: backpressure', () => {
  test('a slow client: 64 MiB from the target all arrive, and the bridge does not buffer them', () => slowClient({}));

  test('a slow target: the bridge stops reading the client, then all 64 MiB arrive once the target reads', async () => {
    const TOTAL = 64 * MiB;
    let resumedAt = 0;
    const target = await startTarget((c) => {
      c.socket.pause();
      setTimeout(() => {
        resumedAt = performance.now();
        c.socket.resume();
      }, 2000);
    }, false);
    const b = await startBridge(target);
    try {
      const base = rssOf(b.pid);
      const rss = sampleRss(b.pid);
      const ws = await rawConnect(b.cli.port, false);
      const conn = await target.nth(0);
      const hash = createHash('sha256');
      let sentAtResume = -1;
      let sent = 0;
      const key = randomBytes(4);
      for (let n = 0; sent < TOTAL; n++) {
        const block = patternBlock(n, 512 * 1024);
        hash.update(block);
        await ws.sendBig(cf(2, block, { key }));
        sent += block.length;
        if (resumedAt && sentAtResume < 0) sentAtResume = sent;
      }
      await waitFor(() => conn.bytes >= TOTAL, 30_000, `${TOTAL} bytes at the target (${conn.bytes} so far)`);
      const peak = rss.stop();
      assert.ok(sentAtResume >= 0 && sentAtResume < TOTAL / 2, `the client had sent ${sentAtResume} bytes when the target started reading`);
      assert.equal(conn.bytes, TOTAL);
      assert.equal(conn.hash.digest('hex'), hash.digest('hex'));
      assert.ok(peak - base < 80 * MiB, `the bridge's RSS grew by ${((peak - base) / MiB).toFixed(1)} MiB`);
      await ws.send(cf(8, closeBody(1000)));
      assert.equal(await ws.closeFrameWithin(), 1000);
      await ws.endedWithin();
      const ev = await b.nthClose(1);
      assert.equal(ev.bytesIn, TOTAL);
      await b.fdsSettled();
    } finally {
      await b.stop();
      await target.close();
    }
  });
});

// Each test has its own bridge and target, and waits out a timer: all three at once.
describe('bridge wire: timers and shutdown', { concurrency: 3 }, () => {
  test('--idle-timeout: a quiet connection is closed with 1001 by the gateway', async () => {
    const target = await startTarget();
    const b = await startBridge(target, ['--idle-timeout', '1']);
    try {
      const ws = await rawConnect(b.cli.port);
      const conn = await target.nth(0);
      const started = performance.now();
      assert.equal(await ws.closeFrameWithin(4000), 1001);
      const ms = performance.now() - started;
      assert.ok(ms >= 900, `closed after ${ms.toFixed(0)} ms of quiet`);
      await ws.endedWithin();
      await targetGoneWithin(conn);
      const ev = await b.nthClose(1);
      assert.equal(ev.closedBy, 'gateway');
      assert.equal(ev.closeCode, 1001);
      await b.fdsSettled();
    } finally {
      await b.stop();
      await target.close();
    }
  });

  test('--heartbeat: the client receives pings, and answering them keeps the connection', async () => {
    const target = await startTarget();
    const b = await startBridge(target, ['--heartbeat', '0.2']);
    try {
      const ws = await rawConnect(b.cli.port);
      await ws.until(() => ws.frames.filter((f) => f.opcode === 9).length >= 3, 3000, 'three pings');
      assert.equal(ws.closeFrame(), undefined);
      await ws.send(cf(2, Buffer.from('still here')));
      await ws.until(() => ws.dataBytes === 10, 3000, 'the echo');
      await ws.send(cf(8, closeBody(1000)));
      assert.equal(await ws.closeFrameWithin(), 1000);
      await ws.endedWithin();
      assert.deepEqual(ws.problems, []);
      await b.nthClose(1);
      await b.fdsSettled();
    } finally {
      await b.stop();
      await target.close();
    }
  });

  test('SIGTERM: an open connection gets close 1001 before the process exits 0', async () => {
    const target = await startTarget();
    const b = await startBridge(target);
    try {
      const ws = await rawConnect(b.cli.port);
      const conn = await target.nth(0);
      await ws.send(cf(2, Buffer.from('hi')));
      await ws.until(() => ws.dataBytes === 2, 3000, 'the echo');
      let closeAt = 0;
      void ws.until(() => !!ws.closeFrame(), 10_000, 'close').then(() => (closeAt = performance.now()));
      b.cli.child.kill('SIGTERM');
      const code = await b.cli.exited;
      const exitAt = performance.now();
      assert.equal(code, 0);
      assert.equal(ws.closeCode(), 1001);
      assert.ok(closeAt > 0 && closeAt <= exitAt, 'the close frame came before the exit');
      await ws.endedWithin();
      await targetGoneWithin(conn);
      assert.deepEqual(ws.problems, []);
    } finally {
      await b.cli.stop();
      await target.close();
    }
  });
});

test('the tunnel.close event names the engine in force (native unless PORTHOLE_TUNNEL=js)', async () => {
  const target = await startTarget();
  const b = await startBridge(target);
  try {
    const ws = await rawConnect(b.cli.port);
    await ws.send(cf(8, closeBody(1000)));
    await ws.closeFrameWithin();
    await ws.endedWithin();
    const ev = await b.nthClose(1);
    assert.equal(ev.engine, process.env.PORTHOLE_TUNNEL === 'js' ? 'js' : 'native');
  } finally {
    await b.stop();
    await target.close();
  }
});

// The native bridge reads TCP into its buffer instead of splicing through a pipe when splice is
// turned off or refused: the same bytes, frames and bounds. (The JavaScript bridge ignores it.)
describe('bridge wire: without splice (PORTHOLE_SPLICE=0)', () => {
  test('64 MiB from the target reach the client intact, in order, as valid binary frames', () => bigStreamIntact({ PORTHOLE_SPLICE: '0' }));
  test('a slow client: 64 MiB from the target all arrive, and the bridge does not buffer them', () => slowClient({ PORTHOLE_SPLICE: '0' }));
});
