import type { FastifyInstance } from 'fastify';

/** The methods the routes matching a path accept (empty: no route has that path). */
export type AllowedMethods = (path: string) => string[];

function patternOf(url: string): RegExp {
  // `:param` matches one segment, `*` the rest; everything else literally.
  const source = url
    .split(/(:[A-Za-z0-9_]+|\*)/)
    .map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

/**
 * Records every route's path pattern and methods (an `onRoute` hook: call before routes are
 * added), so a request with the wrong method on an existing path gets 405 with `Allow`
 * (RFC 9110) instead of a 404 that says the path does not exist.
 */
export function trackAllowedMethods(app: FastifyInstance): AllowedMethods {
  const routes: Array<{ pattern: RegExp; methods: string[] }> = [];
  app.addHook('onRoute', (route) => {
    routes.push({ pattern: patternOf(route.url), methods: [route.method].flat().map(String) });
  });
  return (path) => {
    const allowed = new Set<string>();
    for (const route of routes) if (route.pattern.test(path)) for (const method of route.methods) allowed.add(method);
    return [...allowed];
  };
}
