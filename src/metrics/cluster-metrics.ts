/**
 * A cluster node's series (docs/cluster.md): which nodes it sees up, whether
 * its store answers, its registry version and whether it holds the lease,
 * read at scrape time; and the cluster events (nodes up and down, resyncs,
 * placements) counted as they happen.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { subscribe, type EventMap } from '../events.js';

/** What the metrics read of the cluster when scraped (ClusterNode.view() fits). */
export interface ClusterSnapshot {
  leader: boolean;
  version: number;
  store: { up: boolean };
  nodes: readonly { name: string; up: boolean }[];
}

export function clusterMetrics(registry: Registry, read: (() => ClusterSnapshot) | undefined): () => void {
  if (!read) return () => {};
  new Gauge({
    name: 'porthole_cluster_node_up',
    help: 'Each node of the cluster as this node sees it: 1 up (heartbeat within the TTL), 0 down.',
    labelNames: ['node'],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of read().nodes) this.set({ node: n.name }, n.up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'porthole_cluster_store_up',
    help: "1 while this node reaches the cluster's store (Redis), 0 while it serves from its last registry.",
    registers: [registry],
    collect() {
      this.set(read().store.up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'porthole_cluster_registry_version',
    help: 'The registry version this node holds (every node converges to the same one).',
    registers: [registry],
    collect() {
      this.set(read().version);
    },
  });
  new Gauge({
    name: 'porthole_cluster_leader',
    help: '1 while this node holds the lease that places node: any apps.',
    registers: [registry],
    collect() {
      this.set(read().leader ? 1 : 0);
    },
  });
  const events = new Counter({ name: 'porthole_cluster_events_total', help: 'Cluster events seen by this node, by action (node_down, resync, placed, store_down…).', labelNames: ['action'], registers: [registry] });
  return subscribe('cluster', (e: EventMap['cluster']) => events.inc({ action: e.action }));
}
