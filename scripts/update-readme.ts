/** Regenerates the README's reference sections from the schemas (`npm run docs`). */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderErrorsReference, renderOptionsReference, replaceSection } from '../src/config/reference.js';

const readme = fileURLToPath(new URL('../../README.md', import.meta.url));
let text = await readFile(readme, 'utf8');
text = replaceSection(text, 'options', renderOptionsReference());
text = replaceSection(text, 'errors', renderErrorsReference());
await writeFile(readme, text);
console.log('README.md reference sections updated');
