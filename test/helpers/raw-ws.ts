/**
 * WebSocket ends written by hand on plain TCP, for tunnel tests that need
 * what `ws` hides: a half-close, a reset, frames read as raw bytes.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { listen } from './net.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** An upstream that answers the handshake by hand and hands each socket (after the 101) to `onSocket`. */
export async function rawWsUpstream(onSocket: (s: net.Socket) => void): Promise<{ port: number; sockets: net.Socket[]; close: () => Promise<void> }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? '';
      const accept = createHash('sha1').update(key + GUID).digest('base64');
      s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      sockets.push(s);
      onSocket(s);
    };
    s.on('data', onData);
  });
  const port = await listen(server);
  return {
    port,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

/** A client through the gateway: resolves after the 101 with the socket (allowHalfOpen) and any bytes after it. */
export function rawWsClient(port: number, path: string): Promise<{ socket: net.Socket; rest: Buffer }> {
  return new Promise((ok, fail) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      if (!buf.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 101')) return fail(new Error(`no 101: ${buf.toString('latin1', 0, 200)}`));
      ok({ socket, rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.once('error', fail);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
}

/** One frame (FIN set), masked when `mask` (a client's frames). Payloads up to 64 KiB. */
export function frame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const ext = payload.length < 126 ? 0 : 2;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = 0x80 | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext ? 126 : payload.length);
  if (ext) head.writeUInt16BE(payload.length, 2);
  if (!mask) return Buffer.concat([head, payload]);
  const key = head.subarray(2 + ext);
  key.set([1, 2, 3, 4]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([head, body]);
}
