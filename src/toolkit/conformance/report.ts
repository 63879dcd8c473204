/**
 * The document `porthole conformance` produces: what `--json` prints and what
 * `--html DIR` renders. Case numbers and verdicts are Autobahn|Testsuite's, so a
 * run can be compared line by line with Autobahn's own reports.
 */

/**
 * Autobahn's verdicts: OK, NON-STRICT (allowed but not the strict reading of
 * RFC 6455), INFORMATIONAL (nothing to judge; what happened is recorded),
 * UNIMPLEMENTED (the server does not offer the feature, e.g. permessage-deflate),
 * FAILED.
 */
export type Verdict = 'OK' | 'NON-STRICT' | 'INFORMATIONAL' | 'UNIMPLEMENTED' | 'FAILED';

export const VERDICTS: readonly Verdict[] = ['OK', 'NON-STRICT', 'INFORMATIONAL', 'UNIMPLEMENTED', 'FAILED'];

/** One thing that crossed the wire (or happened to the connection) during a case. */
export interface WireRecord {
  /** Milliseconds since the case started. */
  at: number;
  /** `note` is the tool's own remark (e.g. "waiting 1 s for the close"), not traffic. */
  dir: 'sent' | 'received' | 'note';
  /** A parsed frame, raw bytes written outside framing, the TCP connection closing, or a note. */
  kind: 'frame' | 'bytes' | 'tcp-close' | 'note';
  /** Frame fields (kind `frame`). */
  opcode?: number;
  fin?: boolean;
  /** The RSV1..3 bits as a number 0–7. */
  rsv?: number;
  masked?: boolean;
  /** Payload length of a frame, or byte count of `bytes`. */
  length?: number;
  /** The first bytes of the payload: text when it is valid UTF-8, else hex; cut at 256 characters. */
  preview?: string;
  /**
   * True when `preview` is hex because the payload was not valid UTF-8 (optional,
   * added for the HTML report, which labels it: "feff" may be text or two bytes).
   */
  previewHex?: boolean;
  /** A close frame's code and reason. */
  closeCode?: number;
  closeReason?: string;
  /** Free text for notes. */
  text?: string;
}

/** The outcome of one case. */
export interface CaseOutcome {
  /** Autobahn's number, e.g. "5.1.3" or "6.4.2". */
  id: string;
  /** The family's number ("5") and title ("Fragmentation"). */
  family: string;
  familyTitle: string;
  /** What the case sends (Autobahn's case description, in our words). */
  description: string;
  /** What a conforming server does (Autobahn's expectation, in our words). */
  expectation: string;
  /** The verdict on the data exchanged. */
  behavior: Verdict;
  /** The verdict on how the connection was closed (code, who closed first, TCP close). */
  behaviorClose: Verdict;
  /** Why these verdicts, in one or two sentences a person can act on. */
  reason: string;
  durationMs: number;
  /** The close frame the server sent, if any. */
  remoteCloseCode?: number;
  remoteCloseReason?: string;
  /** Who closed the TCP connection first ('server', 'client', or 'none' when it timed out open). */
  droppedBy?: 'server' | 'client' | 'none';
  /** The traffic, in order; long runs (family 9) are summarized and marked `wireTruncated`. */
  wire: WireRecord[];
  wireTruncated?: boolean;
}

/** The whole run. */
export interface ConformanceReport {
  tool: 'porthole conformance';
  /** Porthole's version. */
  version: string;
  /** The endpoint tested. */
  url: string;
  startedAt: string;
  durationMs: number;
  options: {
    cases: string[];
    exclude: string[];
    /** Opt-in families that were included, e.g. ["9", "12", "13"]. */
    include: string[];
    timeoutMs: number;
  };
  /** Counts per verdict of `behavior` (a case counts as FAILED when either verdict is FAILED). */
  summary: Record<Verdict, number> & { total: number };
  cases: CaseOutcome[];
}

/** The verdict a case counts under in the summary: FAILED if either is, else `behavior`. */
export function overallVerdict(c: Pick<CaseOutcome, 'behavior' | 'behaviorClose'>): Verdict {
  return c.behavior === 'FAILED' || c.behaviorClose === 'FAILED' ? 'FAILED' : c.behavior;
}
