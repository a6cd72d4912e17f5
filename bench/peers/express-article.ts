/**
 * The article's hub, ported to plain Express as it would be written without a hub library: a
 * Map of id → Set of open responses; a publish writes `data: <message>\n\n` to each of them.
 * Same routes as sse-relay. A peer for the benchmark only, not an example to follow (no ids,
 * no backpressure, one write per subscriber per message).
 *
 * `node dist/bench/peers/express-article.js --port N`
 */
import express, { type Response } from 'express';
import { portArgument } from './args.js';

const app = express();
const subscribers = new Map<string, Set<Response>>();

app.get('/messages/subscribe/:id', (req, res) => {
  const id = req.params.id;
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  let set = subscribers.get(id);
  if (!set) subscribers.set(id, (set = new Set()));
  set.add(res);
  res.write(`data: Subscribed to id ${id}\n\n`);
  req.on('close', () => {
    set.delete(res);
    if (set.size === 0) subscribers.delete(id);
  });
});

app.post('/messages/:id', express.text({ type: '*/*' }), (req, res) => {
  const message = typeof req.body === 'string' ? req.body : String(req.query.message ?? '');
  const set = subscribers.get(req.params.id);
  if (set) for (const sub of set) sub.write(`data: ${message}\n\n`);
  res.json({ delivered: set?.size ?? 0 });
});

const server = app.listen(portArgument(), '127.0.0.1', () => process.stderr.write(`express-article listening on ${portArgument()}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('SIGINT', () => process.exit(0));
