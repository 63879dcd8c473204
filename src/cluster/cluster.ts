/**
 * A node of a cluster: its heartbeat, what it knows of the other nodes, the
 * lease that lets one node place the `node: any` apps, and where every app
 * runs. The registry asks it who runs an app (`ownerOf`), how to reach
 * another node (`peerOf`), and whether that node is up (`nodeGate`).
 *
 * Redis keys (under the store's prefix):
 *   `{p}node:{name}`  the heartbeat: JSON, expires after `heartbeat_ttl`
 *   `{p}nodes`        hash name → JSON: every node ever seen (a node that is
 *                     gone stays listed as down until `porthole nodes forget`)
 *   `{p}leader`       the placement lease (SET NX PX)
 *   `{p}secret`       the peer listeners' shared secret, unless a file gives it
 *
 * While Redis cannot be reached a node keeps what it last knew: it marks no
 * node down that it cannot see (the others judge it; see docs/cluster.md).
 */
import { randomBytes } from 'node:crypto';
import type { AppStatus } from '../apps/supervisor.js';
import { readPrivateFile } from '../config/private-file.js';
import { NODE_NAME, type AppConfig } from '../config/schema.js';
import { AppUnknownError, ConflictError, NodeDownError, NodeNameTakenError, type PortholeError } from '../errors.js';
import { emit } from '../events.js';
import { RECONNECT_MAX_MS, type RedisStore } from '../store/redis-store.js';

/** What a node publishes about itself with every heartbeat. */
export interface NodeBeat {
  name: string;
  /** Changes on every start: tells a restarted node from the one before it. */
  instance: string;
  /** host:port of its peer listener. */
  advertise: string;
  /** Its public gateway URL, for the dashboard's links. */
  url?: string;
  started_at: string;
  /** Its registry version. */
  version: number;
  /** Its apps' states, by name (the apps it runs). */
  apps: Record<string, Pick<AppStatus, 'state' | 'pid' | 'ready' | 'restarts' | 'last_exit' | 'started_at' | 'message' | 'port' | 'ws_port'>>;
}

/** A node as the API shows it. */
export interface NodeView {
  name: string;
  up: boolean;
  self: boolean;
  leader: boolean;
  advertise: string | null;
  url: string | null;
  started_at: string | null;
  /** When this node last saw its heartbeat (ISO 8601), null if never. */
  last_seen: string | null;
  version: number | null;
  /** The apps it runs (by the registry: `node` and placement). */
  apps: string[];
}

export interface PeerTarget {
  node: string;
  url: string;
  secret: string;
}

export interface ClusterOptions {
  store: RedisStore;
  node: string;
  /** host:port the other nodes reach this node's peer listener at. */
  advertise: string;
  ttlMs: number;
  /** A file with the peer secret; default: made once and kept in Redis. */
  secretFile?: string;
  /** This node's public URL (set once it listens). */
  url?: () => string | undefined;
  /** The statuses of the apps this node runs, for its heartbeat. */
  localApps: () => AppStatus[];
  /** The registry's version (for the heartbeat and the API). */
  version: () => number;
  /** The apps of the shared registry now (for placement). */
  apps: () => readonly AppConfig[];
}

interface Known {
  beat: NodeBeat | null;
  up: boolean;
  lastSeen: number | null;
}

export class Cluster {
  readonly node: string;
  readonly instance = randomBytes(6).toString('hex');
  readonly store: RedisStore;
  readonly ttlMs: number;
  /** app → node, for `node: any` apps (the store keeps it, the store sync applies changes to it). */
  get placement(): Map<string, string> {
    return this.store.placement;
  }
  private secretValue = '';
  private readonly known = new Map<string, Known>();
  private readonly opts: ClusterOptions;
  private timers: NodeJS.Timeout[] = [];
  private beatSoon: NodeJS.Timeout | undefined;
  private leading = false;
  private readonly changeListeners = new Set<() => void>();
  private closed = false;
  private offState: (() => void) | undefined;

  constructor(options: ClusterOptions) {
    this.opts = options;
    this.node = options.node;
    this.store = options.store;
    this.ttlMs = options.ttlMs;
  }

