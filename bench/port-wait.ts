import net from 'node:net';

/** True when something on 127.0.0.1 accepts a connection on `port` now. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits until `port` accepts connections, trying `attempts` times `intervalMs` apart. */
export async function waitForPort(port: number, attempts: number, intervalMs: number): Promise<void> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (await accepts(port)) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`nothing listens on ${port}`);
}
