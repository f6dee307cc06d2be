/**
 * The per-request flow documented in index.ts, driven against a fake upstream (no sockets), to
 * check that the pieces compose: plan → cluster → retry state → outlier detection → reply.
 */
import { describe, expect, it } from 'vitest';
import type { WaypointConfig } from './config.js';
import { compileWaypointConfig } from './config.js';
import { seededRandom } from './random.js';
import { buildRequestPlan } from './request-plan.js';
import type { ResponseFlag } from './response.js';
import { buildLocalReply } from './response.js';
import type { AttemptOutcome } from './retry-policy.js';
import { buildAttemptTimeoutMs, RetryState } from './retry-state.js';
import { locatedObjects, manualClock, TEST_SERVICES } from './test-helpers/index.js';
import { UpstreamClusterSet } from './upstream-cluster.js';

type Upstream = (host: string, timeoutMs: number | undefined) => AttemptOutcome;

function run(
  config: WaypointConfig,
  clusters: UpstreamClusterSet,
  service: string,
  method: string,
  path: string,
  upstream: Upstream,
  clock: ReturnType<typeof manualClock>,
) {
  const random = seededRandom(99);
  const plan = buildRequestPlan({
    config,
    service: { namespace: 'shop', name: service, port: 9080 },
    client: { identity: 'spiffe://cluster.local/ns/frontend/sa/web', ip: '10.1.0.5' },
    request: { method, path, host: `${service}:9080`, headers: {} },
    random,
  });
  if (plan.kind === 'respond')
    return { status: plan.response.status, flags: plan.response.responseFlags, hosts: [] as string[] };
  const cluster = clusters.clusterFor(config, plan.backend);
  cluster.setHosts(['a', 'b', 'c']);
  const retry = new RetryState(plan.retryPolicy, method, random);
  const started = clock();
  for (;;) {
    const choice = cluster.chooseHost(retry.triedHosts);
    if (!choice.ok) {
      const r = buildLocalReply({ kind: 'no-healthy-upstream' });
      return { status: r.status, flags: r.responseFlags, hosts: [...retry.triedHosts] };
    }
    retry.beginAttempt(choice.host);
    const done = cluster.startRequest(choice.host);
    const outcome = upstream(choice.host, buildAttemptTimeoutMs(plan.timeouts, clock() - started));
    cluster.recordOutcome(choice.host, outcome);
    done();
    const d = retry.decide(outcome, cluster.circuitBreaker);
    if (d.retry) {
      clock.advance(d.backoffMs);
      d.releaseRetry();
      continue;
    }
    const flags: ResponseFlag[] = [...plan.responseFlags, ...d.responseFlags];
    if (outcome.kind === 'response') return { status: outcome.status, flags, hosts: [...retry.triedHosts] };
    const r = buildLocalReply({
      kind: 'upstream-failure',
      failure: outcome.failure,
      retryLimitExceeded: d.reason === 'limit-exceeded',
    });
    return {
      status: r.status,
      flags: [...plan.responseFlags, ...r.responseFlags],
      hosts: [...retry.triedHosts],
    };
  }
}

const YAML = `${TEST_SERVICES}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ratings, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: ratings}]
  rules:
  - backendRefs: [{name: ratings, port: 9080}]
    retry: {attempts: 2, codes: [503]}
    timeouts: {request: 10s, backendRequest: 1s}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details, namespace: shop}
spec:
  host: details
  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 2, maxEjectionPercent: 100}}
`;

describe('request flow against a fake upstream', () => {
  const { config } = compileWaypointConfig(locatedObjects(YAML), {
    waypointName: 'waypoint',
    waypointNamespace: 'shop',
  });

  it('a POST to a Service without routes is retried on connect failure (Istio default policy) and lands on a healthy host', () => {
    const clock = manualClock();
    const clusters = new UpstreamClusterSet({ clock, random: seededRandom(1) });
    for (let i = 0; i < 20; i++) {
      const r = run(
        config,
        clusters,
        'reviews',
        'POST',
        '/orders',
        (h) =>
          h === 'a' ? { kind: 'failure', failure: 'connect-failure' } : { kind: 'response', status: 201 },
        clock,
      );
      expect(r.status).toBe(201);
      expect(r.hosts.filter((h) => h === 'a').length).toBeLessThanOrEqual(1);
    }
  });

  it('503s are retried per the HTTPRoute and end with URX when every attempt fails', () => {
    const clock = manualClock();
    const clusters = new UpstreamClusterSet({ clock, random: seededRandom(2) });
    const r = run(config, clusters, 'ratings', 'GET', '/', () => ({ kind: 'response', status: 503 }), clock);
    expect(r).toMatchObject({ status: 503, flags: ['URX'] });
    expect(r.hosts.length).toBe(3);
  });

  it('a 503 on POST is not retried (non-idempotent guard)', () => {
    const clock = manualClock();
    const clusters = new UpstreamClusterSet({ clock, random: seededRandom(3) });
    const r = run(config, clusters, 'ratings', 'POST', '/', () => ({ kind: 'response', status: 503 }), clock);
    expect(r).toMatchObject({ status: 503, flags: [] });
    expect(r.hosts.length).toBe(1);
  });

  it('a per-try timeout is not retried under Istio’s HTTPRoute translation and answers 504 UT', () => {
    const clock = manualClock();
    const clusters = new UpstreamClusterSet({ clock, random: seededRandom(4) });
    const timeouts: Array<number | undefined> = [];
    const r = run(
      config,
      clusters,
      'ratings',
      'GET',
      '/',
      (_h, t) => {
        timeouts.push(t);
        return { kind: 'failure', failure: 'timeout' };
      },
      clock,
    );
    expect(r).toMatchObject({ status: 504, flags: ['UT'] });
    expect(timeouts).toEqual([1000]);
  });

  it('outlier detection ejects a failing host so later requests avoid it', () => {
    const clock = manualClock();
    const clusters = new UpstreamClusterSet({ clock, random: seededRandom(5) });
    const seen: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = run(
        config,
        clusters,
        'details',
        'GET',
        '/',
        (h) => (h === 'b' ? { kind: 'response', status: 500 } : { kind: 'response', status: 200 }),
        clock,
      );
      seen.push(...r.hosts);
    }
    const cluster = clusters.clusterFor(config, { namespace: 'shop', name: 'details', port: 9080 });
    expect(cluster.outlier?.isEjected('b')).toBe(true);
    expect(seen.filter((h) => h === 'b').length).toBe(2);
  });
});
