import { randomBytes } from 'node:crypto';
import { spawnHub, type HubProcess } from '../helpers/hub-process.js';
import { isGreeting, post, type ReceivedEvent } from '../helpers/sse-client.js';

/** Several `sse-relay serve` processes on one Redis, as behind a load balancer. */
export interface Cluster {
  readonly nodes: HubProcess[];
  /** The key prefix they share. */
  readonly prefix: string;
  /** SIGKILLs every node still running. */
  stop(): Promise<void>;
}

/** Starts `count` hub processes on `redisUrl` with one key prefix (fresh unless given). */
export async function startCluster(redisUrl: string, count: number, args: string[] = [], prefix = `cluster-${randomBytes(4).toString('hex')}:`): Promise<Cluster> {
  const nodes: HubProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(
      nodes.map(async (node) => {
        if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGKILL');
        await node.exited;
      }),
    );
  };
  try {
    // One after the other: two cores, and each start-up is short.
    for (let i = 0; i < count; i++) nodes.push(await spawnHub(['--store', redisUrl, '--redis-key-prefix', prefix, ...args]));
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes, prefix, stop };
}

/** A publish through the article's API; never throws for an HTTP error. */
export async function tryPublish(baseUrl: string, topic: string, message: string): Promise<{ status: number; id?: string; code?: string }> {
  const res = await post(`${baseUrl}/messages/${encodeURIComponent(topic)}`, JSON.stringify({ message }), { 'content-type': 'application/json' });
  return { status: res.status, id: res.json?.id, code: res.json?.error?.code };
}

/** `id:data` of the message events (not the greeting; gap events have no id). */
export const received = (events: readonly ReceivedEvent[]): string[] =>
  events.filter((e) => e.id !== undefined && !isGreeting(e)).map((e) => `${e.id}:${e.data}`);

/** Sorts `{id, data}` by numeric id and renders them as {@link received} does. */
export const inIdOrder = (messages: readonly { id: string; data: string }[]): string[] =>
  [...messages].sort((a, b) => Number(a.id) - Number(b.id)).map((m) => `${m.id}:${m.data}`);
