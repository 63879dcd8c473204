/**
 * One case's connection after the handshake: sends frames the way the case
 * says (whole, in chops of N bytes, frame by frame with pauses), reads the
 * server's frames into events, answers the server's close and pings, and
 * records every frame both ways for the report.
 */
import type net from 'node:net';
import { encodeFrame, closePayload, payloadOf, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, type FrameSpec } from './frame-writer.js';
import { FrameReader, MAX_FRAME_BYTES, type ReadFrame } from './frame-reader.js';
import { wireOfFrame, WireLog } from './wire-log.js';
import type { CaseEvent } from './case-types.js';
import type { PerMessageDeflate } from './deflate.js';

export interface SendOptions {
  /** Write the bytes in pieces of this size (Autobahn's chopsize), each its own write. */
  chop?: number;
  /** Each frame in its own write, with a short pause after it (Autobahn's sync). */
  sync?: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A server flooding frames (pings, tiny messages) is cut off here: the tool's memory bound. Family 9 needs 1000. */
export const MAX_EVENTS = 10_000;

export function isValidUtf8(b: Buffer): boolean {
  try {
    utf8.decode(b);
    return true;
  } catch {
    return false;
  }
}

export class CaseContext {
  readonly received: CaseEvent[] = [];
  readonly wire: WireLog;
  /** This client sent a close frame before the server did. */
  closedByMe = false;
  sentClose = false;
  /** The server's close frame: code undefined when it had no payload. */
  remoteClose?: { code?: number; reason: string };
  /** The TCP connection is gone (either side). */
  tcpClosed = false;
  /** This client had to end TCP (the server did not). */
  droppedByMe = false;
  /** Something the server sent that RFC 6455 forbids; the connection was failed by this client. */
  violation?: string;
  /** How long the end of the case waited for the server's close (for the reason). */
  waitedForCloseMs = 0;
  /** A frame is half written (6.4.3/6.4.4): a close frame now would land inside it, so none is sent. */
  midFrame = false;
  /** permessage-deflate as negotiated (families 12 and 13); undefined: no extension. */
  deflate?: PerMessageDeflate;
  /** The message being received is compressed (RSV1 on its first frame). */
  private compressed = false;
  private readonly reader = new FrameReader();
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;
  private fragmentBytes = 0;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly socket: net.Socket,
    leftover: Buffer,
    readonly started: number,
    bulky = false,
  ) {
    this.wire = new WireLog(started, bulky);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('end', () => {
      // The server sent FIN: it closed TCP first. Finish our side.
      this.wire.add({ dir: 'received', kind: 'tcp-close', text: 'the server closed the TCP connection' });
      socket.end();
    });
    socket.on('error', () => {
      /* ECONNRESET/EPIPE: the close event below records it */
    });
    socket.on('close', () => {
      if (!this.droppedByMe && !this.wire.hasTcpClose()) this.wire.add({ dir: 'received', kind: 'tcp-close', text: 'the connection was reset' });
      this.tcpClosed = true;
      this.wake();
    });
    if (leftover.length > 0) this.onData(leftover);
  }

  /** True while neither a close frame nor the end of TCP came from the server. */
  get open(): boolean {
    return !this.remoteClose && !this.tcpClosed && !this.violation;
  }

  note(text: string): void {
    this.wire.add({ dir: 'note', kind: 'note', text });
  }

  /** Sends frames back to back (one write unless chopped or sync). Resolves when written; false if the socket is gone. */
  async send(frames: FrameSpec | FrameSpec[], opts: SendOptions = {}): Promise<boolean> {
    const list = Array.isArray(frames) ? frames : [frames];
    const encoded = list.map((f) => encodeFrame(f));
    list.forEach((f) => this.wire.add(wireOfFrame('sent', f.opcode, f.fin ?? true, f.rsv ?? 0, true, payloadOf(f))));
    if (opts.chop) this.note(`written in chops of ${opts.chop} byte${opts.chop === 1 ? '' : 's'}`);
    if (opts.sync) {
      for (const bytes of encoded) {
        if (!(await this.write(bytes, opts.chop))) return false;
        await sleep(20);
      }
      return true;
    }
    return this.write(Buffer.concat(encoded), opts.chop);
  }

