/**
 * Shared by the reliability suite (test/reliability/). The same test files run
 * at two sizes: bounded for `npm test` (a few minutes in all) and full for
 * `npm run reliability`, which sets PORTHOLE_RELIABILITY=full and collects
 * each suite's figures from PORTHOLE_RELIABILITY_OUT into RELIABILITY.md.
 */
import { appendFileSync } from 'node:fs';

/** True under `npm run reliability`. */
export const FULL = process.env.PORTHOLE_RELIABILITY === 'full';

/** `quick` cases under `npm test`, `full` under `npm run reliability`. */
export function size(quick: number, full: number): number {
  return FULL ? full : quick;
}

/** One suite's figures: a row of the table `npm run reliability` prints. */
export interface Figures {
  suite: string;
  cases: number;
  failures: number;
  crashes: number;
  fdBefore?: number;
  fdAfter?: number;
  rssBeforeMiB?: number;
  rssAfterMiB?: number;
  note?: string;
}

/** Records a suite's figures (a JSON line in PORTHOLE_RELIABILITY_OUT when set). */
export function record(figures: Figures): void {
  const out = process.env.PORTHOLE_RELIABILITY_OUT;
  if (out) appendFileSync(out, `${JSON.stringify(figures)}\n`);
}
