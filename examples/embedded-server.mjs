// The whole Porthole server inside your own Node program: a supervised app,
// the admin API with its token, the dashboard, drained on SIGTERM.
//   PORT=50000 DATA=/tmp/porthole-data node examples/embedded-server.mjs
import { fileURLToPath } from 'node:url';
import { createServer } from 'porthole';

const demo = fileURLToPath(new URL('demo-app.mjs', import.meta.url));
const server = createServer({
  config: { apps: [{ name: 'demo', cmd: `exec "${process.execPath}" "${demo}"`, autostart: true }] },
  listen: { host: '127.0.0.1', port: Number(process.env.PORT ?? 50000) },
  dataDir: process.env.DATA, // default: ~/.local/share/porthole
  log: true, // every event as a line on stdout
});
// Your program sees the same events the log shows, and reaches server.registry and server.supervisor.
server.subscribe('app', (e) => e.state === 'running' && console.log(`${e.app} is running (pid ${e.pid})`));

const { url, token, tokenCreated, tokenFile } = await server.listen();
console.log(`ready on ${url} (demo at ${url}/demo/, admin API at ${url}/_porthole/api/apps)`);
if (tokenCreated) console.log(`admin token (kept in ${tokenFile}): ${token}`);
console.log(`dashboard (the link logs in once): ${server.loginUrl()}`);

process.once('SIGTERM', () => server.drain().then(() => process.exit(0)));
