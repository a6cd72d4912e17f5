/**
 * Bundles the web console (web/) into dist/web with esbuild: one ES module, minified, no CDN;
 * and the client SDK alone as `dist/web/sse-relay-client.js`, an ES module a page can import
 * without a bundler of its own. Runs as part of `npm run build`.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../../', import.meta.url));
const out = `${root}dist/web`;
await mkdir(out, { recursive: true });
// The console, and the SDK alone (pages that load it, such as the shared-tab test's).
for (const [entry, bundle] of [
  ['web/src/console.ts', 'console.js'],
  ['src/client/index.ts', 'sse-relay-client.js'],
] as const) {
  await build({
    entryPoints: [`${root}${entry}`],
    outfile: `${out}/${bundle}`,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
  });
}
await copyFile(`${root}web/index.html`, `${out}/index.html`);
await copyFile(`${root}web/console.css`, `${out}/console.css`);
await copyFile(`${root}web/favicon.svg`, `${out}/favicon.svg`);
