/**
 * One step of a `porthole doctor` report, as printed and as `--json` emits it.
 */

export type StepName = 'url' | 'dns' | 'tcp' | 'tls' | 'upgrade' | 'accept' | 'subprotocol' | 'roundtrip' | 'idle' | 'close';
export type StepStatus = 'pass' | 'fail' | 'warn';

export interface DoctorStep {
  step: StepName;
  /** Short label for the printed report ("TLS", "HTTP upgrade"). */
  title: string;
  /** `status !== 'fail'`. */
  ok: boolean;
  status: StepStatus;
  /** One line: what was found. */
  detail: string;
  /** When something is wrong: one paragraph on what it means and the likely cause. */
  explanation?: string;
  /** What to change; may span several lines (a config snippet). */
  fix?: string;
  /** The evidence: lines sent (`> `) and received (`< `), and probes made (`* `). */
  wire?: string[];
  /** Facts for scripts: addresses, status codes, milliseconds, close codes, a stable `cause`. */
  data?: Record<string, unknown>;
}

export const STEP_TITLES: Readonly<Record<StepName, string>> = Object.freeze({
  url: 'URL',
  dns: 'DNS',
  tcp: 'TCP connect',
  tls: 'TLS',
  upgrade: 'HTTP upgrade',
  accept: 'Sec-WebSocket-Accept',
  subprotocol: 'Subprotocol',
  roundtrip: 'Round trip',
  idle: 'Idle',
  close: 'Close',
});

export function makeStep(
  step: StepName,
  status: StepStatus,
  detail: string,
  extra: Pick<DoctorStep, 'explanation' | 'fix' | 'wire' | 'data'> = {},
): DoctorStep {
  const out: DoctorStep = { step, title: STEP_TITLES[step], ok: status !== 'fail', status, detail };
  if (extra.explanation) out.explanation = extra.explanation;
  if (extra.fix) out.fix = extra.fix;
  if (extra.wire?.length) out.wire = extra.wire;
  if (extra.data) out.data = extra.data;
  return out;
}

/** `1.2 ms`, `340 ms`, `2.1 s`. */
export function formatMs(ms: number): string {
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}
