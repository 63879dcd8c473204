/**
 * When a process ends on its own: restart it, and after how long?
 *
 * Exponential backoff (1 s, 2 s, 4 s … capped at 60 s) keeps a broken app
 * from eating the CPU the gateway shares with it, and the crash-loop cap
 * (5 restarts asked for within 60 s) ends in `failed` rather than restarting
 * forever: a human (or agent) has to look, then start it again.
 */

export type RestartPolicy = 'on-failure' | 'always' | 'never';

export interface RestartOptions {
  /** First backoff delay; doubles with every consecutive crash. Default 1000. */
  backoffBaseMs: number;
  /** Backoff ceiling. Default 60000. */
  backoffMaxMs: number;
  /** This many restart-asking exits within `crashWindowMs` end in `failed`. Default 5. */
  crashLimit: number;
  /** Default 60000. Also: a run that lasted this long forgives the crashes before it. */
  crashWindowMs: number;
}

export const DEFAULT_RESTART: Readonly<RestartOptions> = Object.freeze({
  backoffBaseMs: 1_000,
  backoffMaxMs: 60_000,
  crashLimit: 5,
  crashWindowMs: 60_000,
});

/** How a run ended, as far as the policy cares. */
export interface RunEnd {
  code: number | null;
  signal: string | null;
  /** Set when the run counts as failed whatever its exit status (it was not ready in time). */
  failure?: string;
}

/** True if the run ended badly: non-zero exit, a signal, or a supervisor-detected failure. */
export function isFailure(end: RunEnd): boolean {
  return end.failure !== undefined || end.code !== 0 || end.signal !== null;
}

/** Whether `policy` asks for a restart after `end`. */
export function wantsRestart(policy: RestartPolicy, end: RunEnd): boolean {
  return policy === 'always' || (policy === 'on-failure' && isFailure(end));
}

export type RestartDecision = { restart: true; delayMs: number } | { restart: false; reason: string };

/** One app's recent crashes; decides the backoff delay and when to give up. */
export class CrashHistory {
  readonly #opts: RestartOptions;
  /** When each restart-asking exit happened, within the window. */
  #times: number[] = [];
  /** Consecutive restart-asking exits since the last long run: the backoff exponent. */
  #consecutive = 0;

  constructor(opts: RestartOptions) {
    this.#opts = opts;
  }

  /**
   * Records an exit that asked for a restart. `ranMs` is how long the run
   * lived. Under `always`, an app that keeps exiting cleanly is a loop too.
   */
  record(now: number, ranMs: number): RestartDecision {
    const { backoffBaseMs, backoffMaxMs, crashLimit, crashWindowMs } = this.#opts;
    if (ranMs >= crashWindowMs) this.#consecutive = 0;
    this.#times = this.#times.filter((t) => now - t < crashWindowMs);
    this.#times.push(now);
    if (this.#times.length >= crashLimit) {
      const n = this.#times.length;
      return { restart: false, reason: `ended ${n} time${n === 1 ? '' : 's'} within ${formatMs(crashWindowMs)}: not restarting until started again` };
    }
    const delayMs = Math.min(backoffMaxMs, backoffBaseMs * 2 ** this.#consecutive);
    this.#consecutive++;
    return { restart: true, delayMs };
  }

  /** An explicit start: the operator has looked, begin afresh. */
  reset(): void {
    this.#times = [];
    this.#consecutive = 0;
  }
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10}s` : `${ms}ms`;
}
