/**
 * How often `workers: N` replaces a worker that died: at most RESTARTS within WINDOW_MS.
 * A worker that crashes at every start would otherwise be forked in a loop, each fork
 * costing a Node.js start-up (~50 ms of CPU) on a machine already in trouble.
 */
import { WorkerRestartLimitError } from '../errors.js';

export const RESTARTS = 5;
export const WINDOW_MS = 60_000;

export class RestartBudget {
  readonly #times: number[] = [];

  constructor(
    private readonly restarts = RESTARTS,
    private readonly windowMs = WINDOW_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Null when a replacement may be forked now (and counts it); the refusal otherwise. */
  take(): WorkerRestartLimitError | null {
    const t = this.now();
    while (this.#times.length && t - this.#times[0] >= this.windowMs) this.#times.shift();
    if (this.#times.length >= this.restarts) {
      return new WorkerRestartLimitError(`workers ended ${this.#times.length + 1} times within ${this.windowMs / 1000} s: no new worker is forked for this one (restart porthole once the cause is fixed)`);
    }
    this.#times.push(t);
    return null;
  }
}
