/**
 * The bench's count of what Redis sent a hub: bytes received per TCP socket, read from the
 * kernel with `ss`. Against real loopback sockets with a known number of bytes sent, then the
 * parser on the shapes of `ss` output a real socket table does not always contain.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { parseSocketStats, readSocketStats, receivedBetween, receivedBySocket } from '../../bench/loadgen/socket-bytes.js';

/** A server that writes `bytes` bytes to a connection each time it is asked (one line in). */
async function sendingServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (chunk) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) socket.write(Buffer.alloc(Number(line), 'x'));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Connects, asks for `bytes`, resolves once they all arrived. */
function ask(socket: net.Socket, bytes: number): Promise<void> {
  return new Promise((resolve) => {
    let got = 0;
    const onData = (chunk: Buffer): void => {
      got += chunk.length;
      if (got >= bytes) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
    socket.write(`${bytes}\n`);
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('bytes received per socket, from the kernel', () => {
  const closers: (() => unknown)[] = [];
  after(async () => {
    for (const close of closers.reverse()) await close();
  });

  test('counts exactly what this process received from a port', async () => {
    const server = await sendingServer();
    closers.push(() => server.close());
    const first = await connect(server.port);
    closers.push(() => first.destroy());
    await ask(first, 100_000);

    const sockets = readSocketStats([server.port]);
    // Only the client ends: the server's ends have the port locally, not as their peer.
    assert.equal(sockets.length, 1, JSON.stringify(sockets));
    assert.deepEqual(sockets[0]!.pids, [process.pid]);
    assert.equal(sockets[0]!.peerPort, server.port);
    assert.equal(sockets[0]!.bytesReceived, 100_000);
    const before = receivedBySocket(sockets, [process.pid]);

    // More on the first socket, and a second socket opened after the first sample.
    await ask(first, 5_000);
    const second = await connect(server.port);
    closers.push(() => second.destroy());
    await ask(second, 7_000);
    const afterSample = receivedBySocket(readSocketStats([server.port]), [process.pid]);
    assert.equal(receivedBetween(before, afterSample), 12_000);
    // Sockets of other processes are not counted.
    assert.equal(receivedBySocket(readSocketStats([server.port]), [process.pid + 1_000_000]).size, 0);
  });
});

describe('parsing ss -tinpH', () => {
  test('with and without the state column, IPv6 ends, counters left out at zero', () => {
    const text = [
      'ESTAB 0      0      127.0.0.1:42773 127.0.0.1:6379 users:(("node",pid=7851,fd=149))',
      '\t bbr wscale:10,10 rto:204 bytes_sent:31133 bytes_acked:31133 bytes_received:116 segs_out:185',
      '0      0      [::1]:50000 [::1]:7001 users:(("node",pid=12,fd=3),("node",pid=13,fd=3))',
      '\t cubic wscale:7,7 rto:204 bytes_acked:1 segs_out:2',
      '0      0      127.0.0.1:50001 127.0.0.1:7002',
    ].join('\n');
    assert.deepEqual(parseSocketStats(text), [
      { local: '127.0.0.1:42773', peer: '127.0.0.1:6379', peerPort: 6379, pids: [7851], bytesReceived: 116 },
      { local: '[::1]:50000', peer: '[::1]:7001', peerPort: 7001, pids: [12, 13], bytesReceived: 0 },
      { local: '127.0.0.1:50001', peer: '127.0.0.1:7002', peerPort: 7002, pids: [], bytesReceived: 0 },
    ]);
  });
});
