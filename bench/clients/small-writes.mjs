// Small-writes workload: one WebSocket message of SIZE bytes written by the client in CHOP-byte
// pieces, each its own socket write on its own turn of the event loop (Autobahn's cases 9.5.x and
// 9.6.x: "sent out data in chops of 64 octets"), then the echo read back whole; MESSAGES times on
// each of CONNS connections, at most SECS seconds.
// argv: url size chop messages conns secs nodelay(1|0). Prints JSON {messages, pieces, seconds,
// p50 and p99 ms per message, errors}.
import { connect } from 'node:net';
import { randomBytes, createHash } from 'node:crypto';

const [url, size = '1048576', chop = '64', messages = '4', conns = '1', secs = '30', nodelay = '1'] = process.argv.slice(2);
const u = new URL(url);
const SIZE = Number(size);
const CHOP = Number(chop);
const deadline = performance.now() + Number(secs) * 1000;
const times = [];
let errors = 0;
let pieces = 0;

/** A masked binary frame carrying `payload` (client frames must be masked, RFC 6455 §5.3). */
function frame(payload) {
  const mask = randomBytes(4);
  const head = Buffer.alloc(14);
  head[0] = 0x82;
  let n = 2;
  if (payload.length < 126) head[1] = 0x80 | payload.length;
  else if (payload.length < 65536) (head[1] = 0x80 | 126), head.writeUInt16BE(payload.length, 2), (n = 4);
  else (head[1] = 0x80 | 127), head.writeBigUInt64BE(BigInt(payload.length), 2), (n = 10);
  mask.copy(head, n);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head.subarray(0, n + 4), body]);
}

function open() {
  return new Promise((ok, fail) => {
    const key = randomBytes(16).toString('base64');
    const s = connect(Number(u.port), u.hostname);
    s.setNoDelay(nodelay === '1');
    s.once('error', fail);
    s.write(`GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      s.off('data', onData);
      const head = buf.subarray(0, end).toString('latin1');
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      if (!head.startsWith('HTTP/1.1 101') || !head.includes(accept)) return fail(new Error(`no 101: ${head.split('\r\n')[0]}`));
      s.pause();
      ok({ s, rest: buf.subarray(end + 4) });
    };
    s.on('data', onData);
  });
}

/** Resolves once `bytes` have been handed to the kernel (the write's callback). */
const writeOne = (s, bytes) => new Promise((ok, fail) => s.write(bytes, (err) => (err ? fail(err) : ok())));

/** Reads until one whole unmasked frame of SIZE payload bytes has come back. */
function readEcho(s, rest) {
  return new Promise((ok, fail) => {
    let got = rest.length;
    let need = null;
    let head = rest;
    const check = () => {
      if (need === null && head.length >= 2) {
        const l = head[1] & 0x7f;
        const hl = l === 126 ? 4 : l === 127 ? 10 : 2;
        if (head.length >= hl) need = hl + (l === 126 ? head.readUInt16BE(2) : l === 127 ? Number(head.readBigUInt64BE(2)) : l);
      }
      if (need !== null && got >= need) {
        s.off('data', onData);
        s.pause();
        ok(got > need ? Buffer.from(head.subarray(need)) : Buffer.alloc(0));
      }
    };
    const onData = (d) => {
      got += d.length;
      if (need === null) head = Buffer.concat([head, d]);
      check();
    };
    s.on('data', onData);
    s.once('close', () => fail(new Error('closed')));
    s.resume();
    check();
  });
}

const payload = randomBytes(SIZE);
const t0 = performance.now();
await Promise.all(
  Array.from({ length: Number(conns) }, async () => {
    let c;
    try {
      c = await open();
    } catch {
      errors++;
      return;
    }
    let rest = c.rest;
    for (let m = 0; m < Number(messages) && performance.now() < deadline; m++) {
      const bytes = frame(payload);
      const started = performance.now();
      try {
        const echoed = readEcho(c.s, rest);
        for (let at = 0; at < bytes.length; at += CHOP) {
          await writeOne(c.s, bytes.subarray(at, at + CHOP));
          pieces++;
        }
        rest = await echoed;
        times.push(performance.now() - started);
      } catch {
        errors++;
        break;
      }
    }
    c.s.destroy();
  }),
);
const seconds = (performance.now() - t0) / 1000;
times.sort((a, b) => a - b);
const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? 0;
console.log(JSON.stringify({ messages: times.length, pieces, seconds, p50: q(0.5), p99: q(0.99), errors, cpu: (process.cpuUsage().user + process.cpuUsage().system) / 1e6 }));
process.exit(0);
