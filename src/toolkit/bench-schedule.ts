/**
 * The open-loop clock of `porthole bench --rate`: every connection sends on a
 * fixed schedule whatever the server does, so a slow server cannot slow the
 * load down and hide its own latency (coordinated omission).
 *
 * Connection i sends at `epoch + phase_i + k · interval`, with phases spread
 * evenly over one interval so N connections do not all fire in the same
 * millisecond. Connections wait in a binary min-heap keyed by `wakeAt`; one
 * timer is armed for the earliest, and each wake-up sends everything due
 * (catching up after a stall). Work is O(log N) per message, no allocation
 * per message, one timer per wake-up.
 */
import { EARLY_SEND_MS, type BenchConnection } from './bench-connection.js';

export class OpenLoopScheduler {
  private readonly heap: BenchConnection[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private stopped = false;

  /**
   * @param epoch `performance.now()` the schedule counts from
   * @param intervalMs time between two sends of one connection
   * @param slots the number of connections the phases are spread over
   */
  constructor(
    private readonly epoch: number,
    private readonly intervalMs: number,
    private readonly slots: number,
  ) {}

  /** Starts sending on `c` from its first slot at or after `now`. */
  add(c: BenchConnection, now: number): void {
    if (this.stopped) return;
    const interval = this.intervalMs;
    const phase = ((c.id % this.slots) / this.slots) * interval;
    const k = Math.max(0, Math.ceil((now - this.epoch - phase) / interval));
    c.nextSendAt = this.epoch + phase + k * interval;
    c.wakeAt = c.nextSendAt;
    this.heap.push(c);
    this.siftUp(this.heap.length - 1);
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.heap.length = 0;
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.stopped) return;
    const heap = this.heap;
    const now = performance.now();
    while (heap.length && heap[0].wakeAt <= now + EARLY_SEND_MS) {
      const c = heap[0];
      if (c.schedulable) c.sendDue(now);
      // Closed, or every message sent: it leaves the heap.
      if (!c.schedulable) this.removeTop();
      else this.siftDown(0);
      if (this.stopped) return;
    }
    this.arm();
  };

  private arm(): void {
    if (this.stopped || !this.heap.length) return;
    const at = this.heap[0].wakeAt;
    if (at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    // Node runs a timer no sooner than 1 ms, and up to about 1 ms late: wake EARLY_SEND_MS before the earliest send.
    this.timer = setTimeout(this.tick, Math.max(0, at - EARLY_SEND_MS - performance.now()));
  }

  private removeTop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      this.siftDown(0);
    }
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const item = heap[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent].wakeAt <= item.wakeAt) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = item;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const item = heap[i];
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap[child + 1].wakeAt < heap[child].wakeAt) child++;
      if (heap[child].wakeAt >= item.wakeAt) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = item;
  }
}
