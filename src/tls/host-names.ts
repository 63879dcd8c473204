/**
 * The names a `tls: internal` certificate is issued for: every name under
 * which the gateway answers (docs/host-names.md) and every address of this
 * machine, so that whatever a browser types to reach it verifies.
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Config } from '../config/schema.js';

/**
 * `localhost`, `*.localhost` and each app's `{name}.localhost` (a wildcard
 * right under a top-level name is refused by some clients), the apps'
 * `hosts`, `server_names`, `base_domain` and `*.{base_domain}`, the admin
 * API's `hosts`, the listen host when it is a name, loopback and every
 * address of the machine's interfaces. Sorted, without repeats: two lists
 * compare equal when the certificate need not change.
 */
export function certificateNames(cfg: Config, listenHost?: string): string[] {
  const names = new Set<string>(['localhost', '*.localhost', '127.0.0.1', '::1']);
  const add = (n: string) => {
    const bare = n.toLowerCase().replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
    if (bare) names.add(bare);
  };
  for (const app of cfg.apps) {
    add(`${app.name}.localhost`);
    if (cfg.base_domain) add(`${app.name}.${cfg.base_domain}`);
    for (const h of app.hosts ?? []) add(h);
  }
  for (const n of cfg.server_names) add(n);
  for (const n of cfg.admin.hosts) add(n);
  if (cfg.base_domain) {
    add(cfg.base_domain);
    add(`*.${cfg.base_domain}`);
  }
  if (listenHost && listenHost !== '0.0.0.0' && listenHost !== '::') add(listenHost);
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      // A link-local IPv6 address is only reachable with a zone (fe80::1%eth0), which a URL cannot carry.
      if (a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80:')) continue;
      add(a.address);
    }
  }
  return [...names].filter((n) => isIP(n) || /^(\*\.)?[a-z0-9_.-]+$/.test(n)).sort();
}
