/**
 * `porthole bench`: a load test of any WebSocket echo endpoint, and the load
 * generator of the project's benchmark suite. Connections open (all at once
 * with at most 100 handshakes in flight, or `rampPerSecond`), then each one
 * sends messages of `size` bytes either in closed loop (the next message when
 * the previous echo arrives) or in open loop (`ratePerSecond`, on a fixed
 * schedule, latency measured from the intended send time). Every echo is
 * checked and timed from the send time it carries (see bench-payload.ts).
 *
 * The result says how fast, how slow at the tail, what failed and why, and how
 * much CPU the bench itself used, so a reader can tell whether the load
 * generator was the bottleneck.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { ClientOptions } from 'ws';
import { BenchConnection, LATE_SEND_MS, type BenchTotals, type ConnectionHost } from './bench-connection.js';
import { BenchErrorTally, PH_BENCH_NO_ECHO, type BenchError } from './bench-errors.js';
import { validateBenchOptions, type BenchOptions, type BenchProgress, type BenchSettings } from './bench-options.js';
import { OpenLoopScheduler } from './bench-schedule.js';
import { Histogram } from './histogram.js';

export { BENCH_DEFAULTS, BenchOptionError, type BenchOptions, type BenchProgress } from './bench-options.js';

/** Latency figures in milliseconds (NaN becomes null in JSON). */
export interface LatencySummary {
  count: number;
  minMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

export interface BenchResult {
  url: string;
  /** The options in effect (defaults filled in; null = not set). */
  settings: {
    connections: number;
    rampPerSecond: number | null;
    size: number;
    binary: boolean;
    ratePerSecond: number | null;
    durationSeconds: number | null;
    messagesPerConnection: number | null;
    compress: boolean;
  };
  mode: 'closed-loop' | 'open-loop';
  /**
   * Why sending stopped: the duration passed; every connection did its messages; no connection
   * is left open; no echo came for 10 s while messages were outstanding; the signal aborted.
   */
  stoppedBy: 'duration' | 'messages' | 'no-open-connections' | 'stalled' | 'aborted';
  /** From the first connection attempt to the last echo (or the stop, if later). Rates use it. */
  elapsedSeconds: number;
  connections: {
    target: number;
    /** Handshakes that completed. */
    opened: number;
    /** Handshakes that failed or were abandoned. */
    failed: number;
    /** Connections the server closed (or that broke) before the run ended. */
    lost: number;
    /** Handshake (TCP connect + TLS + HTTP upgrade) times of every opened connection. */
    connectMs: { count: number; p50: number; p99: number; max: number; mean: number } | null;
  };
  messages: {
    sent: number;
    received: number;
    /** Echoes received per second. */
    perSecond: number;
    /** Payload bytes sent and received. */
    bytesSent: number;
    bytesReceived: number;
    /** Payload MiB per second, both directions together. */
    mibPerSecond: number;
  };
  /** Round trips whose echo matched; in open loop measured from the intended send time. */
  latency: LatencySummary;
  /** Open loop only. */
  schedule: { ratePerSecond: number; lateSends: number; lateThresholdMs: number; maxSendLagMs: number } | null;
  errors: { total: number; byCause: BenchError[] };
  /** This process's CPU (all threads) from the start until sending stopped. */
  cpu: {
    userSeconds: number;
    systemSeconds: number;
    /** Percent of one core. */
    percentOfCore: number;
    /** CPU time per round trip (one send and one echo), in microseconds. */
    microsecondsPerRoundTrip: number;
    /** Above `CPU_SATURATED_PERCENT`: the bench, not the server, may have set the pace. */
    saturated: boolean;
    /**
     * How late this process's event loop ran (sampled every 10 ms): a long delay is time the
     * bench itself could not send or read, from GC or from the OS not scheduling it.
     */
    eventLoopDelayP99Ms: number;
    eventLoopDelayMaxMs: number;
  };
  warnings: string[];
}

/** Above this share of one core the bench warns that it may be the bottleneck. */
export const CPU_SATURATED_PERCENT = 90;
/** Sampling interval of the event-loop delay monitor. */
const LOOP_DELAY_RESOLUTION_MS = 10;
/** An event-loop stall longer than this gets a warning. */
const LOOP_STALL_WARN_MS = 100;
/** After the run stops, echoes still in flight get this long to arrive. */
const DRAIN_MS = 2000;
/** After our close 1000, a connection that does not finish closing in this time is cut. */
const CLOSE_GRACE_MS = 2000;

/** Runs a load test to its end. Rejects only for bad options (`BenchOptionError`); failures are counted in the result. */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  return new BenchRun(validateBenchOptions(options)).run();
}

