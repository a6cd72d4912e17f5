import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { RelayError } from '../hub/errors.js';
import { sendError } from './error-handler.js';

/** The console's files, built by `npm run build` into dist/web. */
const CONSOLE_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

const FILES = {
  'index.html': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
} as const;

/**
 * Serves the web console: `/` and `/console/{console.js,console.css}`. The files are read once
 * at start-up and served from memory by name from a fixed list, so no request path ever
 * reaches the file system (no traversal to guard against).
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
  const serve = (name: keyof typeof FILES) => async (_request: unknown, reply: import('fastify').FastifyReply) => {
    const body = loaded.get(name);
    if (!body) return sendError(reply, new RelayError('HUB_ERR_NOT_FOUND', 'The web console is not built: run `npm run build`'));
    return reply
      .type(FILES[name])
      .header('Cache-Control', name === 'index.html' ? 'no-cache' : 'public, max-age=300')
      .header('X-Content-Type-Options', 'nosniff')
      .send(body);
  };
  app.get('/', serve('index.html'));
  app.get('/console/console.js', serve('console.js'));
  app.get('/console/console.css', serve('console.css'));
}
