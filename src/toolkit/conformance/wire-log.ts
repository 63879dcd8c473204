/**
 * The traffic of one case as report records (WireRecord): every frame both
 * ways with its fields and a preview of its payload. Family 9 moves megabytes
 * in thousands of frames, so a bulky case keeps the first and last records only.
 */
import type { WireRecord } from './report.js';

const PREVIEW_CHARS = 256;
const BULKY_HEAD = 40;
const BULKY_TAIL = 20;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Text when the bytes are valid UTF-8, else hex; cut at 256 characters. */
export function previewOf(payload: Buffer): string {
  const head = payload.subarray(0, PREVIEW_CHARS);
  let out: string;
  try {
    out = utf8.decode(payload.length > PREVIEW_CHARS * 4 ? head : payload);
  } catch {
    out = `0x${head.toString('hex')}`;
  }
  return out.length > PREVIEW_CHARS ? `${out.slice(0, PREVIEW_CHARS)}…` : out;
}

/** Whether previewOf shows these bytes as text (true) or as hex. */
function isUtf8Head(payload: Buffer): boolean {
  try {
    utf8.decode(payload.length > PREVIEW_CHARS * 4 ? payload.subarray(0, PREVIEW_CHARS) : payload);
    return true;
  } catch {
    return false;
  }
}

export function wireOfFrame(dir: 'sent' | 'received', opcode: number, fin: boolean, rsv: number, masked: boolean, payload: Buffer): Omit<WireRecord, 'at'> {
  const rec: Omit<WireRecord, 'at'> = { dir, kind: 'frame', opcode, fin, rsv, masked, length: payload.length };
  if (opcode === 8 && payload.length >= 2) {
    rec.closeCode = payload.readUInt16BE(0);
    rec.closeReason = previewOf(payload.subarray(2));
  } else if (payload.length > 0) {
    rec.preview = previewOf(payload);
    // previewOf writes bytes that are not UTF-8 as 0x… hex; the HTML report labels them.
    if (!isUtf8Head(payload)) rec.previewHex = true;
  }
  return rec;
}

export class WireLog {
  private readonly head: WireRecord[] = [];
  private tail: WireRecord[] = [];
  private dropped = 0;
  private tcpClose = false;

  constructor(
    private readonly started: number,
    private readonly bulky: boolean,
  ) {}

  add(rec: Omit<WireRecord, 'at'>): void {
    if (rec.kind === 'tcp-close') this.tcpClose = true;
    const full: WireRecord = { at: Math.round((performance.now() - this.started) * 10) / 10, ...rec };
    if (!this.bulky || this.head.length < BULKY_HEAD) {
      this.head.push(full);
      return;
    }
    this.tail.push(full);
    if (this.tail.length > BULKY_TAIL * 2) {
      this.dropped += this.tail.length - BULKY_TAIL;
      this.tail = this.tail.slice(-BULKY_TAIL);
    }
  }

  hasTcpClose(): boolean {
    return this.tcpClose;
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  records(): WireRecord[] {
    if (this.dropped === 0) return [...this.head, ...this.tail];
    const gap: WireRecord = { at: this.tail[0]?.at ?? 0, dir: 'note', kind: 'note', text: `${this.dropped} records left out` };
    return [...this.head, gap, ...this.tail];
  }
}