  /**
   * One message through permessage-deflate: compressed whole, RSV1 on the
   * first frame, the compressed bytes cut into frames of `fragment` bytes
   * (0: one frame), as Autobahn's autoFragmentSize does.
   */
  async sendCompressed(opcode: number, payload: Buffer, fragment = 0): Promise<boolean> {
    if (!this.deflate) throw new Error('no permessage-deflate was negotiated');
    const data = this.deflate.compress(payload);
    this.note(`${payload.length} bytes compressed to ${data.length}`);
    if (fragment <= 0 || data.length <= fragment) return this.send({ opcode, rsv: 4, payload: data });
    const frames: FrameSpec[] = [];
    for (let at = 0; at < data.length; at += fragment) {
      frames.push({ opcode: at === 0 ? opcode : OP_CONTINUATION, rsv: at === 0 ? 4 : 0, fin: at + fragment >= data.length, payload: data.subarray(at, at + fragment) });
    }
    return this.send(frames);
  }

  /** Records a frame that is written by `sendBytes` in parts. */
  logSent(f: FrameSpec, what: string): void {
    this.wire.add(wireOfFrame('sent', f.opcode, f.fin ?? true, f.rsv ?? 0, true, payloadOf(f)));
    this.note(what);
  }

  /** Writes raw bytes that are not a whole frame (a frame cut in parts across waits). */
  async sendBytes(bytes: Buffer, what: string, frameComplete = false): Promise<boolean> {
    this.midFrame = !frameComplete;
    this.wire.add({ dir: 'sent', kind: 'bytes', length: bytes.length, text: what });
    return this.write(bytes);
  }

  /** A close frame (any code, any reason bytes): this client closes first unless the server already did. */
  async sendClose(code?: number, reason: Buffer | string = '', rsv = 0): Promise<boolean> {
    if (!this.remoteClose) this.closedByMe = true;
    this.sentClose = true;
    return this.send({ opcode: OP_CLOSE, payload: closePayload(code, reason), rsv });
  }

