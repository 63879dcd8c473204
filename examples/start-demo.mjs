// `npm start`: the demo app and the gateway in front of it, stopped together.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const app = spawn(process.execPath, [here('./demo-app.mjs')], { stdio: 'inherit' });
const gateway = spawn(process.execPath, [here('../dist/cli/main.js'), 'serve', '--config', here('./porthole.yaml'), ...process.argv.slice(2)], { stdio: 'inherit' });
const stop = () => {
  gateway.kill('SIGTERM');
  app.kill('SIGTERM');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
gateway.on('exit', (code) => {
  app.kill('SIGTERM');
  process.exitCode = code ?? 0;
});
