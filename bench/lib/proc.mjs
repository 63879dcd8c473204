// CPU time and memory of a process (and its children, for nginx's workers),
// read from /proc: the proxy's own cost, apart from the load generator's.
import { readFileSync, readdirSync } from 'node:fs';

const TICKS = 100; // USER_HZ on Linux

function stat(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // fields after the name: state=0 ppid=1 … utime=11 stime=12 cutime=13 cstime=14. Children
  // that exited and were waited for count in cutime/cstime: websockify forks one per connection.
  return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS };
}

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) : 0;
}

/** The pid and every descendant (nginx master + workers, sh + its child). */
export function tree(root) {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const { ppid } = stat(d);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch {
      /* gone */
    }
  }
  const out = [];
  const walk = (p) => {
    out.push(p);
    for (const c of kids.get(p) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** CPU seconds (user + system) and RSS (KiB) of a process tree now. */
export function sample(root) {
  let cpu = 0;
  let rss = 0;
  for (const pid of tree(root)) {
    try {
      cpu += stat(pid).cpu;
      rss += rssKiB(pid);
    } catch {
      /* gone */
    }
  }
  return { cpu, rss };
}

/** Own CPU of this process, in seconds. */
export function selfCpu() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
