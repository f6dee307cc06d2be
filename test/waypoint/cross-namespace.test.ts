/**
 * A waypoint shared across namespaces: a Service in `payments` names shop's waypoint with
 * istio.io/use-waypoint + istio.io/use-waypoint-namespace, and the waypoint's HBONE listener
 * admits every namespace. Its traffic goes through the waypoint, and a policy in `payments` that
 * targets the Service is enforced there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoApp, type RunningApp } from '../../src/demo/sample-apps.js';
import { pod, WaypointMesh } from './fixture.js';

const A = '127.0.47';
const B = '127.0.48';
const VIP = '127.10.47';

const mesh = new WaypointMesh({
  a: A,
  b: B,
  vip: VIP,
  allNamespaces: true,
  base: [
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: payments, labels: {istio.io/dataplane-mode: ambient}}`,
    pod('ledger-0', 'payments', 'node-b', `${B}.40`, { app: 'ledger' }, 'ledger'),
    `apiVersion: v1
kind: Service
metadata: {name: ledger, namespace: payments, labels: {istio.io/use-waypoint: waypoint, istio.io/use-waypoint-namespace: shop}}
spec: {clusterIP: ${VIP}.40, selector: {app: ledger}, ports: [{name: http, port: 80, targetPort: 8080}]}`,
  ],
});
const apps: RunningApp[] = [];

beforeAll(async () => {
  apps.push(...Object.values(await mesh.startReviews()));
  apps.push(await startEchoApp({ host: `${B}.40`, port: 8080, pod: 'ledger-0', version: 'v1' }));
  await mesh.start();
});

afterAll(() => mesh.teardown(apps));

const DENY_REFUNDS = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-refunds, namespace: payments}
spec:
  targetRefs: [{kind: Service, group: "", name: ledger}]
  action: DENY
  rules:
  - to: [{operation: {paths: ["/refunds"]}}]`;

describe('a waypoint in another namespace', () => {
  it('carries the Service’s traffic and enforces the Service’s policy from its own namespace', async () => {
    await mesh.apply([DENY_REFUNDS]);
    const agent = mesh.agent();
    const ok = await mesh.request(agent, 'ledger.payments:80', '/balance');
    expect(ok.status).toBe(200);
    expect(ok.json.pod).toBe('ledger-0');
    expect((await mesh.request(agent, 'ledger.payments:80', '/refunds')).status).toBe(403);
    await mesh.wp().waitForLog((l) => l.path === '/refunds' && l.response_code === 403);
    expect(mesh.requests()[0]).toMatchObject({
      'dst.service': 'ledger.payments.svc.cluster.local',
      response_code: 200,
    });
  });
});