  get secret(): string {
    return this.secretValue;
  }
  get leader(): boolean {
    return this.leading;
  }
  get pollMs(): number {
    return Math.max(100, Math.min(1_000, Math.floor(this.ttlMs / 5)));
  }

  /**
   * Joins: reads (or makes) the peer secret, refuses a name a live node
   * already has (after waiting out the heartbeat of this node's previous
   * run), beats once, and starts the heartbeat and the watch of the others.
   */
  async join(): Promise<void> {
    const r = this.store.redis;
    if (this.opts.secretFile) {
      // The key to every node's admin API: not for every user of the machine.
      this.secretValue = readPrivateFile(this.opts.secretFile, 'the cluster secret');
    }
    else {
      await r.set(this.store.key('secret'), randomBytes(24).toString('base64url'), 'NX');
      this.secretValue = (await r.get(this.store.key('secret'))) ?? '';
    }
    if (this.secretValue.length < 16) throw new Error(`the cluster secret${this.opts.secretFile ? ` in ${this.opts.secretFile}` : ''} is shorter than 16 characters`);
    const deadline = Date.now() + this.ttlMs + 1_000;
    for (;;) {
      // Claimed atomically (SET NX): of two nodes started together under one name, one gets it.
      const key = this.store.key(`node:${this.node}`);
      if ((await r.set(key, JSON.stringify(this.beatBody()), 'PX', this.ttlMs, 'NX')) === 'OK') break;
      const raw = await r.get(key);
      if (raw === null) continue; // expired between the two: claim it again
      const other = (safeJson(raw) ?? {}) as Partial<NodeBeat>;
      if (other.instance === this.instance) break;
      // A previous run of this node (kill -9) leaves a heartbeat that expires within the TTL.
      if (Date.now() > deadline) {
        throw new NodeNameTakenError(`another live node is named ${this.node} (it advertises ${other.advertise}, started ${other.started_at}): give this one another name with --node`);
      }
      await sleep(Math.min(250, this.ttlMs / 4));
    }
    await this.beat();
    await this.watch();
    this.offState = this.store.onState((up) => this.onStoreState(up));
    const every = Math.max(50, Math.floor(this.ttlMs / 3));
    this.timers.push(setInterval(() => void this.beat().catch(() => {}), every));
    this.timers.push(setInterval(() => void this.tick().catch(() => {}), this.pollMs));
    for (const t of this.timers) t.unref();
    emit('cluster', { action: 'joined', node: this.node, nodes: this.upNodes().length });
  }

  /** A heartbeat now (soon, when called often): app states changed. */
  beatNow(): void {
    if (this.beatSoon || this.closed) return;
    this.beatSoon = setTimeout(() => {
      this.beatSoon = undefined;
      void this.beat().catch(() => {});
    }, 100);
    this.beatSoon.unref();
  }

  /** This node's heartbeat as it is now. */
  private beatBody(): NodeBeat {
    const apps: NodeBeat['apps'] = {};
    for (const s of this.opts.localApps()) {
      apps[s.name] = { state: s.state, pid: s.pid, ready: s.ready, restarts: s.restarts, last_exit: s.last_exit, started_at: s.started_at, ...(s.message ? { message: s.message } : {}), ...(s.port !== undefined ? { port: s.port } : {}), ...(s.ws_port !== undefined ? { ws_port: s.ws_port } : {}) };
    }
    return { name: this.node, instance: this.instance, advertise: this.opts.advertise, url: this.opts.url?.(), started_at: this.started, version: this.opts.version(), apps };
  }

