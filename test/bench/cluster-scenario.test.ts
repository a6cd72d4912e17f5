/**
 * The cluster scenario's own machinery against the real thing: a Redis Cluster of two masters
 * from the tests' helper (which `redis-cli --cluster create` refuses: it wants three), keys
 * counted per master, and the idle-node measurement on two real hubs, whose figures must say
 * what the single stream is known to do: the idle hub receives every message from Redis.
 */
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import { after, describe, test } from 'node:test';
import { commandStatsBetween } from '../../bench/cluster/command-stats.js';
import { startBenchCluster, startHubPair, type BenchRedisCluster, type HubPair } from '../../bench/cluster/deployment.js';
import { clusterPlan, probeCpuUs, SHARDS_OPTION, windowCounts } from '../../bench/cluster/scenario.js';
import { PAYLOAD_SIZE } from '../../bench/loadgen/payload.js';
import type { StepResult } from '../../bench/loadgen/plan.js';
import { runPhase } from '../../bench/loadgen/runner.js';
import { relayHasOption } from '../../bench/peers/peers.js';

const unpinned = { cpu: undefined, nice: undefined };
const options = { quick: true, durationMs: 1_000, server: unpinned, loadgen: unpinned };

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The idle-node measurement, in this process, on fresh hubs of `layout`. */
async function idleNode(cluster: BenchRedisCluster, shards: number | undefined, started: HubPair[]): Promise<StepResult> {
  await cluster.flush();
  const hubs = await startHubPair(cluster, shards === undefined ? { name: 'single stream' } : { name: 'sharded', shards }, unpinned);
  started.push(hubs);
  const result = await runPhase(clusterPlan('idle-node', cluster, hubs, options), () => {});
  assert.equal(result.subscribeError, null);
  const step = result.steps[0]!;
  assert.equal(step.targets.length, 1, 'hub B takes neither subscribers nor publishes');
  assert.equal(step.lost, 0, JSON.stringify(step.notes));
  assert.equal(step.publishFailed, 0);
  assert.ok(windowCounts(step).messages > 20, `${step.publishesPerSecond} messages/s`);
  assert.deepEqual(
    step.probes?.map((p) => p.name),
    ['hub A', 'hub B', 'redis 1', 'redis 2'],
  );
  return step;
}

describe('cluster scenario: deployment and idle-node figures', () => {
  let cluster: BenchRedisCluster | undefined;
  const started: HubPair[] = [];
  after(async () => {
    for (const hubs of started) await hubs.stop();
    await cluster?.stop();
  });

  test('a cluster of two masters: every slot served, commands and keys counted where they run and live, flushed', async () => {
    cluster = await startBenchCluster(2, unpinned);
    assert.equal(cluster.masters.length, 2);
    for (const m of cluster.masters) assert.ok(alive(m.pid), `master on ${m.port} is process ${m.pid}`);
    const before = await cluster.commandStats();
    const client = new Cluster(cluster.masters.map((m) => ({ host: '127.0.0.1', port: m.port })));
    try {
      for (let i = 0; i < 50; i++) await client.set(`key-${i}`, 'v');
    } finally {
      client.disconnect();
    }
    const set = commandStatsBetween(before, await cluster.commandStats()).find((c) => c.command === 'set');
    assert.equal(set?.calls, 50, 'INFO commandstats of both masters, summed');
    const keys = await cluster.keysPerMaster();
    assert.equal(keys[0]! + keys[1]!, 50);
    assert.ok(keys.every((n) => n > 0), `keys on both masters: ${keys.join(' / ')}`);
    await cluster.flush();
    assert.deepEqual(await cluster.keysPerMaster(), [0, 0]);
  });

  test('single stream: the idle hub B receives every message from Redis, and spends CPU on it', async () => {
    assert.ok(cluster);
    const step = await idleNode(cluster, undefined, started);
    const { messages } = windowCounts(step);
    const b = step.probes!.find((p) => p.name === 'hub B')!;
    const a = step.probes!.find((p) => p.name === 'hub A')!;
    assert.ok(b.bytesReceived! >= messages * PAYLOAD_SIZE, `hub B received ${b.bytesReceived} bytes for ${messages} messages`);
    assert.ok(a.bytesReceived! >= messages * PAYLOAD_SIZE, `hub A received ${a.bytesReceived} bytes for ${messages} messages`);
    assert.ok(b.cpuUs > 0, 'hub B used CPU reading');
    assert.ok(probeCpuUs(step, 'redis') > 0, 'the masters used CPU');
  });

  test('sharded with node-local interest, a shard per master: the idle hub B receives next to nothing', { skip: relayHasOption(SHARDS_OPTION) ? false : `this build has no ${SHARDS_OPTION}` }, async () => {
    assert.ok(cluster);
    const step = await idleNode(cluster, 2, started);
    const { messages } = windowCounts(step);
    const b = step.probes!.find((p) => p.name === 'hub B')!;
    // Heartbeats and liveness keys, not messages: well under one payload per ten messages.
    assert.ok(b.bytesReceived! < (messages * PAYLOAD_SIZE) / 10, `hub B received ${b.bytesReceived} bytes for ${messages} messages`);
    // The bench placed shard k on master k: both masters hold history (with 2 masters the hash
    // alone puts shards 0 and 1 on the same one).
    const keys = await cluster.keysPerMaster();
    assert.ok(keys.every((n) => n > 0), `keys per master: ${keys.join(' / ')}`);
  });

  test('stopping the hubs and the cluster leaves no process behind', async () => {
    assert.ok(cluster);
    const pids = [...started.flatMap((h) => h.hubs.map((hub) => hub.pid)), ...cluster.masters.map((m) => m.pid)];
    for (const hubs of started.splice(0)) await hubs.stop();
    await cluster.stop();
    cluster = undefined;
    for (const pid of pids) assert.ok(!alive(pid), `process ${pid} stopped`);
  });
});
