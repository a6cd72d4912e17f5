import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import MarkdownIt from 'markdown-it';

const readmePath = fileURLToPath(new URL('../../../README.md', import.meta.url));

/**
 * What a CommonMark parser (markdown-it) makes of the README that its author did not mean: a
 * section heading (`##` and below) rendered as code, and a code block that is never closed (so
 * it runs to the end of the file). A `# comment` in a shell block is not a heading the README
 * means, so level 1 is left out.
 */
export function fenceProblems(markdown: string): string[] {
  const lines = markdown.split(/\r?\n/);
  const tokens = new MarkdownIt().parse(markdown, {});
  const headings = new Set(tokens.filter((token) => token.type === 'heading_open').map((token) => token.map![0]));
  const fences = tokens.filter((token) => token.type === 'fence').map((token) => ({ start: token.map![0], end: token.map![1], markup: token.markup }));
  const problems: string[] = [];
  lines.forEach((text, index) => {
    if (!/^#{2,6}\s/.test(text) || headings.has(index)) return;
    const fence = fences.find((f) => f.start <= index && index < f.end);
    problems.push(`line ${index + 1}: heading ${JSON.stringify(text)} is ${fence ? `inside the code block opened on line ${fence.start + 1}` : 'not rendered as a heading'}`);
  });
  for (const fence of fences) {
    // The parser closes a block left open at the end of the file: its last line is no fence then.
    const last = fence.end - 1 > fence.start ? lines[fence.end - 1]!.trim() : '';
    if (!(last.startsWith(fence.markup) && /^(`+|~+)$/.test(last))) problems.push(`the code block opened on line ${fence.start + 1} is never closed`);
  }
  return problems;
}

describe('README.md renders as Markdown', () => {
  it('no code block swallows a heading, and every code block is closed', async () => {
    assert.deepEqual(fenceProblems(await readFile(readmePath, 'utf8')), []);
  });

  it('the check catches a fence "closed" with text after it', () => {
    const broken = '```yaml\nport: 8080\n``` (Generated from the schema)\n\n## Errors\n';
    assert.deepEqual(fenceProblems(broken), [
      'line 5: heading "## Errors" is inside the code block opened on line 1',
      'the code block opened on line 1 is never closed',
    ]);
    assert.deepEqual(fenceProblems('```sh\nls\n```\n\n## Errors\n'), []);
  });
});