  private async beat(): Promise<void> {
    if (this.closed) return;
    const beat = this.beatBody();
    const body = JSON.stringify(beat);
    const r = this.store.redis;
    try {
      const m = r.multi().set(this.store.key(`node:${this.node}`), body, 'PX', this.ttlMs).hset(this.store.key('nodes'), this.node, JSON.stringify({ advertise: this.opts.advertise, first_seen: this.started }));
      // A Redis restarted without persistence lost the secret too: written back, or a node that
      // joins next would make another one and the peer listeners would refuse each other. When
      // another node wrote it back first, its secret is taken: one secret for the whole cluster.
      if (!this.opts.secretFile) m.set(this.store.key('secret'), this.secretValue, 'NX').get(this.store.key('secret'));
      const replies = await m.exec();
      const stored = this.opts.secretFile ? undefined : replies?.[3]?.[1];
      if (typeof stored === 'string' && stored.length >= 16 && stored !== this.secretValue) {
        this.secretValue = stored;
        emit('cluster', { action: 'secret', node: this.node, message: 'took the cluster secret another node wrote back into the store' });
      }
      this.store.noteResult(true);
    } catch (err) {
      this.store.noteResult(false);
      throw err;
    }
    this.record(this.node, beat);
  }
  private readonly started = new Date().toISOString();

  /** Reads every node's heartbeat; takes or renews the lease; the leader places `node: any` apps. */
  private async tick(): Promise<void> {
    if (this.closed) return;
    try {
      await this.watch();
      await this.lease();
      if (this.leading) await this.place();
    } catch {
      this.store.noteResult(false);
      // Without Redis this node cannot renew the lease: it stops acting as the leader at once.
      if (this.leading) this.setLeading(false);
      if (this.leaderName === this.node) this.leaderName = null;
    }
  }

  /** Reads every node's heartbeat now. */
  refresh(): Promise<void> {
    return this.watch();
  }

  private async watch(): Promise<void> {
    const r = this.store.redis;
    // The nodes seen before count too: a Redis restarted without persistence has lost the hash,
    // and forgetting a node would refuse its apps' traffic as "not part of this cluster".
    // A name no node could have (NODE_NAME, not "any") is not one: written into Redis by something else.
    const listed = new Set(Object.keys(await r.hgetall(this.store.key('nodes'))).filter((n) => NODE_NAME.test(n) && n !== 'any'));
    const names = [...new Set([...listed, ...this.known.keys(), this.node])];
    const beats = await r.mget(...names.map((n) => this.store.key(`node:${n}`)));
    this.store.noteResult(true);
    // Just after the store came back, a missing heartbeat says nothing yet: it expired (or was lost)
    // while nobody could write it, and every live node writes it again within the grace.
    const grace = Date.now() < this.graceUntil;
    let changed = false;
    names.forEach((name, i) => {
      const beat = beats[i] ? this.readBeat(name, beats[i]!) : null;
      const before = this.known.get(name);
      if (beat) changed = this.record(name, beat) || changed;
      else if (!before || (before.up && !grace)) {
        this.known.set(name, { beat: before?.beat ?? null, up: false, lastSeen: before?.lastSeen ?? null });
        if (before?.up) emit('cluster', { action: 'node_down', node: name, message: `node ${name} is down: no heartbeat for ${(this.ttlMs / 1000).toFixed(1)} s` });
        changed = true;
      }
    });
    // A node no longer listed and down was forgotten (`porthole nodes --forget`, through any node).
    // One that is up stays: the list went with Redis's data, and its next heartbeat lists it again.
    for (const name of names) {
      if (name !== this.node && !listed.has(name) && this.known.get(name)?.up === false) (this.known.delete(name), (changed = true));
    }
    if (changed) this.changed();
  }

  /**
   * The store was unreachable and is back: this node beats at once, and for
   * one TTL plus one reconnect interval (the others reconnect and beat
   * within it) no node is judged down for a missing heartbeat.
   */
  private onStoreState(up: boolean): void {
    if (!up) {
      this.storeWasDown = true;
      return;
    }
    if (!this.storeWasDown) return;
    this.storeWasDown = false;
    this.graceUntil = Date.now() + this.ttlMs + RECONNECT_MAX_MS;
    this.beatNow();
  }
  private storeWasDown = false;
  private graceUntil = 0;

