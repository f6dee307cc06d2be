/**
 * Policy features through the waypoint runtime over real sockets: L7 authorization, fault
 * injection, outlier detection, the connection-pool circuit breaker, and a client that leaves.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningApp } from '../demo/sample-apps.js';
import { startEchoApp } from '../demo/sample-apps.js';
import type { HoldingApp } from './test-helpers/runtime.js';
import { readBody, RuntimeHarness, startHoldingApp } from './test-helpers/runtime.js';

let h: RuntimeHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function request(
  agent: http.Agent,
  path: string,
  method = 'GET',
): Promise<{ status: number; text: string; pod: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: 'reviews.shop', port: 9080, path, method, agent }, (res) => {
      readBody(res).then(
        (text) =>
          resolve({ status: res.statusCode ?? 0, text, pod: res.headers['x-pod'] as string | undefined }),
        reject,
      );
    });
    req.on('error', reject);
    req.end();
  });
}

const policy = (name: string, action: string, rules: string): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: shop}
spec:
  targetRefs: [{kind: Service, group: "", name: reviews}]
  action: ${action}
  rules:
${rules}`;

describe('L7 authorization', () => {
  it('allows by principal and path, denies the rest with 403 "RBAC: access denied"', async () => {
    h = new RuntimeHarness(
      [
        policy(
          'reviews-allow',
          'ALLOW',
          `  - from: [{source: {principals: [cluster.local/ns/shop/sa/frontend]}}]
    to: [{operation: {methods: [GET], paths: ["/public/*"]}}]`,
        ),
        policy('reviews-deny', 'DENY', `  - to: [{operation: {paths: ["/public/secret"]}}]`),
      ].join('\n---\n'),
    );
    const { v1, v2 } = await h.startBackends();
    const agent = h.agent();
    expect((await request(agent, '/public/page')).status).toBe(200);
    const denied = await request(agent, '/public/secret');
    expect(denied).toMatchObject({ status: 403, text: 'RBAC: access denied' });
    expect((await request(agent, '/private')).status).toBe(403);
    expect((await request(agent, '/public/page', 'POST')).status).toBe(403);
    expect(v1.count() + v2.count()).toBe(1);
    expect(h.access()[1]).toMatchObject({
      response_code: 403,
      response_code_details: 'rbac_access_denied_matched_policy[ns[shop]-policy[reviews-deny]-rule[0]]',
    });
    agent.destroy();
  });

  it('denies a client whose principal the ALLOW policy does not name', async () => {
    h = new RuntimeHarness(
      policy('only-admin', 'ALLOW', `  - from: [{source: {principals: [cluster.local/ns/shop/sa/admin]}}]`),
    );
    await h.startBackends();
    const agent = h.agent();
    expect((await request(agent, '/')).status).toBe(403);
    agent.destroy();
  });
});

describe('fault injection', () => {
  it('aborts and delays the configured percentages of requests', async () => {
    h = new RuntimeHarness(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 30}}}
  - match: [{uri: {prefix: /slow}}]
    fault: {delay: {fixedDelay: 100ms, percentage: {value: 100}}}`);
    const { v1, v2 } = await h.startBackends();
    const agent = h.agent();
    const replies = await Promise.all(Array.from({ length: 400 }, () => request(agent, '/abort')));
    const aborted = replies.filter((r) => r.status === 418);
    // Binomial(400, 0.3): mean 120, standard deviation 9.2.
    expect(aborted.length).toBeGreaterThan(120 - 37);
    expect(aborted.length).toBeLessThan(120 + 37);
    expect(aborted[0]?.text).toBe('fault filter abort');
    expect(v1.count() + v2.count()).toBe(400 - aborted.length);
    const t0 = performance.now();
    expect((await request(agent, '/slow')).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(95);
    const flags = h.access().map((l) => l.response_flags);
    expect(flags.filter((f) => f === 'FI')).toHaveLength(aborted.length);
    expect(flags.at(-1)).toBe('DI');
    agent.destroy();
  });
});

/** A backend that answers every request with `status`. */
async function startStatusApp(host: string, port: number, status: number): Promise<RunningApp> {
  let n = 0;
  const server = http.createServer((req, res) => {
    n++;
    req.resume();
    res.writeHead(status, { 'content-length': '2', 'x-pod': 'broken' }).end('no');
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  return {
    address: { address: host, port, family: 'IPv4' },
    count: () => n,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

describe('outlier detection and circuit breaking', () => {
  it('ejects the replica that returns 5xx; traffic moves to the healthy one', async () => {
    h = new RuntimeHarness(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50}`);
    const broken = h.track(await startStatusApp('127.0.53.1', 8080, 500));
    const healthy = h.track(await startEchoApp({ host: '127.0.53.2', port: 8080, pod: 'reviews-v2-0' }));
    const agent = h.agent();
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) statuses.push((await request(agent, '/')).status);
    // Exactly 3 consecutive errors eject it; afterwards only the healthy replica is chosen.
    expect(broken.count()).toBe(3);
    expect(healthy.count()).toBe(57);
    expect(statuses.slice(-40).every((s) => s === 200)).toBe(true);
    agent.destroy();
  });

  it('answers 503 UO when connectionPool limits are exceeded', async () => {
    h = new RuntimeHarness(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec: {host: reviews, trafficPolicy: {connectionPool: {http: {http2MaxRequests: 2}}}}`);
    const v1 = h.track(await startHoldingApp('127.0.53.1', 8080));
    const v2 = h.track(await startHoldingApp('127.0.53.2', 8080));
    const agent = h.agent();
    const held = [request(agent, '/a'), request(agent, '/b')];
    await waitForTotal([v1, v2], 2);
    const over = await request(agent, '/c');
    expect(over.status).toBe(503);
    expect(over.text).toMatch(/reset reason: overflow/);
    v1.release();
    v2.release();
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    expect((await request(agent, '/d')).status).toBe(200);
    expect(h.access().find((l) => l.response_code === 503)).toMatchObject({ response_flags: 'UO' });
    agent.destroy();
  });
});

describe('client going away', () => {
  it('cancels the upstream request and logs DC', async () => {
    h = new RuntimeHarness();
    const v1 = h.track(await startHoldingApp('127.0.53.1', 8080));
    const v2 = h.track(await startHoldingApp('127.0.53.2', 8080));
    const socket = h.tunnel();
    socket.write('GET /slow HTTP/1.1\r\nhost: reviews.shop:9080\r\n\r\n');
    await waitForTotal([v1, v2], 1);
    socket.destroy();
    const [line] = await h.waitForAccess(1);
    expect(line).toMatchObject({ response_flags: 'DC', response_code: 0 });
    await Promise.race([v1.whenCancelled(), v2.whenCancelled()]);
    expect(v1.cancelled() + v2.cancelled()).toBe(1);
  });
});

/** Resolves once the apps have seen `n` requests between them. */
function waitForTotal(apps: HoldingApp[], n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (apps.reduce((a, x) => a + x.count(), 0) >= n) resolve();
      else for (const a of apps) void a.waitForRequests(a.count() + 1).then(check);
    };
    check();
  });
}