class BenchRun implements ConnectionHost {
  readonly url: string;
  readonly subprotocols: string[];
  readonly clientOptions: ClientOptions;
  readonly size: number;
  readonly binary: boolean;
  readonly compress: boolean;
  readonly closedLoop: boolean;
  readonly messages: number;
  readonly intervalMs: number;
  readonly histogram = new Histogram();
  readonly totals: BenchTotals = { sent: 0, received: 0, lastEchoAt: 0, late: 0, maxLagMs: 0 };
  readonly errors = new BenchErrorTally();
  sending = true;

  private readonly conns: BenchConnection[] = [];
  private nextToOpen = 0;
  private opening = false;
  private handshakes = 0;
  private endedCount = 0;
  private startedAt = 0;
  private stoppedAt = 0;
  private stoppedBy: BenchResult['stoppedBy'] = 'duration';
  private cpuStart: NodeJS.CpuUsage = { user: 0, system: 0 };
  private cpu: NodeJS.CpuUsage = { user: 0, system: 0 };
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  private scheduler: OpenLoopScheduler | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private rampTimer: NodeJS.Timeout | undefined;
  private stopped!: () => void;
  private readonly closing = new Set<BenchConnection>();
  private allClosed: (() => void) | undefined;

  constructor(private readonly opts: BenchSettings) {
    this.url = opts.url;
    this.subprotocols = [...opts.subprotocols];
    this.clientOptions = {
      headers: { ...opts.headers },
      origin: opts.origin,
      // ws offers permessage-deflate unless told not to; a benchmark should measure framing, not zlib.
      perMessageDeflate: opts.compress,
      rejectUnauthorized: !opts.insecure,
      handshakeTimeout: opts.connectTimeoutSeconds * 1000,
      followRedirects: false,
    };
    this.size = opts.size;
    this.binary = opts.binary;
    this.compress = opts.compress;
    this.closedLoop = opts.ratePerSecond === undefined;
    this.messages = opts.messagesPerConnection ?? Infinity;
    this.intervalMs = opts.ratePerSecond === undefined ? Infinity : 1000 / opts.ratePerSecond;
    for (let i = 0; i < opts.connections; i++) this.conns.push(new BenchConnection(i, this));
  }

  async run(): Promise<BenchResult> {
    const opts = this.opts;
    const stopped = new Promise<void>((resolve) => (this.stopped = resolve));
    this.startedAt = performance.now();
    this.cpuStart = process.cpuUsage();
    this.loopDelay.enable();
    if (!this.closedLoop) this.scheduler = new OpenLoopScheduler(this.startedAt, this.intervalMs, opts.connections);
    if (opts.durationSeconds !== undefined) this.timer(() => this.stop('duration'), opts.durationSeconds * 1000);
    if (opts.signal?.aborted) this.stop('aborted');
    const onAbort = () => this.stop('aborted');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const progress = opts.onProgress ? this.startProgress(opts.onProgress, opts.progressIntervalMs) : undefined;
    const watchdog = this.startWatchdog();

    this.openMore();
    await stopped;
    clearInterval(progress);
    clearInterval(watchdog);
    opts.signal?.removeEventListener('abort', onAbort);

    await this.drain();
    for (const c of this.conns) if (c.state === 'open' && c.outstanding > 0) this.errors.add('echo', PH_BENCH_NO_ECHO, undefined, c.outstanding);
    const finishedAt = Math.max(this.stoppedAt, this.totals.lastEchoAt);
    await this.closeAll();
    return this.result(finishedAt);
  }

  // --- ConnectionHost ---

  handshakeEnded(): void {
    this.handshakes--;
    this.openMore();
  }

  schedule(c: BenchConnection, now: number): void {
    this.scheduler?.add(c, now);
  }

  ended(): void {
    this.endedCount++;
    if (this.endedCount === this.conns.length) {
      this.stop(this.conns.some((c) => c.state === 'done') ? 'messages' : 'no-open-connections');
    }
  }

  closed(c: BenchConnection): void {
    this.closing.delete(c);
    if (!this.closing.size) this.allClosed?.();
  }

  // --- the run ---