  /**
   * A heartbeat as read from Redis, or null when it is not one this node can
   * use (another Porthole version, a hand edit, a write by someone else):
   * that node is then down for this node, as without a heartbeat. Nothing
   * in one heartbeat may break the routes or the API of every other node.
   */
  private readBeat(name: string, raw: string): NodeBeat | null {
    const beat = safeJson(raw) as Partial<NodeBeat> | null;
    const problem =
      beat === null || typeof beat !== 'object' || Array.isArray(beat)
        ? 'it is not a JSON object'
        : typeof beat.advertise !== 'string' || !isHostPort(beat.advertise)
          ? 'its advertise is not host:port'
          : beat.apps === null || typeof beat.apps !== 'object' || Array.isArray(beat.apps)
            ? 'it has no apps'
            : typeof beat.instance !== 'string'
              ? 'it has no instance'
              : undefined;
    if (problem) {
      if (!this.unreadable.has(name)) emit('error', { code: 'PH_ERR_NODE_DOWN', message: `node ${name}: its heartbeat in the store cannot be used (${problem}): the node counts as down` });
      this.unreadable.add(name);
      return null;
    }
    this.unreadable.delete(name);
    const url = typeof beat!.url === 'string' && /^https?:\/\//.test(beat!.url) ? beat!.url : undefined;
    return { ...(beat as NodeBeat), url, version: typeof beat!.version === 'number' ? beat!.version : 0 };
  }
  /** Nodes whose heartbeat could not be used (told once). */
  private readonly unreadable = new Set<string>();

  /** Returns whether the node's state (up, address, apps) changed. */
  private record(name: string, beat: NodeBeat): boolean {
    const before = this.known.get(name);
    this.known.set(name, { beat, up: true, lastSeen: Date.now() });
    if (!before?.up && name !== this.node) emit('cluster', { action: 'node_up', node: name, message: `node ${name} is up at ${beat.advertise}` });
    return !before?.up || before.beat?.advertise !== beat.advertise || JSON.stringify(before.beat?.apps) !== JSON.stringify(beat.apps);
  }

  private async lease(): Promise<void> {
    const r = this.store.redis;
    const key = this.store.key('leader');
    // Taken when free, renewed only while it is still ours (compare and extend, atomically); answers who holds it.
    const holder = (await r.eval(
      "if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return ARGV[1] end if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return ARGV[1] end return redis.call('GET', KEYS[1]) or ''",
      1,
      key,
      this.node,
      this.ttlMs,
    )) as string;
    this.leaderName = holder || null;
    this.setLeading(holder === this.node);
  }
  /** The node holding the placement lease, as last seen. */
  private leaderName: string | null = null;

  private setLeading(on: boolean): void {
    if (on === this.leading) return;
    this.leading = on;
    emit('cluster', { action: on ? 'leader' : 'follower', node: this.node });
  }

