/**
 * When each app was last used: its requests in flight and the time the last
 * one ended (or a WebSocket handshake began, or a tunnel closed). `idle_stop`
 * reads it (src/admin/app-sleep.ts); open tunnels are not counted here, the
 * gateway's tunnel and bridge sets already hold them.
 *
 * It sits on the hot path of every request: one Map lookup when it begins,
 * two field writes and a clock read when it ends; no I/O, no lock, no event,
 * no allocation after an app's first request.
 */

/** One app's use. `last` is on the `performance.now()` clock (monotonic: a wall-clock change does not wake or stop apps). */
export interface AppUse {
  inflight: number;
  last: number;
}

export class AppActivity {
  readonly #apps = new Map<string, AppUse>();

  /** A request for `app` is forwarded: pass what this returns to `end` when it is over. */
  begin(app: string): AppUse {
    const use = this.#use(app);
    use.inflight++;
    return use;
  }

  end(use: AppUse): void {
    use.inflight--;
    use.last = performance.now();
  }

  /** Use that is over as soon as it began: a WebSocket handshake (its tunnel is counted while open), a tunnel's close. */
  touch(app: string): void {
    this.#use(app).last = performance.now();
  }

  /** The app's use, or undefined when nothing asked for it since the gateway started. */
  get(app: string): Readonly<AppUse> | undefined {
    return this.#apps.get(app);
  }

  #use(app: string): AppUse {
    let use = this.#apps.get(app);
    if (use === undefined) {
      use = { inflight: 0, last: 0 };
      this.#apps.set(app, use);
    }
    return use;
  }
}
