import net from 'node:net';

/**
 * A loopback port that was free a moment ago (bound to port 0, then released): the server
 * started on it next may in principle race another process for it, which has not happened on
 * these machines.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