  /** Starts handshakes: up to `maxHandshakes` in flight, and with a ramp, only those whose time has come. */
  private openMore(): void {
    // A connection that fails synchronously calls back into here: the loop below carries on instead of recursing.
    if (this.opening) return;
    this.opening = true;
    try {
      this.openLoop();
    } finally {
      this.opening = false;
    }
  }

  private openLoop(): void {
    const { rampPerSecond, maxHandshakes } = this.opts;
    while (this.sending && this.nextToOpen < this.conns.length && this.handshakes < maxHandshakes) {
      if (rampPerSecond !== undefined) {
        const due = this.startedAt + (this.nextToOpen * 1000) / rampPerSecond;
        const wait = due - performance.now();
        if (wait > 0) {
          if (!this.rampTimer) {
            this.rampTimer = this.timer(() => {
              this.rampTimer = undefined;
              this.openMore();
            }, wait);
          }
          return;
        }
      }
      this.handshakes++;
      this.conns[this.nextToOpen++].connect();
    }
  }

  private stop(why: BenchResult['stoppedBy']): void {
    if (!this.sending) return;
    this.sending = false;
    this.stoppedAt = performance.now();
    this.cpu = process.cpuUsage(this.cpuStart);
    this.loopDelay.disable();
    this.stoppedBy = why;
    this.scheduler?.stop();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    // A handshake still in flight will not be measured: abandon it now rather than let it open during the drain.
    for (const c of this.conns) if (c.state === 'connecting') c.close();
    this.stopped();
  }

