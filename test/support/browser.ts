import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { build, type BuildOptions } from 'esbuild';
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

const clientEntry = join(repo, 'src', 'client', 'index.ts');

/** Bundles for a page as a bundler would ship it, `wsgate/client` resolved to this checkout's. */
async function bundle(options: BuildOptions): Promise<string> {
  const result = await build({
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2022'],
    alias: { 'wsgate/client': clientEntry },
    write: false,
    logLevel: 'warning',
    ...options,
  });
  const [file] = result.outputFiles ?? [];
  assert.ok(file, 'esbuild wrote the bundle');
  return file.text;
}

/** `wsgate/client` as a script that defines the global `wsgateClient`, for `addInitScript`. */
export function clientBundle(): Promise<string> {
  return bundle({
    entryPoints: [clientEntry],
    globalName: 'wsgateClient',
    // Init scripts may run inside a function: the global is set explicitly.
    footer: { js: 'globalThis.wsgateClient = wsgateClient;' },
  });
}

/** A TypeScript module (a docs sample that imports `wsgate/client`) as a script for a page. */
export function pageScript(source: string): Promise<string> {
  return bundle({ stdin: { contents: source, loader: 'ts', resolveDir: repo } });
}
