/**
 * Debian's Chromium driven by playwright-core: never a browser download.
 */
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * Chromium's Local Network Access checks stop a public page's requests to
 * loopback by themselves (other browsers do not): tests of the gateway's own
 * defence against rebound names turn them off.
 */
export const NO_LOCAL_NETWORK_CHECKS =
  '--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults';

/**
 * Headless Debian Chromium; `extraArgs` add to the usual flags (e.g. `--host-resolver-rules=…`).
 * `env` replaces the browser's environment: a `HOME` of the test's own gives it a fresh
 * `~/.pki/nssdb`, the NSS database Chromium on Linux takes trusted roots from.
 */
export function launchChromium(extraArgs: readonly string[] = [], options: { env?: NodeJS.ProcessEnv } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    env: options.env,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
      ...extraArgs,
    ],
  });
}

/**
 * A page script that counts the pixels of the first canvas under `container`
 * (noVNC's remote framebuffer): how many are not black, how many are white
 * (an xterm's background); null before the canvas has a size. A string, not
 * a function: tsx would wrap a function in a `__name()` helper the page does not have.
 */
export function canvasPixels(container: string): string {
  return `(() => {
  const canvas = document.querySelector(${JSON.stringify(`${container} canvas`)});
  if (!canvas || !canvas.width) return null;
  const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let nonBlack = 0, white = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] || d[i + 1] || d[i + 2]) nonBlack++;
    if (d[i] > 200 && d[i + 1] > 200 && d[i + 2] > 200) white++;
  }
  return { width: canvas.width, height: canvas.height, total: d.length / 4, nonBlack, white };
})()`;
}
