/**
 * README.md is where a new user starts: its documentation list names every page in docs/, and its
 * dependency table names every runtime and peer dependency in package.json, and nothing else.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The lines of the README section under `## <title>`. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  assert.notEqual(start, -1, `README has no "## ${title}"`);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
}

describe('README', () => {
  it('lists every page in docs/ under Documentation', () => {
    const listed = [...section('Documentation').matchAll(/^- \[docs\/([\w-]+\.md)\]\(docs\/\1\)/gm)]
      .map((m) => m[1])
      .sort();
    const pages = readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .sort();
    assert.deepEqual(listed, pages);
  });

  it('explains every runtime and peer dependency of package.json, and no other', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      peerDependencies: Record<string, string>;
    };
    const explained = [...section('Dependencies').matchAll(/^\| `([^`]+)` +\| \S/gm)]
      .map((m) => m[1])
      .sort();
    assert.deepEqual(
      explained,
      [...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)].sort(),
    );
  });
});
