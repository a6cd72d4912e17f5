/**
 * better-sse's idiomatic hub on node:http, same routes as sse-relay: one broadcast `Channel` per
 * id, a `Session` per subscriber registered with it, a publish broadcasts the body. Library
 * defaults are kept (JSON serializer, keep-alive pings, a generated event id per broadcast).
 *
 * `node dist/bench/peers/better-sse-server.js --port N`
 */
import { createServer } from 'node:http';
import { createChannel, createSession, type Channel } from 'better-sse';
import { portArgument } from './args.js';

const channels = new Map<string, Channel>();
const SUBSCRIBE = /^\/messages\/subscribe\/([^/?]+)/;
const PUBLISH = /^\/messages\/([^/?]+)/;

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  const sub = req.method === 'GET' ? SUBSCRIBE.exec(url) : null;
  if (sub) {
    const id = decodeURIComponent(sub[1]!);
    createSession(req, res).then(
      (session) => {
        let channel = channels.get(id);
        if (!channel) {
          channel = createChannel();
          channels.set(id, channel);
          const created = channel;
          created.on('session-deregistered', () => {
            if (created.sessionCount === 0 && channels.get(id) === created) channels.delete(id);
          });
        }
        channel.register(session);
        session.push(`Subscribed to id ${id}`);
      },
      () => res.destroy(),
    );
    return;
  }
  const pub = req.method === 'POST' ? PUBLISH.exec(url) : null;
  if (pub) {
    const id = decodeURIComponent(pub[1]!);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const channel = channels.get(id);
      channel?.broadcast(Buffer.concat(chunks).toString('utf8'));
      const body = JSON.stringify({ delivered: channel?.sessionCount ?? 0 });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
    return;
  }
  res.writeHead(404).end();
});

const port = portArgument();
server.listen(port, '127.0.0.1', () => process.stderr.write(`better-sse listening on ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
