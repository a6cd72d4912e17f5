/**
 * The load generator against a server of two nodes, as the `sse-relay-redis-2` peer is: every
 * node must get its share of the subscribers and of the publishes, and deliveries must still be
 * counted exactly although a topic is published through both nodes at once, with no order
 * between them. First against two awkward fakes that share their subscribers (one of them late
 * with every fan-out, so the two publishing lanes overtake each other), then against the real
 * peer: two sse-relay processes on one redis-server, as the bench starts them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { PhasePlan, PhaseResult, StepResult } from '../../bench/loadgen/plan.js';
import { runPhase } from '../../bench/loadgen/runner.js';
import { freePort } from '../../bench/peers/free-port.js';
import { peerByName, type RunningPeer } from '../../bench/peers/peers.js';
import { fakeCluster, startAwkwardHub, type AwkwardHub, type AwkwardHubOptions, type MessageSelector } from './awkward-hub.js';

const ROUTES = { subscribePath: '/messages/subscribe/{id}', publishPath: '/messages/{id}' } as const;

/** One topic, `perTopic` subscribers, a rate step and a saturated step on one connection. */
function fanOutPlan(ports: readonly number[], perTopic: number, serverPids: readonly number[]): PhasePlan {
  const base = { connections: 1, warmupMs: 100, durationMs: 500, drainTimeoutMs: 10_000, drainIdleMs: 1000 };
  return {
    phase: 'two-nodes',
    targets: ports.map((port) => ({ host: '127.0.0.1', port })),
    ...ROUTES,
    serverPids,
    subscriptions: { topics: ['fan'], perTopic },
    steps: [
      { step: 'rate', mode: 'rate', rate: 100, pipeline: 4, ...base },
      { step: 'saturated', mode: 'saturated', window: 20, pipeline: 20, ...base },
    ],
  };
}

/** Both nodes held subscribers and acknowledged publishes, and their subscribers received. */
function assertBothNodesUsed(step: StepResult, subscribersPerNode: number): void {
  assert.equal(step.targets.length, 2, step.step);
  for (const [i, node] of step.targets.entries()) {
    assert.equal(node.subscribers, subscribersPerNode, `${step.step}: subscribers on node ${i}`);
    assert.ok(node.published > 2, `${step.step}: ${node.published} publishes acknowledged by node ${i}`);
    assert.ok(node.delivered > 0, `${step.step}: nothing delivered on node ${i}`);
  }
  assert.equal(step.targets[0]!.published + step.targets[1]!.published, step.published, step.step);
  assert.equal(step.targets[0]!.delivered + step.targets[1]!.delivered, step.delivered, step.step);
}

function assertExact(step: StepResult, perTopic: number): void {
  assert.equal(step.publishFailed, 0, step.step);
  assert.equal(step.expected, step.published * perTopic, step.step);
  assert.equal(step.delivered, step.expected, `${step.step}: ${JSON.stringify(step.notes)}`);
  assert.equal(step.lost, 0, step.step);
  assert.equal(step.duplicates, 0, step.step);
  assert.equal(step.outOfOrder, 0, `${step.step}: lanes are ordered each on its own, not with each other`);
  assert.equal(step.strays, 0, step.step);
  assert.ok(step.latencyUs.count > 0, step.step);
}

describe('load generator against two fake nodes sharing their subscribers', () => {
  const hubs: AwkwardHub[] = [];
  after(async () => {
    for (const hub of hubs) await hub.close();
  });

  /** Two fakes on one fake cluster; the second hands every publish on 15 ms late. */
  async function twoFakes(options: Partial<AwkwardHubOptions> = {}): Promise<[AwkwardHub, AwkwardHub]> {
    const cluster = fakeCluster();
    const a = await startAwkwardHub({ chunked: true, ...options, cluster, seed: 11 });
    const b = await startAwkwardHub({ chunked: false, ...options, cluster, seed: 12, fanOutDelayMs: 15 });
    hubs.push(a, b);
    return [a, b];
  }

  test('splits the subscribers, publishes through both, counts every delivery exactly', async () => {
    const [a, b] = await twoFakes();
    const result = await runPhase(fanOutPlan([a.port, b.port], 6, [process.pid]), () => {});
    assert.equal(result.subscribersOpened, 6);
    assert.equal(a.subscribers, 3);
    assert.equal(b.subscribers, 3);
    assert.ok(a.publishes > 0 && b.publishes > 0);
    for (const step of result.steps) {
      assertBothNodesUsed(step, 3);
      assertExact(step, 6);
    }
  });

  const selected: MessageSelector = { subscriber: 4, lane: 1 };
  test('a message dropped on one lane is one delivery lost', async () => {
    const [a, b] = await twoFakes({ drop: selected });
    const result = await runPhase(fanOutPlan([a.port, b.port], 6, [process.pid]), () => {});
    for (const step of result.steps) {
      assert.equal(step.lost, 1, step.step);
      assert.equal(step.duplicates, 0, step.step);
      assert.equal(step.delivered, step.expected - 1, step.step);
      assert.ok(step.outOfOrder >= 1, step.step);
    }
  });

  test('a message repeated on one lane is one duplicate', async () => {
    const [a, b] = await twoFakes({ duplicate: selected });
    const result = await runPhase(fanOutPlan([a.port, b.port], 6, [process.pid]), () => {});
    for (const step of result.steps) {
      assert.equal(step.lost, 0, step.step);
      assert.equal(step.duplicates, 1, step.step);
      assert.equal(step.delivered, step.expected + 1, step.step);
    }
  });
});

describe('load generator against the sse-relay-redis-2 peer (two hubs on one redis-server)', () => {
  let peer: RunningPeer | undefined;
  const workDir = mkdtempSync(path.join(tmpdir(), 'sse-bench-test-'));
  after(async () => {
    await peer?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('both hubs hold subscribers and take publishes; nothing lost, repeated or reordered', async () => {
    const adapter = peerByName('sse-relay-redis-2');
    assert.ok(adapter, 'the peer exists');
    assert.equal(adapter.unavailable(), undefined);
    peer = await adapter.start({ port: await freePort(), workDir, cpu: undefined });
    assert.equal(peer.endpoints.length, 2);
    assert.equal(peer.pids.length, 3, 'two hubs and redis-server are measured');
    const ports = peer.endpoints.map((e) => e.port);

    const fanOut: PhaseResult = await runPhase(fanOutPlan(ports, 10, peer.pids), () => {});
    assert.equal(fanOut.subscribersOpened, 10, String(fanOut.subscribeError));
    for (const step of fanOut.steps) {
      assertBothNodesUsed(step, 5);
      assertExact(step, 10);
      assert.ok(step.serverCpuPercent > 0, 'the CPU of the processes is counted');
    }

    // Direct: one subscriber per topic, topics spread over the nodes, four publishing connections.
    const direct: PhasePlan = {
      ...fanOutPlan(ports, 1, peer.pids),
      subscriptions: { topics: Array.from({ length: 8 }, (_, i) => `d${i}`), perTopic: 1 },
      steps: [{ step: 'direct', mode: 'saturated', window: 16, connections: 4, pipeline: 4, warmupMs: 100, durationMs: 500, drainTimeoutMs: 10_000 }],
    };
    const result = await runPhase(direct, () => {});
    const step = result.steps[0]!;
    assertBothNodesUsed(step, 4);
    assertExact(step, 1);

    const pids = peer.pids;
    await peer.stop();
    peer = undefined;
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} stopped`);
  });
});
