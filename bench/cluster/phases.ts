/**
 * The cluster scenario's three measurements, as load-generator phases before they are bound to
 * a deployment. Publish capacity is measured with publishers that never pipeline (one request
 * at a time per keep-alive connection, as curl, fetch and PHP publish); fan-out as the peers'
 * saturated fan-out. Publishing connections alternate between the nodes they target.
 */
import type { PhaseSpec } from '../scenarios.js';

/** What a phase of the scenario measures. */
export type ClusterMeasurement = 'publish' | 'fanout' | 'idle-node';

export const CLUSTER_MEASUREMENTS: readonly ClusterMeasurement[] = ['publish', 'fanout', 'idle-node'];

/** Masters of the clusters measured, in order. */
export const CLUSTER_MASTERS: readonly number[] = [1, 2, 3];

/** The name `--scenario` selects (exactly, or by a prefix such as `cluster` or `cluster-idle`). */
export function clusterStepName(measurement: ClusterMeasurement, masters: number): string {
  return `cluster-${measurement}-m${masters}`;
}

export const CLUSTER_DESCRIPTIONS: Readonly<Record<ClusterMeasurement, string>> = {
  publish:
    'publish capacity: topics with one subscriber each, the subscribers split over both hubs; non-pipelined publishers (one request at a time per keep-alive connection) spread over the topics and both hubs',
  fanout:
    'fan-out: a few topics with many subscribers each, split over both hubs; one pipelined publishing connection per hub, at most 100 messages not yet received by every subscriber (as the peers\' `fanout-1k-saturated`)',
  'idle-node':
    'an idle node: every subscriber and every publisher on hub A, at full rate (batch publishes of 100 messages, 4 connections, one request at a time each); hub B started on the same cluster with no subscriber; B\'s CPU and what Redis sends B, per message A publishes',
};

export interface ClusterPhaseSizes {
  readonly directTopics: number;
  readonly fanoutTopics: number;
  readonly fanoutPerTopic: number;
  readonly publishConnections: number;
  /** Messages per batch publish in the idle-node step. */
  readonly idleBatch: number;
}

export function clusterSizes(quick: boolean): ClusterPhaseSizes {
  return {
    directTopics: quick ? 128 : 256,
    fanoutTopics: 4,
    fanoutPerTopic: quick ? 100 : 250,
    publishConnections: 32,
    idleBatch: 100,
  };
}

/** The phase of one measurement on a cluster of `masters` masters. */
export function clusterPhase(measurement: ClusterMeasurement, masters: number, quick: boolean, durationOverrideMs?: number): PhaseSpec {
  const sizes = clusterSizes(quick);
  const step = clusterStepName(measurement, masters);
  const timing = {
    warmupMs: quick ? 500 : 1_000,
    durationMs: durationOverrideMs ?? (quick ? 2_000 : 5_000),
    drainTimeoutMs: 30_000,
  };
  const direct = Array.from({ length: sizes.directTopics }, (_, i) => `c${i}`);
  if (measurement === 'fanout') {
    return {
      phase: step,
      subscriptions: { topics: Array.from({ length: sizes.fanoutTopics }, (_, i) => `f${i}`), perTopic: sizes.fanoutPerTopic },
      steps: [
        // As the peers' fanout-1k-saturated (window 100, pipelined, one connection per hub), so
        // its CPU per delivery compares with sse-relay-redis-2's row of the main table.
        { step, mode: 'saturated', connections: 2, pipeline: 50, window: 100, ...timing },
      ],
    };
  }
  if (measurement === 'idle-node') {
    // A at full rate: batch publishes, as the peers' direct-1k-batch-100-serial-4 (4 connections,
    // one request of 100 messages at a time each). Single publishes reach a tenth of the rate,
    // and B's reads then carry a few messages each: its cost per message would be per read.
    const batch = sizes.idleBatch;
    return {
      phase: step,
      subscriptions: { topics: direct, perTopic: 1 },
      steps: [{ step, mode: 'saturated', connections: 4, pipeline: 1, batch, window: 4 * batch * 2, ...timing }],
    };
  }
  return {
    phase: step,
    subscriptions: { topics: direct, perTopic: 1 },
    steps: [{ step, mode: 'saturated', connections: sizes.publishConnections, pipeline: 1, window: sizes.publishConnections * 2, ...timing }],
  };
}