  /** Resolves once `done()` holds, the connection ends, or `ms` pass. Returns `done()`. */
  async waitFor(done: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!done() && !this.tcpClosed) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
    return done();
  }

  /** Waits `ms` unless the server closes or fails first; true if the connection is still open after. */
  async pause(ms: number): Promise<boolean> {
    await this.waitFor(() => !this.open, ms);
    return this.open;
  }

  /** Ends TCP from this side (after a timeout). */
  drop(why: string): void {
    if (this.tcpClosed) return;
    this.droppedByMe = true;
    this.wire.add({ dir: 'sent', kind: 'tcp-close', text: why });
    this.socket.destroy();
  }

  private async write(bytes: Buffer, chop?: number): Promise<boolean> {
    if (this.tcpClosed || this.socket.destroyed || this.socket.writableEnded) return false;
    if (!chop || chop >= bytes.length) return this.writeOne(bytes);
    // Small writes of a few bytes would be coalesced by the kernel if written in
    // one go; a pause between them makes each chop its own TCP segment, as the
    // cases intend. Many chops (family 9) are written back to back instead.
    const pieces = Math.ceil(bytes.length / chop);
    for (let at = 0; at < bytes.length; at += chop) {
      if (!(await this.writeOne(bytes.subarray(at, at + chop)))) return false;
      if (pieces <= 300) await sleep(1);
    }
    return true;
  }

  private writeOne(bytes: Buffer): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.tcpClosed || this.socket.destroyed || this.socket.writableEnded) return resolve(false);
      const flushed = this.socket.write(bytes, (err) => {
        if (err) resolve(false);
        else if (flushed) resolve(true);
      });
      if (!flushed) this.socket.once('drain', () => resolve(true));
      // A socket that dies while we wait for drain resolves via the callback's error.
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private onData(data: Buffer): void {
    let frames: ReadFrame[];
    try {
      frames = this.reader.push(data);
    } catch (err) {
      this.fail(1009, (err as Error).message);
      return;
    }
    for (const f of frames) {
      this.wire.add(wireOfFrame('received', f.opcode, f.fin, f.rsv, f.masked, f.payload));
      this.onFrame(f);
      if (this.violation) break;
    }
    this.wake();
  }

  private onFrame(f: ReadFrame): void {
    if (this.received.length >= MAX_EVENTS) return this.fail(1008, `the server sent more than ${MAX_EVENTS} messages and control frames in one case`);
    if (this.remoteClose) return this.fail(1002, `the server sent a frame (opcode ${f.opcode}) after its close frame`);
    if (f.masked) return this.fail(1002, 'the server sent a masked frame (RFC 6455 §5.1: a server must not mask)');
    const control = f.opcode >= 8;
    // RSV1 marks a compressed message, on its first frame only (RFC 7692 §6); every other bit, and RSV1 elsewhere, is a violation.
    const compressedStart = f.rsv === 4 && this.deflate !== undefined && (f.opcode === OP_TEXT || f.opcode === OP_BINARY);
    if (f.rsv !== 0 && !compressedStart) {
      return this.fail(1002, this.deflate ? `the server sent reserved bits ${f.rsv} on a frame of opcode ${f.opcode} (RSV1 belongs on the first frame of a compressed message only)` : `the server sent a frame with reserved bits ${f.rsv} and no extension negotiated`);
    }
    if (![OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG].includes(f.opcode)) return this.fail(1002, `the server sent reserved opcode ${f.opcode}`);
    if (control && (!f.fin || f.payload.length > 125)) return this.fail(1002, 'the server sent a fragmented or oversized control frame');
    if (f.opcode === OP_PING) {
      this.received.push({ type: 'ping', data: f.payload });
      if (!this.sentClose) void this.send({ opcode: OP_PONG, payload: f.payload });
      return;
    }
    if (f.opcode === OP_PONG) {
      this.received.push({ type: 'pong', data: f.payload });
      return;
    }
    if (f.opcode === OP_CLOSE) return this.onClose(f.payload);
    if (f.opcode === OP_CONTINUATION) {
      if (this.fragments.length === 0) return this.fail(1002, 'the server sent a continuation frame with no message to continue');
      this.fragments.push(f.payload);
      this.fragmentBytes += f.payload.length;
      if (this.fragmentBytes > MAX_FRAME_BYTES) return this.fail(1009, `the server sent a message of more than ${MAX_FRAME_BYTES} bytes`);
    } else {
      if (this.fragments.length > 0) return this.fail(1002, 'the server started a new message before finishing the previous one');
      this.fragmentOpcode = f.opcode;
      this.compressed = compressedStart;
      this.fragments.push(f.payload);
      this.fragmentBytes = f.payload.length;
    }
    if (!f.fin) return;
    let data = this.fragments.length === 1 ? this.fragments[0] : Buffer.concat(this.fragments);
    this.fragments = [];
    if (this.compressed) {
      try {
        data = this.deflate!.decompress(data, MAX_FRAME_BYTES);
      } catch (err) {
        return this.fail(1007, `the server sent a compressed message that does not inflate: ${(err as Error).message}`);
      }
    }
    // Families 12 and 13 echo one payload 1000 times: equal messages share one buffer.
    const last = this.received.at(-1);
    if (last?.type === 'message' && last.data !== data && last.data.length === data.length && last.data.equals(data)) data = last.data;
    if (this.fragmentOpcode === OP_TEXT && !isValidUtf8(data)) {
      // Recorded first, so the mismatch shows in the report, then failed as §8.1 requires.
      this.received.push({ type: 'message', binary: false, data });
      return this.fail(1007, 'the server sent a text message that is not valid UTF-8');
    }
    this.received.push({ type: 'message', binary: this.fragmentOpcode === OP_BINARY, data });
  }

  private onClose(payload: Buffer): void {
    let code: number | undefined;
    let reason = '';
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      reason = payload.subarray(2).toString('utf8');
    }
    this.remoteClose = { code, reason };
    // The server's own close frame is judged too (RFC 6455 §5.5.1, §7.4): a broken one fails the case.
    let bad: string | undefined;
    if (payload.length === 1) bad = 'the server sent a close frame with a 1-byte payload (0 or at least 2 bytes are allowed)';
    else if (code !== undefined && !isSendableCode(code) && !(code >= 5000)) bad = `the server sent close code ${code}, which must never be sent in a close frame`;
    else if (payload.length > 2 && !isValidUtf8(payload.subarray(2))) bad = 'the server sent a close reason that is not valid UTF-8';
    if (bad && !this.violation) {
      this.violation = bad;
      this.note(`protocol violation by the server: ${bad}`);
    }
    if (this.midFrame) this.note('no close frame sent back: one of ours is half written');
    else if (!this.sentClose) {
      // Echo the code (RFC 6455 §5.5.1); a code that must not be sent is answered with 1000.
      const echo = code !== undefined && isSendableCode(code) ? code : code === undefined ? undefined : 1000;
      this.sentClose = true;
      void this.send({ opcode: OP_CLOSE, payload: closePayload(echo) });
    }
  }

  /** The server broke RFC 6455: record why, send a close, and let the server end TCP. */
  private fail(code: number, why: string): void {
    if (this.violation) return;
    this.violation = why;
    this.note(`protocol violation by the server: ${why}`);
    if (!this.sentClose && !this.midFrame) {
      this.sentClose = true;
      if (!this.remoteClose) this.closedByMe = true;
      void this.send({ opcode: OP_CLOSE, payload: closePayload(code) });
    }
  }
}

/** Codes an endpoint may put in a close frame (RFC 6455 §7.4, IANA registry). */
export function isSendableCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
