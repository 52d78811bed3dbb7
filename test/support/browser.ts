import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { repo } from './cli.js';

/** Debian's Chromium: the browser suites never download a browser. */
export const chromiumPath = '/usr/bin/chromium';

/** Why a browser suite is skipped: never in CI, which must have Chromium. */
export const browserSkip: string | false =
  !existsSync(chromiumPath) && process.env.CI !== 'true'
    ? 'skipped: Chromium not installed (apt-get install chromium)'
    : false;

/** Starts headless Chromium, or fails saying what CI must install. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath))
    assert.fail(`Chromium is missing at ${chromiumPath}; CI must apt-get install chromium`);
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * `wsgate/client` bundled for a page, as a bundler would ship it: a script that defines the
 * global `wsgateClient` (the module's exports), for `BrowserContext.addInitScript`.
 */
export async function clientBundle(): Promise<string> {
  const result = await build({
    entryPoints: [join(repo, 'src', 'client', 'index.ts')],
    bundle: true,
    format: 'iife',
    globalName: 'wsgateClient',
    // Init scripts may run inside a function: the global is set explicitly.
    footer: { js: 'globalThis.wsgateClient = wsgateClient;' },
    platform: 'browser',
    target: ['es2022'],
    write: false,
    logLevel: 'warning',
  });
  const [file] = result.outputFiles;
  assert.ok(file, 'esbuild wrote the client bundle');
  return file.text;
}
