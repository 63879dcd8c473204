/**
 * What a conformance case is: Autobahn's number, description and expectation,
 * a script that sends, and the outcomes it accepts (Autobahn's `expected` and
 * `expectedClose`), from which the verdicts are derived.
 */
import type { CaseContext } from './case-context.js';
import type { DeflateOffer } from './deflate.js';
import type { Verdict } from './report.js';

/** Something the server did that a case compares with its expectation. */
export type CaseEvent =
  | { type: 'message'; binary: boolean; data: Buffer }
  | { type: 'pong'; data: Buffer }
  | { type: 'ping'; data: Buffer }
  /** A wait in the script passed with the connection still open (Autobahn's `("timeout", label)`). */
  | { type: 'timeout'; label: string };

/** How the connection must end (Autobahn's `expectedClose`). */
export interface ExpectedClose {
  /** True: this client starts the closing handshake; false: the server must fail the connection. */
  closedByMe: boolean;
  /** Close codes the server may send (no close frame at all is accepted too). */
  codes: number[];
  /** The closing handshake must be completed (both close frames exchanged). */
  requireClean: boolean;
}

/** The final verdicts, for the hooks that adjust them (informational cases). */
export interface Judgement {
  behavior: Verdict;
  behaviorClose: Verdict;
  reason: string;
  /** The close verdict came from a close code not in `codes` (Autobahn's WRONG CODE). */
  wrongCode: boolean;
  /** Which expected outcome matched, if any. */
  matched?: Verdict;
}

export interface CaseSpec {
  /** Autobahn's number, e.g. "5.1.3". */
  id: string;
  description: string;
  expectation: string;
  /** Event lists accepted, tried in order: OK first, then NON-STRICT. */
  expected: Partial<Record<Verdict, CaseEvent[]>>;
  close: ExpectedClose;
  /** Sends the case's frames; may wait and read what came back. */
  run(ctx: CaseContext): Promise<void>;
  /** Adjusts the verdicts (7.1.6 and 7.13.x are informational; a wrong close code fails the behavior in family 7). */
  finish?(j: Judgement): Judgement;
  /** Total of the fixed pauses in `run` (added to the time the script may take). */
  pausesMs?: number;
  /** Family 9: keep only a summary of the wire. */
  bulky?: boolean;
  /** The case needs more than the per-case timeout (family 9): this many ms at least. */
  minTimeoutMs?: number;
  /**
   * Families 12 and 13: the permessage-deflate offers made in the handshake.
   * A server that declines them gets UNIMPLEMENTED; an answer RFC 7692 does
   * not allow, FAILED.
   */
  deflate?: DeflateOffer[];
}

export const FAMILY_TITLES: Readonly<Record<string, string>> = {
  '1': 'Framing',
  '2': 'Pings/Pongs',
  '3': 'Reserved Bits',
  '4': 'Opcodes',
  '5': 'Fragmentation',
  '6': 'UTF-8 Handling',
  '7': 'Close Handling',
  '9': 'Limits/Performance',
  '10': 'Miscellaneous',
  '12': 'WebSocket Compression (different payloads)',
  '13': 'WebSocket Compression (different parameters)',
};

/** Families run only with `--include`. */
export const OPT_IN_FAMILIES: readonly string[] = ['9', '12', '13'];

export function text(s: string): CaseEvent {
  return { type: 'message', binary: false, data: Buffer.from(s, 'utf8') };
}
export function textBytes(b: Buffer): CaseEvent {
  return { type: 'message', binary: false, data: b };
}
export function binary(b: Buffer): CaseEvent {
  return { type: 'message', binary: true, data: b };
}
export function pong(p: Buffer | string = ''): CaseEvent {
  return { type: 'pong', data: typeof p === 'string' ? Buffer.from(p, 'utf8') : p };
}

/** The server must fail the connection with one of these codes (or drop TCP). */
export function serverFails(codes: number[] = [1002]): ExpectedClose {
  return { closedByMe: false, codes, requireClean: false };
}
/** This client closes with 1000 once the expected events came; the handshake must complete. */
export const CLEAN_NORMAL: ExpectedClose = { closedByMe: true, codes: [1000], requireClean: true };
