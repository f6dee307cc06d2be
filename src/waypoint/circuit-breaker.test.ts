import { describe, expect, it } from 'vitest';
import type { CircuitResource } from './circuit-breaker.js';
import { CircuitBreaker, ISTIO_DEFAULT_LIMITS, UNLIMITED } from './circuit-breaker.js';
import { ISTIO_DEFAULT_DESTINATION_POLICY } from './destination-policy.js';
import { LeastRequestBalancer, RandomBalancer, RoundRobinBalancer } from './load-balancer.js';
import { seededRandom } from './random.js';
import { buildLocalReply } from './response.js';
import { UpstreamCluster, UpstreamClusterSet } from './upstream-cluster.js';
import { compileWaypointConfig } from './config.js';
import { buildAttemptTimeoutMs } from './retry-state.js';
import { locatedObjects } from './test-helpers/index.js';

describe('CircuitBreaker', () => {
  it.each([
    ['request', { maxRequests: 2 }],
    ['pending', { maxPendingRequests: 2 }],
    ['connection', { maxConnections: 2 }],
    ['retry', { maxRetries: 2 }],
  ] as Array<[CircuitResource, object]>)(
    '%s: the third concurrent grant overflows with 503 UO',
    (resource, limits) => {
      const cb = new CircuitBreaker({ ...ISTIO_DEFAULT_LIMITS, ...limits });
      const a = cb.tryAcquire(resource);
      const b = cb.tryAcquire(resource);
      const c = cb.tryAcquire(resource);
      expect([a.ok, b.ok, c.ok]).toEqual([true, true, false]);
      expect(c).toMatchObject({ status: 503, responseFlag: 'UO' });
      if (a.ok) a.release();
      expect(cb.tryAcquire(resource).ok).toBe(true);
    },
  );

  it('limits are independent and releases are idempotent', () => {
    const cb = new CircuitBreaker({ ...ISTIO_DEFAULT_LIMITS, maxRequests: 1, maxPendingRequests: 1 });
    const r = cb.tryAcquire('request');
    expect(cb.tryAcquire('pending').ok).toBe(true);
    expect(cb.tryAcquire('request').ok).toBe(false);
    if (r.ok) {
      r.release();
      r.release();
    }
    expect(cb.activeRequests).toBe(0);
    expect(cb.tryAcquire('request').ok).toBe(true);
    expect(cb.activeRequests).toBe(1);
  });

  it("Istio's defaults are effectively unlimited", () => {
    const cb = new CircuitBreaker();
    for (let i = 0; i < 10_000; i++) expect(cb.tryAcquire('request').ok).toBe(true);
    expect(ISTIO_DEFAULT_LIMITS.maxRetries).toBe(UNLIMITED);
  });

  it('an overflow maps to the Envoy local reply', () => {
    expect(buildLocalReply({ kind: 'overflow' })).toMatchObject({ status: 503, responseFlags: ['UO'] });
  });
});

describe('load balancers', () => {
  const hosts = ['a', 'b', 'c', 'd'];

  it('least-request prefers the less loaded of two draws', () => {
    const lb = new LeastRequestBalancer(seededRandom(5));
    const active: Record<string, number> = { a: 10, b: 10, c: 10, d: 0 };
    let d = 0;
    for (let i = 0; i < 4000; i++) if (lb.choose(hosts, (h) => active[h] ?? 0) === 'd') d++;
    // P(d among two draws with replacement) = 1 − (3/4)^2 = 0.4375
    expect(d / 4000).toBeGreaterThan(0.41);
    expect(d / 4000).toBeLessThan(0.47);
  });

  it('least-request with equal load is uniform', () => {
    const lb = new LeastRequestBalancer(seededRandom(9));
    const counts: Record<string, number> = {};
    for (let i = 0; i < 8000; i++) {
      const h = lb.choose(hosts, () => 0) ?? '';
      counts[h] = (counts[h] ?? 0) + 1;
    }
    for (const h of hosts) expect(Math.abs((counts[h] ?? 0) - 2000)).toBeLessThan(200);
  });

  it('round-robin cycles from a random start; random covers all hosts', () => {
    const rr = new RoundRobinBalancer(() => 0.000002); // start index 2
    expect(Array.from({ length: 6 }, () => rr.choose(hosts))).toEqual(['c', 'd', 'a', 'b', 'c', 'd']);
    const rnd = new RandomBalancer(seededRandom(1));
    expect(new Set(Array.from({ length: 200 }, () => rnd.choose(hosts)))).toEqual(new Set(hosts));
    expect(rr.choose([])).toBeUndefined();
  });

  it('UpstreamCluster counts active requests for least-request and survives host churn', () => {
    const c = new UpstreamCluster(ISTIO_DEFAULT_DESTINATION_POLICY, {
      clock: () => 0,
      random: seededRandom(2),
    });
    expect(c.chooseHost()).toEqual({ ok: false, reason: 'no-endpoints' });
    c.setHosts(['a', 'b']);
    const doneA = c.startRequest('a');
    c.startRequest('a');
    expect(c.activeRequests('a')).toBe(2);
    doneA();
    doneA();
    expect(c.activeRequests('a')).toBe(1);
    c.setHosts(['b', 'c']);
    expect(c.activeRequests('a')).toBe(0);
    expect(c.hostList).toEqual(['b', 'c']);
  });
});

describe('UpstreamClusterSet', () => {
  const yaml = (lb: string): string =>
    `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r, namespace: shop}\nspec: {host: reviews, trafficPolicy: {loadBalancer: {simple: ${lb}}}}`;
  const build = (lb: string) =>
    compileWaypointConfig(locatedObjects(yaml(lb)), { waypointName: 'w', waypointNamespace: 'shop' }).config;

  it('reuses a cluster across reloads that keep its policy, replaces it when the policy changes', () => {
    const set = new UpstreamClusterSet({ clock: () => 0, random: seededRandom(1) });
    const backend = { namespace: 'shop', name: 'reviews', port: 9080 };
    const a = set.clusterFor(build('RANDOM'), backend);
    a.setHosts(['x', 'y']);
    const b = set.clusterFor(build('RANDOM'), backend);
    expect(b).toBe(a);
    const c = set.clusterFor(build('ROUND_ROBIN'), backend);
    expect(c).not.toBe(a);
    expect(c.policy.loadBalancer).toBe('ROUND_ROBIN');
    expect(c.hostList).toEqual(['x', 'y']);
    expect(set.clusterFor(build('RANDOM'), { ...backend, port: 80 })).not.toBe(c);
    set.retain((key) => key.endsWith(':9080'));
    expect(set.size).toBe(1);
  });
});

describe('buildAttemptTimeoutMs', () => {
  it.each([
    [undefined, undefined, 0, undefined],
    [5000, undefined, 1000, 4000],
    [undefined, 1000, 9999, 1000],
    [5000, 1000, 1000, 1000],
    [5000, 1000, 4500, 500],
    [5000, 1000, 6000, 0],
  ])('request %s, per-try %s, elapsed %i → %s', (requestMs, perTryMs, elapsed, want) => {
    expect(buildAttemptTimeoutMs({ requestMs, perTryMs }, elapsed)).toBe(want);
  });
});
