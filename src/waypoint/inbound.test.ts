import { describe, expect, it } from 'vitest';
import { compileObjects } from '../config-source/index.js';
import { buildInboundTarget, buildRequestClient } from './inbound.js';
import { locatedObjects } from './test-helpers/index.js';
import { BASE_YAML, BASE_YAML_ALL_TRAFFIC, SELF } from './test-helpers/runtime.js';

const EXTRA = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: other, namespace: shop}
spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
---
apiVersion: v1
kind: Service
metadata: {name: elsewhere, namespace: shop, labels: {istio.io/use-waypoint: other}}
spec: {clusterIP: 127.10.53.20, selector: {app: reviews}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: direct, namespace: shop, labels: {istio.io/use-waypoint: none}}
spec: {clusterIP: 127.10.53.21, selector: {app: reviews}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: shop}
spec: {clusterIP: None, selector: {app: reviews}, ports: [{port: 80, targetPort: 8080, appProtocol: http}]}`;

const { state } = compileObjects(locatedObjects(`${BASE_YAML}\n---\n${EXTRA}`));

describe('buildInboundTarget', () => {
  it.each([
    [
      'a VIP served here',
      { kind: 'ip', ip: '127.10.53.1', port: 9080 },
      { ok: true, name: 'reviews', tcp: false },
    ],
    ['a TCP port', { kind: 'ip', ip: '127.10.53.4', port: 7000 }, { ok: true, name: 'tcp-echo', tcp: true }],
    [
      'a headless Service by hostname',
      { kind: 'host', host: 'headless.shop.svc.cluster.local', port: 80 },
      { ok: true, name: 'headless', tcp: false },
    ],
    ['an unknown port', { kind: 'ip', ip: '127.10.53.1', port: 81 }, { ok: false, reason: /has no port 81/ }],
    [
      'an unknown VIP',
      { kind: 'ip', ip: '127.10.99.1', port: 80 },
      { ok: false, reason: /not the address of any/ },
    ],
    [
      "another waypoint's Service",
      { kind: 'ip', ip: '127.10.53.20', port: 80 },
      { ok: false, reason: /does not use waypoint shop\/waypoint .*names shop\/other/ },
    ],
    [
      'an opted-out Service',
      { kind: 'ip', ip: '127.10.53.21', port: 80 },
      { ok: false, reason: /no waypoint/ },
    ],
    [
      'a pod IP',
      { kind: 'ip', ip: '127.0.53.1', port: 8080 },
      { ok: false, reason: /workload shop\/reviews-v1-0, which does not use waypoint shop\/waypoint/ },
    ],
    [
      'an unknown hostname',
      { kind: 'host', host: 'nope.shop.svc.cluster.local', port: 80 },
      { ok: false, reason: /not the hostname/ },
    ],
  ] as const)('%s', (_name, authority, want) => {
    const r = buildInboundTarget(state, SELF, authority, 'shop');
    expect(r.ok).toBe(want.ok);
    if (r.ok && want.ok) {
      expect(r.destination.name).toBe(want.name);
      expect(r.tcp).toBe(want.tcp);
      expect(r.destination.port).toBe(authority.port);
    }
    if (!r.ok && !want.ok) {
      expect(r.status).toBe(503);
      expect(r.reason).toMatch(want.reason);
    }
  });
});

describe('buildInboundTarget, workload-addressed (a waypoint for all traffic)', () => {
  const all = compileObjects(locatedObjects(`${BASE_YAML_ALL_TRAFFIC}\n---\n${EXTRA}`)).state;

  it('admits a pod that uses this waypoint, on the port the client dialled', () => {
    const r = buildInboundTarget(all, SELF, { kind: 'ip', ip: '127.0.53.1', port: 8080 }, 'shop');
    expect(r).toEqual({
      ok: true,
      destination: {
        namespace: 'shop',
        name: 'reviews-v1-0',
        port: 8080,
        vip: '127.0.53.1',
        workload: { ip: '127.0.53.1' },
      },
      tcp: false,
    });
  });

  it('still serves Service VIPs, and refuses an unknown address', () => {
    const svc = buildInboundTarget(all, SELF, { kind: 'ip', ip: '127.10.53.1', port: 9080 }, 'shop');
    expect(svc.ok && svc.destination.workload).toBeUndefined();
    const none = buildInboundTarget(all, SELF, { kind: 'ip', ip: '127.0.99.9', port: 80 }, 'shop');
    expect(none).toMatchObject({
      ok: false,
      status: 503,
      reason: /not the address of any known Service or workload/,
    });
  });
});

describe('buildRequestClient', () => {
  it.each([
    ['ip:port', '127.0.53.100:4711', '127.0.53.100'],
    ['a bare IP', '10.1.2.3', '10.1.2.3'],
    ['[v6]:port', '[fd00::7]:1234', 'fd00::7'],
    ['a bare IPv6', 'fd00::7', 'fd00::7'],
    ['absent', undefined, '10.9.9.9'],
    ['not an IP', 'unknown', '10.9.9.9'],
  ])('%s', (_name, forwarded, ip) => {
    expect(buildRequestClient('spiffe://cluster.local/ns/a/sa/b', '10.9.9.9', forwarded)).toEqual({
      identity: 'spiffe://cluster.local/ns/a/sa/b',
      ip,
    });
  });
});
