/**
 * State that must exist once per process, not once per copy of Porthole's modules.
 *
 * The native addon is loaded once per process: one thread, one report callback
 * for tunnels and one for the front, each registered by whichever copy started
 * it. A process can hold two copies of these modules (Porthole's package and
 * its sources, as the test suite does; two libraries each bundling it), and a
 * report must find its tunnel or connection whichever copy made it. So what the
 * reports are matched against lives here, on `globalThis` under a registered
 * symbol: connection ids, the addon's tunnels and the front's connections.
 */
export function processShared<T>(name: string, make: () => T): T {
  const g = globalThis as unknown as Record<symbol, T | undefined>;
  const key = Symbol.for(`porthole.${name}`);
  return (g[key] ??= make());
}
