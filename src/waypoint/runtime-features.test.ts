/**
 * Each L7 feature through the waypoint runtime, over real sockets: routing (header match,
 * weighted split, 404), filters (redirect, rewrite, header modifiers), retries and the retry
 * budget, timeouts, L7 authorization, fault injection, outlier detection and the circuit breaker.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { readMetric } from '../telemetry/index.js';
import type { RunningApp } from '../demo/sample-apps.js';
import { readBody, RuntimeHarness } from './test-helpers/runtime.js';

/** A backend that answers every request with 503 after `delayMs`. */
async function startSlowFailure(host: string, port: number, delayMs: number): Promise<RunningApp> {
  let n = 0;
  const server = http.createServer((req, res) => {
    n++;
    req.resume();
    const t = setTimeout(() => res.writeHead(503, { 'content-length': '4' }).end('fail'), delayMs);
    res.on('close', () => clearTimeout(t));
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

let h: RuntimeHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: { pod?: string; version?: string; path?: string; headers?: Record<string, string> };
}

function request(
  agent: http.Agent,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: 'reviews.shop', port: 9080, path, method, headers, agent }, (res) => {
      readBody(res).then((text) => {
        let json: Reply['json'] = {};
        try {
          json = JSON.parse(text) as Reply['json'];
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      }, reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const route = (rules: string, name = 'reviews'): string => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
${rules}`;

const V1 = 'backendRefs: [{name: reviews-v1, port: 9080}]';

describe('routing', () => {
  it('routes x-canary: true to v2 and everything else to v1', async () => {
    h = new RuntimeHarness(
      route(`  - matches: [{headers: [{name: x-canary, value: "true"}]}]
    backendRefs: [{name: reviews-v2, port: 9080}]
  - ${V1}`),
    );
    await h.startBackends();
    const agent = h.agent();
    for (let i = 0; i < 10; i++) {
      expect((await request(agent, '/')).json.version).toBe('v1');
      expect((await request(agent, '/', { 'x-canary': 'true' })).json.version).toBe('v2');
      expect((await request(agent, '/', { 'x-canary': 'false' })).json.version).toBe('v1');
    }
    expect(h.access()[1]).toMatchObject({ route: 'shop/reviews[0]', 'dst.workload': 'reviews-v2-0' });
    agent.destroy();
  });

  it('splits 90/10 by weight over 1,000 requests, within 4 standard deviations', async () => {
    h = new RuntimeHarness(
      route(
        `  - backendRefs: [{name: reviews-v1, port: 9080, weight: 90}, {name: reviews-v2, port: 9080, weight: 10}]`,
      ),
    );
    const { v1, v2 } = await h.startBackends();
    const agent = h.agent();
    const batch = async (n: number) => {
      await Promise.all(Array.from({ length: n }, () => request(agent, '/')));
    };
    for (let i = 0; i < 20; i++) await batch(50);
    expect(v1.count() + v2.count()).toBe(1000);
    // Binomial(1000, 0.1): mean 100, standard deviation 9.5.
    expect(v2.count()).toBeGreaterThan(100 - 38);
    expect(v2.count()).toBeLessThan(100 + 38);
    agent.destroy();
  });

  it('answers 404 (NR) when routes are attached and none matches, without touching a backend', async () => {
    h = new RuntimeHarness(
      route(`  - matches: [{path: {type: PathPrefix, value: /only}}]
    ${V1}`),
    );
    const { v1, v2 } = await h.startBackends();
    const agent = h.agent();
    expect((await request(agent, '/only/x')).status).toBe(200);
    expect((await request(agent, '/other')).status).toBe(404);
    expect(v1.count() + v2.count()).toBe(1);
    expect(h.access()[1]).toMatchObject({ response_code: 404, response_flags: 'NR' });
    expect(
      await readMetric(h.registry, 'istio_requests_total', { response_code: '404', response_flags: 'NR' }),
    ).toBe(1);
    agent.destroy();
  });
});

describe('filters', () => {
  it('redirects with the rewritten path and a 301', async () => {
    h = new RuntimeHarness(
      route(`  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}, statusCode: 301}}]`),
    );
    const { v1, v2 } = await h.startBackends();
    const agent = h.agent();
    const r = await request(agent, '/old/page?q=1');
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe('http://reviews.shop:9080/new/page?q=1');
    expect(v1.count() + v2.count()).toBe(0);
    agent.destroy();
  });

  it('rewrites the path and host, and modifies request and response headers', async () => {
    h = new RuntimeHarness(
      route(`  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - {type: URLRewrite, urlRewrite: {hostname: internal.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-added, value: "yes"}], remove: [x-remove-me]}}
    - {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: x-resp, value: r1}], remove: [x-pod]}}
    ${V1}`),
    );
    await h.startBackends();
    const agent = h.agent();
    const r = await request(agent, '/api/items?x=1', { 'x-remove-me': 'gone' });
    expect(r.status).toBe(200);
    expect(r.json.path).toBe('/v2/items?x=1');
    expect(r.json.headers?.host).toBe('internal.example');
    expect(r.json.headers?.['x-added']).toBe('yes');
    expect(r.json.headers?.['x-remove-me']).toBeUndefined();
    expect(r.headers['x-resp']).toBe('r1');
    expect(r.headers['x-pod']).toBeUndefined();
    agent.destroy();
  });
});

describe('retries and timeouts', () => {
  it('a backend that fails twice then succeeds yields one success after two retries', async () => {
    h = new RuntimeHarness(
      route(`  - ${V1}
    retry: {attempts: 2, codes: [503], backoff: 5ms}`),
    );
    const { v1 } = await h.startBackends();
    const agent = h.agent();
    const r = await request(agent, '/flaky/2/k1');
    expect(r.status).toBe(200);
    expect(v1.count()).toBe(3);
    expect(h.access()[0]).toMatchObject({ attempts: 3, response_code: 200, response_flags: '-' });
    // Three failures exhaust the two retries: 503 with URX.
    const exhausted = await request(agent, '/flaky/3/k2');
    expect(exhausted.status).toBe(503);
    expect(h.access()[1]).toMatchObject({ attempts: 3, response_code: 503, response_flags: 'URX' });
    agent.destroy();
  });

  it('the retry budget bounds attempts against a backend that always fails', async () => {
    const rules = `  - ${V1}
    retry: {attempts: 2, codes: [503], backoff: 1ms}`;
    const run = async (extra: string): Promise<number> => {
      h = new RuntimeHarness(route(rules) + extra);
      // Fails every request after 50 ms, so the 30 requests' attempts overlap.
      const failing = h.track(await startSlowFailure('127.0.53.1', 8080, 50));
      const agent = h.agent();
      const replies = await Promise.all(Array.from({ length: 30 }, () => request(agent, '/')));
      expect(replies.every((r) => r.status === 503)).toBe(true);
      agent.destroy();
      const n = failing.count();
      await h.close();
      h = undefined;
      return n;
    };
    // Without a budget (an explicit maxRetries replaces it) every request is tried three times.
    const unbounded = await run(`
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-v1, namespace: shop}
spec: {host: reviews-v1, trafficPolicy: {connectionPool: {http: {maxRetries: 1000}}}}`);
    expect(unbounded).toBe(90);
    // The default budget: at most max(3, 20 % of the 30 active requests) = 6 retries in flight,
    // then max(3, 20 % of 6) = 3 for the second round: about 30 + 6 + 3 attempts.
    const budgeted = await run('');
    expect(budgeted).toBeGreaterThanOrEqual(33);
    expect(budgeted).toBeLessThanOrEqual(45);
  });

  it('a route timeout answers 504 UT within the timeout; a per-try timeout ends the request (Istio does not retry it)', async () => {
    h = new RuntimeHarness(
      route(`  - matches: [{path: {type: PathPrefix, value: /delay}}]
    ${V1}
    timeouts: {request: 200ms}
  - matches: [{path: {type: PathPrefix, value: /try}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /delay}}}]
    ${V1}
    timeouts: {request: 2s, backendRequest: 100ms}
    retry: {attempts: 2, codes: [504]}`),
    );
    const { v1 } = await h.startBackends();
    const agent = h.agent();
    const t0 = performance.now();
    const r = await request(agent, '/delay/5000');
    const elapsed = performance.now() - t0;
    expect(r.status).toBe(504);
    expect(r.text).toBe('upstream request timeout');
    expect(elapsed).toBeGreaterThanOrEqual(195);
    expect(elapsed).toBeLessThan(1000);
    expect(h.access()[0]).toMatchObject({ response_code: 504, response_flags: 'UT', attempts: 1 });
    const t1 = performance.now();
    const perTry = await request(agent, '/try/5000');
    expect(perTry.status).toBe(504);
    expect(performance.now() - t1).toBeLessThan(1000);
    expect(h.access()[1]).toMatchObject({
      response_flags: 'UT',
      response_code_details: 'upstream_per_try_timeout',
      attempts: 1,
    });
    expect(v1.count()).toBe(2);
    // A fast answer on the same rule is untouched by the per-try timeout.
    expect((await request(agent, '/try/1')).status).toBe(200);
    agent.destroy();
  });
});
