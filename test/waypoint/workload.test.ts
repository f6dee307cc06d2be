/**
 * Workload-addressed traffic end to end: with the waypoint for `all` traffic, a client that dials
 * a pod IP in the namespace goes through the waypoint too (ztunnel's rule for workload waypoints),
 * the waypoint forwards to that pod under its own identity, and its own policies apply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/demo/sample-apps.js';
import { metricSum, scrape } from '../helpers/prom.js';
import { CLIENT_ID, WAYPOINT_ID, WaypointMesh } from './fixture.js';

const A = '127.0.54';
const B = '127.0.50';
const VIP = '127.10.54';

const mesh = new WaypointMesh({ a: A, b: B, vip: VIP, waypointFor: 'all' });
const apps: RunningApp[] = [];

beforeAll(async () => {
  apps.push(...Object.values(await mesh.startReviews()));
  await mesh.start();
});

afterAll(async () => {
  await mesh.teardown(apps);
});

const DENY_ADMIN = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: shop}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin"]}}]`;

describe('workload-addressed traffic through a waypoint for all traffic', () => {
  it('a pod IP goes through the waypoint to that pod, and the waypoint’s policy applies', async () => {
    await mesh.apply([DENY_ADMIN]);
    const agent = mesh.agent();
    const ok = await mesh.request(agent, `${B}.22:8080`, '/by-pod-ip');
    expect(ok.status).toBe(200);
    expect(ok.json.pod).toBe('reviews-v2-0');
    expect(ok.json.headers?.['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect((await mesh.request(agent, `${B}.22:8080`, '/admin')).status).toBe(403);
    await mesh.wp().waitForLog((l) => l.path === '/admin' && l.response_code === 403);
    const [first] = mesh.requests();
    expect(first).toMatchObject({
      'src.identity': CLIENT_ID,
      'dst.workload': 'reviews-v2-0',
      response_code: 200,
    });
    expect(first?.['dst.service']).toBeUndefined();
    // Client side (logged when the connection closes): ztunnel sent the pod-addressed connection
    // to the waypoint, authority = pod IP:port.
    agent.destroy();
    const out = await mesh
      .ztunnel('node-a')
      .waitForLog((l) => l.direction === 'outbound' && l['dst.hbone_addr'] === `${B}.22:8080`);
    expect(out['dst.addr']).toBe(`${mesh.waypointIp}:15008`);
    // Server side: the pod's ztunnel accepted the connection from the waypoint's identity, never
    // from the client's (the waypoint keeps its upstream connection open, so read the metrics).
    const m = await scrape(`http://${B}.1:15020/metrics`);
    const opened = (principal: string) =>
      metricSum(m, 'istio_tcp_connections_opened_total', {
        reporter: 'destination',
        source_principal: principal,
      });
    expect(opened(WAYPOINT_ID)).toBeGreaterThan(0);
    expect(opened(CLIENT_ID)).toBe(0);
  });
});
