import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const readmePath = fileURLToPath(new URL('../../../README.md', import.meta.url));

interface Fence {
  readonly line: number;
  readonly char: string;
  readonly length: number;
}

/**
 * Section headings (`##` and below) that CommonMark would render as code, and a fence left open at the end. No CommonMark
 * parser is among the dependencies, so this applies the one rule that broke the README: a fence
 * closes only on a line of at least as many of the same fence characters and nothing else but
 * spaces (CommonMark 0.31, 4.5); "``` (text" does not close a fence, it keeps it open.
 */
export function fenceProblems(markdown: string): string[] {
  const problems: string[] = [];
  let open: Fence | undefined;
  markdown.split(/\r?\n/).forEach((text, index) => {
    const line = index + 1;
    if (open === undefined) {
      const opening = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(text);
      // A backtick fence's info string cannot contain a backtick.
      if (opening && !(opening[1]![0] === '`' && opening[2]!.includes('`'))) {
        open = { line, char: opening[1]![0]!, length: opening[1]!.length };
      }
      return;
    }
    const closing = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(text);
    if (closing && closing[1]![0] === open.char && closing[1]!.length >= open.length) {
      open = undefined;
    } else if (/^#{2,6}\s/.test(text)) {
      // Level 2 and below only: a `# comment` in a shell block is not a heading the README means.
      problems.push(`line ${line}: heading ${JSON.stringify(text)} is inside the code block opened on line ${open.line}`);
    }
  });
  if (open !== undefined) problems.push(`the code block opened on line ${open.line} is never closed`);
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
