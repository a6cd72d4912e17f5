import { connect, createServer, type Socket } from 'node:net';

/** A TCP proxy in front of a hub that can make its connections half-open on command. */
export interface StallingProxy {
  /** Base URL of the proxy, to give clients instead of the hub's. */
  readonly url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /**
   * Stops forwarding in both directions on every connection open now, without closing any
   * socket: both ends see silence, as when a peer vanishes without a FIN. Later connections
   * are forwarded normally.
   */
  stall(): void;
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port that forwards every connection to `targetUrl`. */
export async function startStallingProxy(targetUrl: string): Promise<StallingProxy> {
  const target = new URL(targetUrl);
  const pairs: [Socket, Socket][] = [];
  const stalled: Socket[] = [];
  let accepted = 0;
  const server = createServer((client) => {
    accepted++;
    const upstream = connect(Number(target.port), target.hostname);
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.pipe(upstream);
    upstream.pipe(client);
    // A real close on either side is passed on; only a stall keeps them open.
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return accepted;
    },
    stall() {
      for (const [client, upstream] of pairs.splice(0)) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        // Not reading means nothing is forwarded and no FIN or RST is ever noticed.
        client.pause();
        upstream.pause();
        client.removeAllListeners('close');
        upstream.removeAllListeners('close');
        stalled.push(client, upstream);
      }
    },
    async close() {
      for (const socket of [...stalled, ...pairs.flat()]) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