  /**
   * The leader's pass: every `node: any` app with a process that is placed
   * nowhere, or on a node that is down, goes to the live node that runs the
   * fewest apps. An app never moves back on its own.
   */
  private async place(): Promise<void> {
    const up = this.upNodes();
    if (!up.length) return;
    const apps = this.opts.apps();
    const load = new Map(up.map((n) => [n, 0]));
    for (const app of apps) {
      const owner = this.ownerOf(app);
      if (owner && load.has(owner)) load.set(owner, load.get(owner)! + 1);
    }
    for (const app of apps) {
      if (app.node !== 'any' || !app.cmd) continue;
      const current = this.placement.get(app.name);
      if (current && this.isUp(current)) continue;
      const target = [...load.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))[0][0];
      if (await this.store.place(app.name, target, undefined)) {
        load.set(target, load.get(target)! + 1);
        emit('cluster', { action: 'placed', node: target, app: app.name, message: current ? `app ${app.name} moved from node ${current} (down) to node ${target}` : `app ${app.name} placed on node ${target}` });
      }
    }
  }

  /** The node that runs the app: its `node`, its placement (`any`), or undefined (not placed yet). */
  ownerOf(app: AppConfig): string | undefined {
    const node = app.node ?? 'any';
    if (node !== 'any') return node;
    // An app Porthole does not run, reachable from everywhere: every node routes to it itself.
    if (!app.cmd) return this.node;
    return this.placement.get(app.name);
  }

  isUp(node: string): boolean {
    return this.known.get(node)?.up ?? false;
  }

  /** Whether a node of this name was ever seen (an app's `node` must name one, or `any`). */
  isKnown(node: string): boolean {
    return this.known.has(node);
  }

  upNodes(): string[] {
    return [...this.known.entries()].filter(([, k]) => k.up).map(([n]) => n).sort();
  }

  peerOf(node: string): PeerTarget | undefined {
    const beat = this.known.get(node)?.beat;
    if (!beat || node === this.node) return undefined;
    return { node, url: `http://${beat.advertise}`, secret: this.secretValue };
  }

  /** The app's state as its node last published it (undefined: not known). */
  remoteStatus(node: string, app: string): NodeBeat['apps'][string] | undefined {
    return this.known.get(node)?.beat?.apps[app];
  }

  /** Null when the app's node can take its traffic; the refusal when the node is down or the app is placed nowhere. */
  nodeGate(app: AppConfig): PortholeError | null {
    const owner = this.ownerOf(app);
    if (owner === undefined) return new NodeDownError(`app ${app.name} (node: any) is not placed on a node yet: no live node took it`, { app: app.name });
    if (owner === this.node) return null;
    const k = this.known.get(owner);
    if (!k) return new NodeDownError(`app ${app.name} runs on node ${owner}, which is not part of this cluster`, { app: app.name });
    if (k.up) return null;
    const ago = k.lastSeen === null ? 'never seen' : `no heartbeat for ${((Date.now() - k.lastSeen) / 1000).toFixed(0)} s`;
    return new NodeDownError(`app ${app.name} runs on node ${owner}, which is down (${ago})`, { app: app.name });
  }

  /**
   * Forgets a node that is gone for good (`porthole nodes --forget`): not one
   * that is up, nor one that apps still name as theirs (409 listing them).
   */
  async forget(name: string): Promise<void> {
    await this.refresh();
    if (!this.known.has(name)) throw new AppUnknownError(`no node named ${JSON.stringify(name)} in this cluster`);
    if (this.known.get(name)!.up) throw new ConflictError(`node ${name} is up: stop it first (a node that is up is not forgotten)`);
    const apps = this.opts.apps().filter((a) => a.node === name).map((a) => a.name);
    if (apps.length) throw new ConflictError(`apps still run on node ${name}: ${apps.join(', ')}; give them another node (or node: any), or remove them, first`);
    await this.store.redis.multi().hdel(this.store.key('nodes'), name).del(this.store.key(`node:${name}`)).exec();
    this.known.delete(name);
    emit('cluster', { action: 'forgot', node: this.node, message: `node ${name} forgotten` });
    this.changed();
  }

  nodes(): NodeView[] {
    const apps = this.opts.apps();
    return [...this.known.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, k]) => ({
        name,
        up: k.up,
        self: name === this.node,
        leader: name === this.leaderName,
        advertise: k.beat?.advertise ?? null,
        url: k.beat?.url ?? null,
        started_at: k.beat?.started_at ?? null,
        last_seen: k.lastSeen === null ? null : new Date(k.lastSeen).toISOString(),
        version: k.beat?.version ?? null,
        apps: apps.filter((a) => this.ownerOf(a) === name).map((a) => a.name),
      }));
  }

  /** Told when a node comes up, goes down, or publishes new app states. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private changed(): void {
    for (const l of this.changeListeners) l();
  }

  /** Stops beating and gives up the lease; the heartbeat is removed so the others see this node leave at once. */
  async leave(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.offState?.();
    for (const t of this.timers) clearInterval(t);
    if (this.beatSoon) clearTimeout(this.beatSoon);
    const r = this.store.redis;
    await r
      .eval(
        "if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end local b = redis.call('GET', KEYS[1]) if b and string.find(b, ARGV[1], 1, true) then redis.call('DEL', KEYS[1]) end return 1",
        2,
        this.store.key(`node:${this.node}`),
        this.store.key('leader'),
        `"instance":"${this.instance}"`,
        this.node,
      )
      .catch(() => undefined);
  }
}

/** `host:port` or `[v6]:port`, as `cluster.advertise` is written; nothing a URL could take another way. */
function isHostPort(s: string): boolean {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(s);
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
