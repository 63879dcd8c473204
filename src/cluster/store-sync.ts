/**
 * Keeps this node's registry in step with the shared one in Redis: every
 * change published by any node is applied here in version order; a gap in
 * the versions, a reconnect after an outage, or a change of epoch reads the
 * whole registry again ("resync by version"). A Redis that lost the registry
 * (restarted without persistence) gets this node's copy back, so nothing
 * acknowledged is lost while one node still holds it.
 *
 * Changes are applied inside the registry's queue, so they never interleave
 * with a registration made through this node's API.
 */
import type { AppRegistry } from '../admin/registry.js';
import type { AppConfig } from '../config/schema.js';
import { emit } from '../events.js';
import type { StoredApp } from '../store/file-store.js';
import type { RedisStore, StoreChange } from '../store/redis-store.js';
import type { Cluster } from './cluster.js';

export class StoreSync {
  private offs: (() => void)[] = [];
  private resyncing: Promise<void> | undefined;
  private wasDown = false;

  constructor(
    private readonly store: RedisStore,
    private readonly registry: AppRegistry,
    private readonly cluster: Cluster,
  ) {}

  start(): void {
    this.offs.push(this.store.onChange((c) => void this.onChange(c)));
    this.offs.push(
      this.store.onState((up) => {
        if (!up) {
          if (!this.wasDown) emit('cluster', { action: 'store_down', node: this.cluster.node, message: `the store at ${this.store.safeUrl} cannot be reached: serving from the last registry (version ${this.store.version}); changes through the API get 503` });
          this.wasDown = true;
          return;
        }
        if (this.wasDown) emit('cluster', { action: 'store_up', node: this.cluster.node, message: `the store at ${this.store.safeUrl} is back` });
        this.wasDown = false;
        void this.resync().catch(() => {});
      }),
    );
    // Whatever changed between the load and the subscription.
    void this.resync().catch(() => {});
  }

  stop(): void {
    for (const off of this.offs) off();
    this.offs = [];
  }

  /** What the node an app moved from said about it: it ran there, so it runs here too. */
  private wasRunning(moves: Map<string, string | undefined>): (app: AppConfig) => boolean {
    return (app) => {
      const from = moves.get(app.name);
      const st = from ? this.cluster.remoteStatus(from, app.name) : undefined;
      return st !== undefined && st.state !== 'stopped' && st.state !== 'failed';
    };
  }

  private onChange(change: StoreChange): Promise<void> {
    return this.registry.exclusive(async () => {
      if (change.op === 'reseed' || change.epoch !== this.store.epoch) return this.resyncNow();
      if (change.v <= this.store.version) return; // this node wrote it, or already read it
      if (change.v !== this.store.version + 1) return this.resyncNow();
      if (change.op === 'place' && change.name) {
        const name = change.name;
        const moves = new Map([[name, this.store.placement.get(name)]]);
        this.store.version = change.v;
        await this.registry.adopt({
          changes: new Map(),
          place: () => (change.node ? this.store.placement.set(name, change.node) : this.store.placement.delete(name)),
          wasRunning: this.wasRunning(moves),
        });
      } else if ((change.op === 'put' || change.op === 'delete') && change.name) {
        const name = change.name;
        this.store.version = change.v;
        await this.registry.adopt({ changes: new Map([[name, change.op === 'put' ? change.app : undefined]]), place: () => change.op === 'delete' && this.store.placement.delete(name) });
      } else return this.resyncNow();
      this.cluster.beatNow();
    });
  }

  /** Reads the whole registry again if it is at another version (or epoch) than this node's. */
  resync(): Promise<void> {
    this.resyncing ??= this.registry.exclusive(() => this.resyncNow()).finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  /** resync() for a caller already inside the registry's queue (a write that met a newer registry). */
  resyncHeld(): Promise<void> {
    return this.resyncNow();
  }

  private async resyncNow(): Promise<void> {
    const snap = await this.store.snapshot();
    if (snap.epoch === this.store.epoch && snap.version === this.store.version) return;
    if (snap.epoch !== this.store.epoch && this.store.epoch !== '' && snap.version < this.store.version) {
      // Redis lost the registry (or holds an older one): this node's copy is the newer one.
      const mine = this.registry.storedApps();
      const wrote = await this.store.reseed(mine, this.store.placement, this.store.version);
      if (wrote) {
        emit('cluster', { action: 'reseed', node: this.cluster.node, version: this.store.version, message: `the store had lost the registry: wrote this node's ${mine.length} app(s) back (version ${this.store.version})` });
        return;
      }
      return this.resyncNow();
    }
    const moves = new Map<string, string | undefined>();
    for (const [app, node] of snap.placement) if (this.store.placement.get(app) !== node) moves.set(app, this.store.placement.get(app));
    const from = this.store.version;
    this.store.version = snap.version;
    this.store.epoch = snap.epoch;
    await this.registry.adopt({
      changes: new Map(snap.apps.map((a): [string, StoredApp] => [a.name, a])),
      whole: true,
      place: () => (this.store.placement = snap.placement),
      wasRunning: this.wasRunning(moves),
    });
    emit('cluster', { action: 'resync', node: this.cluster.node, version: snap.version, message: `read the registry again: version ${from} → ${snap.version}` });
    this.cluster.beatNow();
  }
}
