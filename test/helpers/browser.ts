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
