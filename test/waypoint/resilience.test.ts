/**
 * End to end through a real waypoint: retries, the retry budget, timeouts, outlier detection and
 * fault injection, with backends that count the requests they see.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoApp, type RunningApp } from '../../src/demo/sample-apps.js';
import { metricSum, scrape } from '../helpers/prom.js';
import { httpRoute, pod, service, WaypointMesh } from './fixture.js';

const A = '127.0.55';
const B = '127.0.56';
const VIP = '127.10.55';

const mesh = new WaypointMesh({
  a: A,
  b: B,
  vip: VIP,
  base: [
    pod('failing-0', 'shop', 'node-a', `${A}.31`, { app: 'failing' }, 'failing'),
    service('failing', 'shop', `${VIP}.4`, { app: 'failing' }, 80, 8080),
    pod('pair-a-0', 'shop', 'node-a', `${A}.41`, { app: 'pair' }, 'pair'),
    pod('pair-b-0', 'shop', 'node-b', `${B}.41`, { app: 'pair' }, 'pair'),
    service('pair', 'shop', `${VIP}.5`, { app: 'pair' }, 80, 8080),
  ],
});

/** A backend answering every request with `status` after `delayMs`, counting requests. */
async function startStatusApp(host: string, status: number, delayMs: number): Promise<RunningApp> {
  let n = 0;
  const server = http.createServer((req, res) => {
    n++;
    req.resume();
    const t = setTimeout(() => res.writeHead(status, { 'content-length': '4' }).end('fail'), delayMs);
    res.on('close', () => clearTimeout(t));
  });
  await new Promise<void>((r) => server.listen(8080, host, r));
  return {
    address: { address: host, port: 8080, family: 'IPv4' },
    count: () => n,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const apps: Record<string, RunningApp> = {};
const count = (name: string): number => apps[name]?.count() ?? 0;

beforeAll(async () => {
  Object.assign(apps, await mesh.startReviews());
  apps.failing = await startStatusApp(`${A}.31`, 503, 50);
  apps.broken = await startStatusApp(`${A}.41`, 500, 0);
  apps.healthy = await startEchoApp({ host: `${B}.41`, port: 8080, pod: 'pair-b-0', version: 'v1' });
  await mesh.start();
});

afterAll(async () => {
  await mesh.teardown(Object.values(apps));
});

const V1_WITH_RETRY = httpRoute(
  'reviews',
  'reviews',
  `  - matches: [{path: {type: PathPrefix, value: /delay}}]
    backendRefs: [{name: reviews-v1, port: 80}]
    timeouts: {request: 300ms}
  - backendRefs: [{name: reviews-v1, port: 80}]
    retry: {attempts: 2, codes: [503], backoff: 10ms}`,
);
const FAILING_WITH_RETRY = httpRoute(
  'failing',
  'failing',
  `  - backendRefs: [{name: failing, port: 80}]
    retry: {attempts: 2, codes: [503], backoff: 1ms}`,
);

describe('waypoint resilience end to end', () => {
  it('a backend that fails twice then succeeds yields one success after retries', async () => {
    await mesh.apply([V1_WITH_RETRY, FAILING_WITH_RETRY]);
    const agent = mesh.agent();
    const before = count('v1');
    const r = await mesh.request(agent, 'reviews.shop:80', '/flaky/2/e2e-1');
    expect(r.status).toBe(200);
    expect(count('v1') - before).toBe(3);
    const line = await mesh.wp().waitForLog((l) => l.path === '/flaky/2/e2e-1');
    expect(line).toMatchObject({ attempts: 3, response_code: 200, response_flags: '-' });
  });

  it('with a backend that always fails, total attempts stay within the retry budget', async () => {
    const agent = mesh.agent(64);
    const before = count('failing');
    const replies = await Promise.all(
      Array.from({ length: 30 }, () => mesh.request(agent, 'failing.shop:80', '/')),
    );
    expect(replies.every((r) => r.status === 503)).toBe(true);
    const attempts = count('failing') - before;
    // Without the budget: 30 × 3 = 90. With it: max(3, 20 % of the active requests) retries in
    // flight at once, so about 30 + 6 + 3 when all 30 arrive together.
    expect(attempts).toBeGreaterThanOrEqual(30);
    expect(attempts).toBeLessThanOrEqual(48);
  });

  it('a route timeout gives 504 within the timeout', async () => {
    const agent = mesh.agent();
    const t0 = performance.now();
    const r = await mesh.request(agent, 'reviews.shop:80', '/delay/5000');
    const elapsed = performance.now() - t0;
    expect(r.status).toBe(504);
    expect(r.text).toBe('upstream request timeout');
    expect(elapsed).toBeGreaterThanOrEqual(295);
    expect(elapsed).toBeLessThan(2000);
    const m = await scrape(mesh.metricsUrl());
    expect(metricSum(m, 'istio_requests_total', { response_code: '504', response_flags: 'UT' })).toBe(1);
  });

  it('outlier detection ejects the replica that returns 5xx; traffic moves to the healthy one', async () => {
    await mesh.apply([
      V1_WITH_RETRY,
      FAILING_WITH_RETRY,
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: pair, namespace: shop}
spec:
  host: pair.shop.svc.cluster.local
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3, interval: 5s, baseEjectionTime: 1m, maxEjectionPercent: 50}`,
    ]);
    const agent = mesh.agent();
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await mesh.request(agent, 'pair.shop:80', '/')).status);
    expect(count('broken')).toBe(3);
    expect(count('healthy')).toBe(37);
    expect(statuses.filter((s) => s === 500)).toHaveLength(3);
    expect(statuses.slice(-20).every((s) => s === 200)).toBe(true);
  });

  it('honours fault abort and delay percentages', async () => {
    await mesh.apply([
      V1_WITH_RETRY,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-faults, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http:
  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 25}}}
  - match: [{uri: {prefix: /slow}}]
    fault: {delay: {fixedDelay: 200ms, percentage: {value: 50}}}`,
    ]);
    const agent = mesh.agent(20);
    const before = count('v1');
    const replies: number[] = [];
    for (let batch = 0; batch < 8; batch++) {
      const r = await Promise.all(
        Array.from({ length: 50 }, () => mesh.request(agent, 'reviews.shop:80', '/abort')),
      );
      replies.push(...r.map((x) => x.status));
    }
    const aborted = replies.filter((s) => s === 418).length;
    // Binomial(400, 0.25): mean 100, standard deviation 8.7.
    expect(aborted).toBeGreaterThan(100 - 35);
    expect(aborted).toBeLessThan(100 + 35);
    expect(count('v1') - before).toBe(400 - aborted);
    const slow = await Promise.all(
      Array.from({ length: 40 }, async () => {
        const t0 = performance.now();
        await mesh.request(agent, 'reviews.shop:80', '/slow');
        return performance.now() - t0;
      }),
    );
    const m = await scrape(mesh.metricsUrl());
    expect(metricSum(m, 'istio_requests_total', { response_code: '418', response_flags: 'FI' })).toBe(
      aborted,
    );
    const delayed = metricSum(m, 'istio_requests_total', { response_flags: 'DI' });
    // Binomial(40, 0.5): mean 20, standard deviation 3.2.
    expect(delayed).toBeGreaterThan(20 - 13);
    expect(delayed).toBeLessThan(20 + 13);
    // Every delayed request really waited.
    expect(slow.filter((ms) => ms >= 195).length).toBeGreaterThanOrEqual(delayed);
  });
});
