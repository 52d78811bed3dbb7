import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ESLint } from 'eslint';

const doc = readFileSync(new URL('../docs/architecture.md', import.meta.url), 'utf8');
const layout = /## Layout\n\n```\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';

/** TypeScript files under `dir`, recursively; tests only when asked for. */
function sources(dir: string, tests = false): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path, tests);
    const test = /\.test(-suite)?\.ts$/.test(entry.name);
    return entry.name.endsWith('.ts') && (tests || !test) ? [path] : [];
  });
}

describe('docs/architecture.md', () => {
  it('names every folder and every source file of src/ and web/src in its layout', () => {
    assert.ok(layout.length > 1000, 'the layout block was found');
    for (const entry of readdirSync('src', { withFileTypes: true })) {
      if (entry.isDirectory())
        assert.match(layout, new RegExp(`^  ${entry.name}/`, 'm'), `src/${entry.name}/`);
    }
    for (const file of [...sources('src'), ...sources('web/src')]) {
      assert.ok(layout.includes(basename(file)), `${file} is not in the layout`);
    }
  });

  it('names no source file that does not exist', () => {
    const existing = new Set(
      ['src', 'web/src', 'bench', 'test']
        .flatMap((dir) => sources(dir, true))
        .map((f) => basename(f)),
    );
    for (const name of layout.match(/[a-z][a-z.-]*\.ts\b/g) ?? []) {
      assert.ok(existing.has(name), `the layout names ${name}, which does not exist`);
    }
  });

  it('shows the layer table ESLint enforces', async () => {
    const eslint = new ESLint();
    const rows = doc
      .split('\n')
      .map((line) => /^\| `([a-z]+)` +\| ([^|]+?) +\|$/.exec(line))
      .filter((m) => m !== null);
    assert.ok(rows.length >= 19, 'the layer table was found');
    for (const [, folder, allowed] of rows) {
      if (folder === 'server' || folder === 'client') continue; // described in words
      const config = (await eslint.calculateConfigForFile(`src/${folder}/any.ts`)) as {
        rules?: Record<string, [string, { patterns?: { message?: string }[] }]>;
      };
      const message = (config.rules?.['no-restricted-imports']?.[1]?.patterns ?? [])
        .map((p) => p.message ?? '')
        .find((m) => m.startsWith(`src/${folder} may import only `));
      const enforced = message
        ?.slice(`src/${folder} may import only `.length)
        .replace(/ \(eslint\.config\.js, layers\)\.$/, '');
      assert.equal(allowed === 'nothing' ? 'no other folder' : allowed, enforced, folder);
    }
  });
});
