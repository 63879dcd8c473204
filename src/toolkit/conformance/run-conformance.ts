/**
 * A conformance run: the selected cases one after the other, each on its own
 * connection (as Autobahn does), collected into the report document.
 */
import { readFileSync } from 'node:fs';
import { selectCases } from './case-registry.js';
import { runCase, familyOf, type ConnectOptions } from './case-runner.js';
import { FAMILY_TITLES } from './case-types.js';
import { VERDICTS, overallVerdict, type CaseOutcome, type ConformanceReport } from './report.js';
import { ConformanceConnectError, ConformanceHandshakeError } from '../../errors.js';

export const DEFAULT_TIMEOUT_MS = 5000;

export interface ConformanceOptions extends ConnectOptions {
  cases?: string[];
  exclude?: string[];
  include?: string[];
  /** Per case: how long to wait for an answer, a close, the TCP close. */
  timeoutMs?: number;
  /** Called after each case (for a progress line). */
  onCase?: (outcome: CaseOutcome, index: number, total: number) => void;
  signal?: AbortSignal;
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * Runs the cases. Rejects with ConformanceConnectError/HandshakeError when
 * the first case cannot even connect (nothing was tested); a later case that
 * cannot connect is FAILED with the reason.
 */
export async function runConformance(opts: ConformanceOptions): Promise<ConformanceReport> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const sel = selectCases(opts.cases ?? [], opts.exclude ?? [], opts.include ?? []);
  const startedAt = new Date();
  const t0 = performance.now();
  const outcomes: CaseOutcome[] = [];
  const connect: ConnectOptions = { url: opts.url, origin: opts.origin, headers: opts.headers, insecure: opts.insecure, ca: opts.ca };
  for (const [i, spec] of sel.cases.entries()) {
    if (opts.signal?.aborted) break;
    let outcome: CaseOutcome;
    try {
      outcome = await runCase(spec, connect, timeoutMs);
    } catch (err) {
      if (outcomes.length === 0 || !(err instanceof ConformanceConnectError || err instanceof ConformanceHandshakeError)) throw err;
      const family = familyOf(spec.id);
      outcome = {
        id: spec.id,
        family,
        familyTitle: FAMILY_TITLES[family] ?? '',
        description: spec.description,
        expectation: spec.expectation,
        behavior: 'FAILED',
        behaviorClose: 'FAILED',
        reason: `Could not open the connection for this case: ${(err as Error).message} (${(err as ConformanceConnectError).code}).`,
        durationMs: 0,
        wire: [],
      };
    }
    outcomes.push(outcome);
    opts.onCase?.(outcome, i, sel.cases.length);
  }
  const summary = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as ConformanceReport['summary'];
  for (const o of outcomes) summary[overallVerdict(o)]++;
  summary.total = outcomes.length;
  return {
    tool: 'porthole conformance',
    version: version(),
    url: opts.url,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - t0),
    options: { cases: opts.cases ?? [], exclude: opts.exclude ?? [], include: opts.include ?? [], timeoutMs },
    summary,
    cases: outcomes,
  };
}
