import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { RelayError } from '../hub/errors.js';
import { sendError } from './error-handler.js';

/** The console's files, built by `npm run build` into dist/web. */
const CONSOLE_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

const FILES = {
  'index.html': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
  // console.js names it (`sourceMappingURL`): DevTools asks for it, and a 404 would show there.
  'console.js.map': 'application/json',
} as const;

/**
 * The console's Content-Security-Policy: its own script, styles and icon, requests to the hub
 * that serves it (the page's origin) and nothing else; no inline script or style, no plugins,
 * no framing, no form posts elsewhere. An injected `<script>` or a link to another origin's
 * script cannot run, whatever a message shown on the page contains.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Serves the web console: `/`, `/console/{console.js,console.js.map,console.css,favicon.svg}` and
 * `/favicon.ico` (the same icon: browsers ask for it on any page of the hub). The files are
 * read once at start-up and served from memory by name from a fixed list, so no request path
 * ever reaches the file system (no traversal to guard against). Every answer carries the CSP
 * above and `X-Content-Type-Options: nosniff` (a browser uses each file only as its type).
 */
export async function registerConsoleRoutes(app: FastifyInstance): Promise<void> {
  const loaded = new Map<string, Buffer>();
  for (const name of Object.keys(FILES)) {
    try {
      loaded.set(name, await readFile(`${CONSOLE_DIR}${name}`));
    } catch {
      // Not built (e.g. running from sources without `npm run build`): the routes explain it.
    }
  }
  const serve = (name: keyof typeof FILES) => async (_request: unknown, reply: FastifyReply) => {
    const body = loaded.get(name);
    if (!body) return sendError(reply, new RelayError('HUB_ERR_NOT_FOUND', 'The web console is not built: run `npm run build`'));
    return reply
      .type(FILES[name])
      .header('Cache-Control', name === 'index.html' ? 'no-cache' : 'public, max-age=300')
      .header('Content-Security-Policy', CONSOLE_CSP)
      .header('X-Content-Type-Options', 'nosniff')
      .send(body);
  };
  app.get('/', serve('index.html'));
  app.get('/console/console.js', serve('console.js'));
  app.get('/console/console.js.map', serve('console.js.map'));
  app.get('/console/console.css', serve('console.css'));
  app.get('/console/favicon.svg', serve('favicon.svg'));
  app.get('/favicon.ico', serve('favicon.svg'));
}
