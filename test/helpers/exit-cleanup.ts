/**
 * Last-resort cleanup for test peers that live outside the test process
 * (redis-server, network namespaces): whatever a test forgot, or could not
 * undo because it crashed, is undone when the process exits, also on SIGINT
 * and SIGTERM (the runner ends a timed-out file with SIGTERM). Only
 * synchronous work can run at exit, so each hook must be synchronous.
 */
const hooks = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const h of [...hooks].reverse()) {
    try {
      h();
    } catch {
      // one failing hook must not keep the others from running
    }
  }
  hooks.clear();
}

/** Registers a synchronous hook to run at exit; returns its remover. */
export function atExit(hook: () => void): () => void {
  if (!installed) {
    installed = true;
    process.on('exit', runAll);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        runAll();
        process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const)[sig]);
      });
    }
  }
  hooks.add(hook);
  return () => hooks.delete(hook);
}

/** SIGKILLs a pid if it still runs; ignores one that is gone. */
export function killQuietly(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
