/**
 * The frame trackers of the two tunnel engines are twins: src/gateway/frames.ts (the
 * JavaScript tunnel) and native/frames.c (the native one) must count the same frames and
 * messages, read the same first close frame and see the same frame boundaries after each
 * read from any stream, however it is cut into reads. Thousands of generated streams (frames of every opcode and length form, masked or
 * not, close frames with reasons valid and not, garbage, streams ending mid-frame) go
 * through both: the C side through native/fuzz/frames-replay.c, built here with gcc.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FrameTracker } from '../../src/gateway/frames.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STREAMS = 4000;

/** A small seeded generator (mulberry32): the same streams every run. */
function generator(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * n;
  };
}

function stream(rnd: (n: number) => number): Buffer {
  const int = (n: number) => Math.floor(rnd(n));
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const parts: Buffer[] = [];
  for (let k = int(7); k >= 0; k--) {
    if (int(8) === 0) {
      parts.push(bytes(1 + int(40)));
      continue;
    }
    const opcode = [0, 1, 2, 8, 8, 9, 10, int(16)][int(8)];
    let payload: Buffer;
    if (opcode === 8) {
      const reasons = [Buffer.alloc(0), Buffer.from('bye'), Buffer.from('é€😀'.repeat(1 + int(20))), bytes(int(140)), Buffer.from([0xe2, 0x82])];
      payload = int(6) === 0 ? bytes(int(2)) : Buffer.concat([Buffer.from([int(256), int(256)]), reasons[int(reasons.length)]]);
    } else {
      payload = bytes([int(126), 126 + int(300), int(20)][int(3)]);
    }
    // The length in its shortest form, or forced longer; now and then a 64-bit length no stream will finish.
    const form = int(4);
    const huge = int(20) === 0;
    const n = payload.length;
    const len = huge ? Buffer.from([127, 0, 0, 1 + int(255), int(256), 0, 0, 0, n]) : form === 1 || (n >= 126 && n < 65536 && form !== 2) ? Buffer.from([126, n >> 8, n & 0xff]) : form === 2 ? Buffer.from([127, 0, 0, 0, 0, 0, 0, n >> 8, n & 0xff]) : Buffer.from([n]);
    const mask = int(2) ? bytes(4) : null;
    len[0] |= mask ? 0x80 : 0;
    const body = mask ? Buffer.from(payload.map((b, i) => b ^ mask[i & 3])) : payload;
    parts.push(Buffer.from([(int(3) ? 0x80 : 0) | (int(16) === 0 ? 0x70 : 0) | opcode]), len, mask ?? Buffer.alloc(0), body);
  }
  const all = Buffer.concat(parts);
  // A stream that ends mid-frame, or mid-header.
  return int(4) === 0 ? all.subarray(0, int(all.length + 1)) : all;
}

function cuts(rnd: (n: number) => number, len: number): number[] {
  const out: number[] = [];
  for (let off = 0; off < len; ) {
    const n = Math.min(len - off, rnd(4) < 1 ? len : 1 + Math.floor(rnd(64)));
    out.push(n);
    off += n;
  }
  return out;
}

test(`frames.ts and frames.c read ${STREAMS} generated streams alike, cut into reads at random`, { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-frames-twins-'));
  try {
    const bin = join(dir, 'frames-replay');
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin, join(ROOT, 'native/fuzz/frames-replay.c'), join(ROOT, 'native/frames.c')]);
    const rnd = generator(0x7a11);
    const records: Buffer[] = [];
    const expected: string[] = [];
    let closes = 0;
    let midFrame = 0;
    for (let i = 0; i < STREAMS; i++) {
      const s = stream(rnd);
      const reads = cuts(rnd, s.length);
      const t = new FrameTracker();
      let off = 0;
      let boundaries = '';
      for (const n of reads) {
        t.feed(s.subarray(off, off + n));
        off += n;
        boundaries += t.atBoundary ? '1' : '0';
      }
      if (t.closeCode !== null) closes++;
      if (!t.atBoundary) midFrame++;
      expected.push(`${t.frames} ${t.messages} ${t.closeCode ?? -1} ${t.closeReason} ${boundaries || '-'}`);
      const head = Buffer.alloc(8 + 4 * reads.length);
      head.writeUInt32LE(s.length, 0);
      head.writeUInt32LE(reads.length, 4);
      reads.forEach((n, k) => head.writeUInt32LE(n, 8 + 4 * k));
      records.push(head, s);
    }
    const lines = execFileSync(bin, { input: Buffer.concat(records), maxBuffer: 64 << 20 }).toString().trimEnd().split('\n');
    assert.equal(lines.length, STREAMS);
    lines.forEach((line, i) => {
      const [frames, messages, code, hex, boundaries] = line.split(' ');
      // The JavaScript tracker keeps the reason as text: the C one's bytes are read the same way.
      const reason = hex === '-' ? '' : Buffer.from(hex, 'hex').toString('utf8');
      assert.equal(`${frames} ${messages} ${code} ${reason} ${boundaries}`, expected[i], `stream ${i}`);
    });
    // The generator reached what it is for: close frames read, and streams left inside a frame.
    assert.ok(closes > STREAMS / 4 && midFrame > STREAMS / 10, `closes ${closes}, mid-frame ${midFrame}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
