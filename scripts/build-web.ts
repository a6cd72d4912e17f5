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
await build({
  entryPoints: [`${root}web/src/console.ts`],
  outfile: `${out}/console.js`,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  logLevel: 'warning',
});
await build({
  entryPoints: [`${root}src/client/index.ts`],
  outfile: `${out}/sse-relay-client.js`,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  logLevel: 'warning',
});
await copyFile(`${root}web/index.html`, `${out}/index.html`);
await copyFile(`${root}web/console.css`, `${out}/console.css`);
await copyFile(`${root}web/favicon.svg`, `${out}/favicon.svg`);
