import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo } from './cli.js';

/** A fenced code block of README.md or docs/*.md. */
export interface FencedSample {
  readonly file: string;
  /** The line of the opening fence, 1-based. */
  readonly line: number;
  readonly lang: string;
  /** The block's text, its indentation removed. */
  readonly code: string;
  /** What `<!-- sample: … -->` right before the fence says, or ''. */
  readonly comment: string;
}

/** Every fenced block of README.md and docs/*.md whose language `langs` matches. */
export function fencedSamples(langs: RegExp): FencedSample[] {
  const files = ['README.md', ...readdirSync(join(repo, 'docs')).map((f) => join('docs', f))];
  const found: FencedSample[] = [];
  for (const file of files.filter((f) => f.endsWith('.md'))) {
    const lines = readFileSync(join(repo, file), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      // A fence may be indented, inside a list item; its lines carry the same indent.
      const open = /^( *)```(\w+)\s*$/.exec(lines[i] ?? '');
      if (!open?.[2] || !langs.test(open[2])) continue;
      const indent = open[1] ?? '';
      const end = lines.indexOf(`${indent}\`\`\``, i + 1);
      assert.ok(end > i, `${file}:${i + 1}: unclosed fence`);
      // Prettier keeps a blank line between the comment and the fence.
      let b = i - 1;
      while (b > 0 && (lines[b] ?? '').trim() === '') b--;
      found.push({
        file,
        line: i + 1,
        lang: open[2],
        code: lines
          .slice(i + 1, end)
          .map((l) => l.slice(indent.length))
          .join('\n'),
        comment: /^<!-- sample: (.*) -->$/.exec((lines[b] ?? '').trim())?.[1] ?? '',
      });
      i = end;
    }
  }
  return found;
}