  /** Waits for the echoes still in flight, up to DRAIN_MS. */
  private async drain(): Promise<void> {
    const deadline = performance.now() + DRAIN_MS;
    while (performance.now() < deadline && this.conns.some((c) => (c.state === 'open' || c.state === 'done') && c.outstanding > 0)) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Close 1000 to every connection (and abandon handshakes in flight); cut those that do not finish closing in time. */
  private async closeAll(): Promise<void> {
    for (const c of this.conns) {
      if (c.state === 'open' || c.state === 'done') {
        c.close();
        this.closing.add(c);
      }
    }
    if (!this.closing.size) return;
    await new Promise<void>((resolve) => {
      this.allClosed = resolve;
      const t = setTimeout(() => {
        for (const c of this.closing) c.terminate();
        resolve();
      }, CLOSE_GRACE_MS);
      t.unref();
    });
  }

  /**
   * Stops a run that no longer moves: messages are outstanding but no echo came for `stallSeconds`
   * (a server that swallows a message would otherwise hold a closed loop, and a run with
   * --messages and no --duration, forever).
   */
  private startWatchdog(): NodeJS.Timeout {
    const stallMs = this.opts.stallSeconds * 1000;
    let lastReceived = -1;
    let lastChange = performance.now();
    const t = setInterval(() => {
      const now = performance.now();
      if (this.totals.received !== lastReceived) {
        lastReceived = this.totals.received;
        lastChange = now;
      } else if (now - lastChange >= stallMs && this.conns.some((c) => c.state === 'open' && c.outstanding > 0)) {
        this.stop('stalled');
      }
    }, Math.min(1000, stallMs / 4));
    t.unref();
    return t;
  }

  private startProgress(report: (p: BenchProgress) => void, everyMs: number): NodeJS.Timeout {
    let lastAt = this.startedAt;
    let lastReceived = 0;
    const t = setInterval(() => {
      const now = performance.now();
      const received = this.totals.received;
      report({
        elapsedSeconds: (now - this.startedAt) / 1000,
        open: this.conns.reduce((n, c) => n + (c.state === 'open' || c.state === 'done' ? 1 : 0), 0),
        sent: this.totals.sent,
        received,
        receivedPerSecond: ((received - lastReceived) * 1000) / (now - lastAt),
        p50Ms: this.histogram.percentile(50) / 1000,
        p99Ms: this.histogram.percentile(99) / 1000,
        errors: this.errors.total,
      });
      lastAt = now;
      lastReceived = received;
    }, everyMs);
    t.unref();
    return t;
  }

  /** The monitor's samples are in ns and include its 10 ms sampling interval; NaN when the run was too short to sample. */
  private loopDelayMs(ns: number): number {
    return Math.max(0, ns / 1e6 - LOOP_DELAY_RESOLUTION_MS);
  }

  private timer(fn: () => void, ms: number): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private result(finishedAt: number): BenchResult {
    const opts = this.opts;
    const elapsed = Math.max(finishedAt - this.startedAt, 1e-3) / 1000;
    const { sent, received } = this.totals;
    const h = this.histogram;
    const ms = (us: number) => us / 1000;

    const connectTimes = Float64Array.from(this.conns.filter((c) => !Number.isNaN(c.connectMs)), (c) => c.connectMs).sort();
    const at = (p: number) => connectTimes[Math.min(connectTimes.length - 1, Math.max(0, Math.ceil((p / 100) * connectTimes.length) - 1))];

    const cpuWall = Math.max(this.stoppedAt - this.startedAt, 1e-3) / 1000;
    const cpuSeconds = (this.cpu.user + this.cpu.system) / 1e6;
    const percentOfCore = (cpuSeconds / cpuWall) * 100;
    const warnings: string[] = [];
    if (percentOfCore > CPU_SATURATED_PERCENT) {
      warnings.push(
        `the bench used ${percentOfCore.toFixed(0)}% of one CPU core: it may have been the bottleneck, so these figures can understate the server; ` +
          'use fewer connections, a lower --rate, or several bench processes',
      );
    }
    const loopMaxMs = this.loopDelayMs(this.loopDelay.count ? this.loopDelay.max : NaN);
    if (loopMaxMs > LOOP_STALL_WARN_MS) {
      warnings.push(
        `the bench's own event loop stalled for up to ${loopMaxMs.toFixed(0)} ms (GC, or the OS not running it: other busy processes on these cores?); ` +
          'latencies of that size may be the bench, not the server',
      );
    }
    const opened = this.conns.filter((c) => !Number.isNaN(c.connectMs)).length;
    if (opened < opts.connections && this.errors.total === 0) {
      warnings.push(`only ${opened} of ${opts.connections} connections opened before the run ended`);
    }
    const lateSends = this.totals.late;
    if (!this.closedLoop && sent > 0 && lateSends / sent > 0.01) {
      warnings.push(`${lateSends} of ${sent} sends (${((lateSends / sent) * 100).toFixed(1)}%) left over ${LATE_SEND_MS} ms late: the bench could not keep the schedule`);
    }

    return {
      url: this.url,
      settings: {
        connections: opts.connections,
        rampPerSecond: opts.rampPerSecond ?? null,
        size: opts.size,
        binary: opts.binary,
        ratePerSecond: opts.ratePerSecond ?? null,
        durationSeconds: opts.durationSeconds ?? null,
        messagesPerConnection: opts.messagesPerConnection ?? null,
        compress: opts.compress,
      },
      mode: this.closedLoop ? 'closed-loop' : 'open-loop',
      stoppedBy: this.stoppedBy,
      elapsedSeconds: elapsed,
      connections: {
        target: opts.connections,
        opened,
        failed: this.conns.filter((c) => c.state === 'failed').length,
        lost: this.conns.filter((c) => c.state === 'lost').length,
        connectMs: connectTimes.length
          ? { count: connectTimes.length, p50: at(50), p99: at(99), max: connectTimes[connectTimes.length - 1], mean: connectTimes.reduce((a, b) => a + b, 0) / connectTimes.length }
          : null,
      },
      messages: {
        sent,
        received,
        perSecond: received / elapsed,
        bytesSent: sent * opts.size,
        bytesReceived: received * opts.size,
        mibPerSecond: ((sent + received) * opts.size) / elapsed / (1024 * 1024),
      },
      latency: {
        count: h.count,
        minMs: ms(h.min),
        p50Ms: ms(h.percentile(50)),
        p90Ms: ms(h.percentile(90)),
        p99Ms: ms(h.percentile(99)),
        p999Ms: ms(h.percentile(99.9)),
        maxMs: ms(h.max),
        meanMs: ms(h.mean),
      },
      schedule: this.closedLoop
        ? null
        : { ratePerSecond: opts.ratePerSecond!, lateSends, lateThresholdMs: LATE_SEND_MS, maxSendLagMs: this.totals.maxLagMs },
      errors: { total: this.errors.total, byCause: this.errors.list() },
      cpu: {
        userSeconds: this.cpu.user / 1e6,
        systemSeconds: this.cpu.system / 1e6,
        percentOfCore,
        microsecondsPerRoundTrip: received ? (cpuSeconds * 1e6) / received : NaN,
        saturated: percentOfCore > CPU_SATURATED_PERCENT,
        eventLoopDelayP99Ms: this.loopDelayMs(this.loopDelay.count ? this.loopDelay.percentile(99) : NaN),
        eventLoopDelayMaxMs: loopMaxMs,
      },
      warnings,
    };
  }
}
