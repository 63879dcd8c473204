/**
 * Echo servers for the conformance tests: `ws` in this process, and a
 * WebSocket echo server written here by hand on a raw net server (handshake
 * and frames), correct by default, with one defect switched on per test. The
 * hand-written one is independent of the client under test: it shares no code
 * with src/toolkit/conformance/.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { WebSocketServer } from 'ws';

export interface Defects {
  /** Text messages are echoed without checking UTF-8. */
  acceptInvalidUtf8?: boolean;
  /** Frames with RSV bits are handled as if the bits were 0. */
  ignoreRsv?: boolean;
  /** A ping is answered with a pong whose payload is "wrong". */
  wrongPongPayload?: boolean;
  /** On a protocol error (what must fail the connection with 1002) the frame is dropped and the connection goes on. */
  noCloseOnProtocolError?: boolean;
  /** A Sec-WebSocket-Extensions line for the 101 (say, permessage-deflate it does not implement), whatever was offered. */
  extensionAnswer?: string;
}

export interface TestServer {
  url: string;
  /** Connections accepted so far (the hand-written server only). */
  connections?: () => number;
  /** The request heads of the handshakes (the hand-written server only). */
  heads?: string[];
  close(): Promise<void>;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** `ws`'s WebSocketServer echoing every message as it came. */
export async function startWsEcho(): Promise<TestServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024 });
  wss.on('connection', (ws) => {
    ws.on('error', () => {}); // the cases provoke protocol errors on purpose
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  const port = (wss.address() as net.AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/`,
    close: () =>
      new Promise((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

function frame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126 && len < 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else if (len >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

/** One connection of the hand-written server, after the handshake. */
function serveFrames(socket: net.Socket, first: Buffer, defects: Defects): void {
  let buf = first;
  let closing = false;
  let message: { opcode: number; parts: Buffer[]; decoder?: TextDecoder } | undefined;

  const fail = (code: number) => {
    if (closing) return;
    closing = true;
    socket.write(frame(8, Buffer.from([code >> 8, code & 0xff])));
    socket.end();
  };
  const protocolError = () => {
    if (!defects.noCloseOnProtocolError) fail(1002);
  };
  const textOk = (decoder: TextDecoder, data: Buffer, last: boolean): boolean => {
    if (defects.acceptInvalidUtf8) return true;
    try {
      decoder.decode(data, { stream: !last });
      return true;
    } catch {
      return false;
    }
  };

  const onFrame = (fin: boolean, rsv: number, opcode: number, masked: boolean, payload: Buffer) => {
    if (closing) return;
    if (!masked) return protocolError();
    if (rsv !== 0 && !defects.ignoreRsv) return protocolError();
    if (![0, 1, 2, 8, 9, 10].includes(opcode)) return protocolError();
    if (opcode >= 8 && (!fin || payload.length > 125)) return protocolError();
    if (opcode === 9) {
      socket.write(frame(10, defects.wrongPongPayload ? Buffer.from('wrong') : payload));
      return;
    }
    if (opcode === 10) return;
    if (opcode === 8) {
      if (payload.length === 1) return protocolError();
      if (payload.length >= 2) {
        if (!validCloseCode(payload.readUInt16BE(0))) return protocolError();
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(payload.subarray(2));
        } catch {
          return fail(1007);
        }
      }
      closing = true;
      socket.write(frame(8, payload.subarray(0, 2)));
      socket.end();
      return;
    }
    if (opcode === 0 && !message) return protocolError();
    if (opcode !== 0) {
      if (message) return protocolError();
      message = { opcode, parts: [], decoder: opcode === 1 ? new TextDecoder('utf-8', { fatal: true }) : undefined };
    }
    const m = message!;
    // Text is checked as it comes (fail fast), not only at the end of the message.
    if (m.decoder && !textOk(m.decoder, payload, fin)) return fail(1007);
    m.parts.push(payload);
    if (!fin) return;
    message = undefined;
    socket.write(frame(m.opcode, Buffer.concat(m.parts)));
  };

  const onData = () => {
    for (;;) {
      if (buf.length < 2) return;
      const fin = (buf[0] & 0x80) !== 0;
      const rsv = (buf[0] >> 4) & 7;
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      const key = masked ? at : -1;
      if (masked) at += 4;
      if (buf.length < at + len) return;
      const payload = Buffer.from(buf.subarray(at, at + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[key + (i & 3)];
      buf = buf.subarray(at + len);
      onFrame(fin, rsv, opcode, masked, payload);
    }
  };
  socket.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    onData();
  });
  onData();
}

/** The hand-written echo server, with the given defects (none: a correct server). */
export async function startHandmadeEcho(defects: Defects = {}): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const heads: string[] = [];
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = Buffer.alloc(0);
    const onHead = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onHead);
      heads.push(head.subarray(0, end).toString('latin1'));
      const key = /^sec-websocket-key:\s*(\S+)/im.exec(head.subarray(0, end).toString('latin1'))?.[1];
      if (!key) {
        socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      const extension = defects.extensionAnswer ? `Sec-WebSocket-Extensions: ${defects.extensionAnswer}\r\n` : '';
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${extension}\r\n`);
      serveFrames(socket, head.subarray(end + 4), defects);
    };
    socket.on('data', onHead);
  });
  const port = await listen(server);
  return {
    url: `ws://127.0.0.1:${port}/`,
    connections: () => accepted,
    heads,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
