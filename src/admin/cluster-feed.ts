/**
 * The cluster view for the live feed (`GET /_porthole/api/live`): one
 * watcher per admin API, shared by every open stream, that tells them when
 * the view changes (a node up or down, the leader, the store up or down, the
 * registry version) and when another node's heartbeat brings new app states.
 *
 * The store's state, the lease and the version change with no event of this
 * gateway's own to hang a send on, so the view is compared every
 * CLUSTER_EVERY_MS while a stream is open: once, however many dashboards
 * are open.
 */

/** How often the view is compared with the one last sent. */
export const CLUSTER_EVERY_MS = 250;

export interface ClusterFeedListener {
  /** The view changed: the new one. */
  view(view: Record<string, unknown>): void;
  /** Another node published new app states (or came or went): the apps are worth sending again. */
  nodes(): void;
}

export class ClusterFeed {
  readonly #listeners = new Set<ClusterFeedListener>();
  #timer: NodeJS.Timeout | undefined;
  #offChange: (() => void) | undefined;
  #key: string | undefined;
  #view: Record<string, unknown> | undefined;

  constructor(
    private readonly read: () => Record<string, unknown>,
    private readonly onChange?: (fn: () => void) => () => void,
  ) {}

  /** The view now. A change it finds is told to the streams already open, as the timer would. */
  current(): Record<string, unknown> {
    this.#check();
    return this.#view!;
  }

  /** Follows the changes until the returned function is called. */
  watch(listener: ClusterFeedListener): () => void {
    this.#listeners.add(listener);
    if (!this.#timer) {
      this.#timer = setInterval(() => this.#check(), CLUSTER_EVERY_MS);
      this.#timer.unref();
      this.#offChange = this.onChange?.(() => {
        this.#check();
        for (const l of [...this.#listeners]) l.nodes();
      });
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size) return;
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#offChange?.();
      this.#offChange = undefined;
    };
  }

  #check(): void {
    const view = this.read();
    const key = clusterKey(view);
    if (key === this.#key) return;
    this.#key = key;
    this.#view = view;
    for (const l of [...this.#listeners]) l.view(view);
  }
}

/** The view as compared: without an up node's `last_seen`, which moves with every heartbeat. */
export function clusterKey(view: Record<string, unknown>): string {
  const nodes = Array.isArray(view.nodes) ? view.nodes.map((n: Record<string, unknown>) => ({ ...n, last_seen: n.up ? null : n.last_seen })) : view.nodes;
  return JSON.stringify({ ...view, nodes });
}
