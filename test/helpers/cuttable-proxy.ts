import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP forwarder in front of a hub whose connectivity a test switches off and on: what a
 * client sees when its network drops (every connection reset, new ones refused) and comes back.
 */
export interface CuttableProxy {
  /** `http://127.0.0.1:<port>`: point clients here instead of at the hub. */
  readonly url: string;
  /** Connections accepted so far. */
  accepted(): number;
  /** Everything the hub sent to clients so far (latin1), to wait for a frame before a cut. */
  downstream(): string;
  /** Destroys every open connection and refuses new ones until {@link restore}. */
  cut(): Promise<void>;
  /** Accepts connections again, on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startCuttableProxy(target: URL | string): Promise<CuttableProxy> {
  const { hostname, port: targetPort } = new URL(target);
  const open = new Set<Socket>();
  let accepted = 0;
  let downstream = '';
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = connect(Number(targetPort), hostname);
    upstream.on('data', (chunk: Buffer) => (downstream += chunk.toString('latin1')));
    for (const [socket, peer] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      open.add(socket);
      socket.on('error', () => peer.destroy());
      socket.on('close', () => {
        open.delete(socket);
        peer.destroy();
      });
      socket.pipe(peer);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const stopListening = (): Promise<void> => new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  const cut = async (): Promise<void> => {
    const closed = stopListening();
    for (const socket of open) socket.resetAndDestroy();
    await closed;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    accepted: () => accepted,
    downstream: () => downstream,
    cut,
    restore: () => new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    }),
    close: cut,
  };
}
