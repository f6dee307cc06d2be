/**
 * End to end through a real waypoint: client-0 (node-a) → ztunnel → HBONE → `meshd waypoint`
 * (node-b) → HBONE → ztunnel → echo pods reporting their version. HTTPRoute routing, weighted
 * canary, redirect and rewrite, 404, bypass for a namespace without a waypoint, hot reload that
 * keeps the last good config, metrics and config_dump.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoApp, type RunningApp } from '../../src/demo/sample-apps.js';
import { metricSum, scrape } from '../helpers/prom.js';
import { CLIENT_ID, httpRoute, pod, service, WAYPOINT_ID, WaypointMesh } from './fixture.js';

const A = '127.0.51';
const B = '127.0.52';
const VIP = '127.10.51';

const mesh = new WaypointMesh({
  a: A,
  b: B,
  vip: VIP,
  base: [
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: plain, labels: {istio.io/dataplane-mode: ambient}}`,
    pod('plain-0', 'plain', 'node-b', `${B}.60`, { app: 'plain' }, 'plain'),
    service('plain', 'plain', `${VIP}.10`, { app: 'plain' }, 80, 8080),
  ],
});
const apps: Record<string, RunningApp> = {};

beforeAll(async () => {
  Object.assign(apps, await mesh.startReviews());
  apps.plain = await startEchoApp({ host: `${B}.60`, port: 8080, pod: 'plain-0', version: 'v1' });
  await mesh.start();
});

afterAll(async () => {
  await mesh.teardown(Object.values(apps));
});

const count = (name: string): number => apps[name]?.count() ?? 0;

const CANARY = httpRoute(
  'reviews',
  'reviews',
  `  - matches: [{headers: [{name: x-canary, value: "true"}]}]
    backendRefs: [{name: reviews-v2, port: 80}]
  - backendRefs: [{name: reviews-v1, port: 80}]`,
);

describe('waypoint routing end to end', () => {
  it('routes x-canary: true to v2 and everything else to v1', async () => {
    await mesh.apply([CANARY]);
    const agent = mesh.agent();
    for (let i = 0; i < 5; i++) {
      const plainReply = await mesh.request(agent, 'reviews.shop:80', '/');
      expect(plainReply.json.version).toBe('v1');
      const canary = await mesh.request(agent, `${VIP}.1:80`, '/', { headers: { 'x-canary': 'true' } });
      expect(canary.json.version).toBe('v2');
      expect(canary.json.headers?.['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
    const line = await mesh.wp().waitForLog((l) => l['dst.workload'] === 'reviews-v2-0');
    expect(line).toMatchObject({
      'src.identity': CLIENT_ID,
      'src.workload': 'client-0',
      route: 'shop/reviews[0]',
      response_code: 200,
    });
  });

  it('splits 90/10 by weight over 1,000 requests within 4 standard deviations', async () => {
    await mesh.apply([
      httpRoute(
        'reviews',
        'reviews',
        `  - backendRefs: [{name: reviews-v1, port: 80, weight: 90}, {name: reviews-v2, port: 80, weight: 10}]`,
      ),
    ]);
    const [v1, v2] = [count('v1'), count('v2')];
    const agent = mesh.agent(20);
    for (let batch = 0; batch < 20; batch++) {
      const replies = await Promise.all(
        Array.from({ length: 50 }, () => mesh.request(agent, 'reviews.shop:80', '/')),
      );
      expect(replies.every((r) => r.status === 200)).toBe(true);
    }
    const [d1, d2] = [count('v1') - v1, count('v2') - v2];
    expect(d1 + d2).toBe(1000);
    // Binomial(1000, 0.1): mean 100, standard deviation 9.5.
    expect(d2).toBeGreaterThan(62);
    expect(d2).toBeLessThan(138);
  });

  it('redirects and rewrites as the route says', async () => {
    await mesh.apply([
      httpRoute(
        'reviews',
        'reviews',
        `  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}, statusCode: 301}}]
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters: [{type: URLRewrite, urlRewrite: {hostname: internal.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}]
    backendRefs: [{name: reviews-v1, port: 80}]`,
      ),
    ]);
    const agent = mesh.agent();
    const before = count('v1') + count('v2');
    const redirect = await mesh.request(agent, 'reviews.shop:80', '/old/item?id=7');
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('http://reviews.shop/new/item?id=7');
    expect(count('v1') + count('v2')).toBe(before);
    const rewritten = await mesh.request(agent, 'reviews.shop:80', '/api/items?id=7');
    expect(rewritten.status).toBe(200);
    expect(rewritten.json).toMatchObject({ version: 'v1', path: '/v2/items?id=7' });
    expect(rewritten.json.headers?.host).toBe('internal.example');
    // Routes are attached: a request that matches none gets 404, and no backend sees it.
    const none = await mesh.request(agent, 'reviews.shop:80', '/elsewhere');
    expect(none.status).toBe(404);
    expect(count('v1') + count('v2')).toBe(before + 1);
  });

  it('keeps the last good config when an edit does not compile', async () => {
    await mesh.apply([CANARY]);
    const agent = mesh.agent();
    expect(
      (await mesh.request(agent, 'reviews.shop:80', '/', { headers: { 'x-canary': 'true' } })).json.version,
    ).toBe('v2');
    const broken = httpRoute('broken', 'reviews', `  - matches: [{path: {type: Sideways, value: /x}}]`);
    await mesh.apply([CANARY, broken], { rejected: true });
    expect(
      (await mesh.request(agent, 'reviews.shop:80', '/', { headers: { 'x-canary': 'true' } })).json.version,
    ).toBe('v2');
    const m = await scrape(mesh.metricsUrl());
    expect(metricSum(m, 'meshd_waypoint_config_rejected_total')).toBe(1);
    await mesh.apply([CANARY]);
  });

  it('a namespace without use-waypoint bypasses the waypoint', async () => {
    const agent = mesh.agent();
    const r = await mesh.request(agent, 'plain.plain:80', '/');
    expect(r.status).toBe(200);
    expect(r.json.pod).toBe('plain-0');
    // The destination ztunnel saw the client itself, not the waypoint.
    agent.destroy();
    const inbound = await mesh
      .ztunnel('node-b')
      .waitForLog((l) => l.direction === 'inbound' && l['dst.workload'] === 'plain-0');
    expect(inbound['src.identity']).toBe(CLIENT_ID);
    expect(mesh.requests().some((l) => String(l['dst.service']).startsWith('plain.'))).toBe(false);
  });

  it('reports Istio request metrics and dumps its config', async () => {
    const m = await scrape(mesh.metricsUrl());
    expect(
      metricSum(m, 'istio_requests_total', {
        reporter: 'waypoint',
        source_workload: 'client',
        source_principal: CLIENT_ID,
        destination_service: 'reviews-v1.shop.svc.cluster.local',
        destination_version: 'v1',
        response_code: '200',
        response_flags: '-',
        connection_security_policy: 'mutual_tls',
      }),
    ).toBeGreaterThan(0);
    expect(
      metricSum(m, 'istio_request_duration_milliseconds_count', { reporter: 'waypoint' }),
    ).toBeGreaterThan(1000);
    const res = await fetch(`http://${mesh.waypointIp}:15000/config_dump`);
    const dump = (await res.json()) as {
      waypoint: { identity: string };
      services: string[];
      waypointConfig: { routes: Record<string, unknown[]> };
    };
    expect(dump.waypoint.identity).toBe(WAYPOINT_ID);
    expect(dump.services).toEqual(['shop/reviews', 'shop/reviews-v1', 'shop/reviews-v2']);
    expect(dump.waypointConfig.routes['shop/reviews']).toHaveLength(2);
    const ready = await fetch(`http://${mesh.waypointIp}:15021/healthz/ready`);
    expect(ready.status).toBe(200);
  });
});
