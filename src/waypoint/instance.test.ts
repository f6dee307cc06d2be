import { describe, expect, it } from 'vitest';
import { compileObjects } from '../config-source/index.js';
import { buildWaypointInstance } from './instance.js';
import { locatedObjects } from './test-helpers/index.js';
import { BASE_YAML } from './test-helpers/runtime.js';

const SECOND = `apiVersion: v1
kind: Pod
metadata: {name: waypoint-1, namespace: shop, labels: {gateway.networking.k8s.io/gateway-name: waypoint}}
spec: {nodeName: node-a, serviceAccountName: waypoint}
status: {podIP: 127.0.53.251}`;
const INGRESS = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop}
spec: {gatewayClassName: istio, listeners: [{name: http, port: 80, protocol: HTTP}]}`;

function find(extra: string[], name: string, namespace: string, pod?: string) {
  const objects = locatedObjects([BASE_YAML, ...extra].join('\n---\n'));
  const { state } = compileObjects(objects);
  return buildWaypointInstance({ objects, state, name, namespace, pod, clusterDomain: 'cluster.local' });
}

describe('buildWaypointInstance', () => {
  it('finds the only instance: its pod IP and service-account identity', () => {
    const r = find([], 'waypoint', 'shop');
    expect(r).toMatchObject({
      ok: true,
      instance: {
        ip: '127.0.53.250',
        identity: 'spiffe://cluster.local/ns/shop/sa/waypoint',
        self: { name: 'waypoint', namespace: 'shop', hostname: 'waypoint.shop.svc.cluster.local' },
      },
    });
  });

  it.each([
    [
      'an unknown Gateway',
      [],
      'nope',
      'shop',
      undefined,
      /no Gateway "nope" in namespace "shop"/,
      /declare it/,
    ],
    [
      'the wrong namespace',
      [],
      'waypoint',
      'other',
      undefined,
      /no Gateway "waypoint" in namespace "other"/,
      /--namespace/,
    ],
    [
      'a Gateway of another class',
      [INGRESS],
      'ingress',
      'shop',
      undefined,
      /gatewayClassName "istio", so it is not a waypoint/,
      /istio-waypoint/,
    ],
    [
      'a Gateway without instance pods',
      [
        INGRESS.replace('istio,', 'istio-waypoint,').replace(
          '{name: http, port: 80, protocol: HTTP}',
          '{name: mesh, port: 15008, protocol: HBONE}',
        ),
      ],
      'ingress',
      'shop',
      undefined,
      /no Pod in namespace "shop" is labelled gateway.networking.k8s.io\/gateway-name: ingress/,
      /declare the waypoint's Pod/,
    ],
    [
      'two instances and no --pod',
      [SECOND],
      'waypoint',
      'shop',
      undefined,
      /has 2 instance Pods \(waypoint-0, waypoint-1\)/,
      /--pod/,
    ],
    [
      'a --pod that is not an instance',
      [SECOND],
      'waypoint',
      'shop',
      'frontend-0',
      /frontend-0 is not an instance/,
      /waypoint-0, waypoint-1|--pod/,
    ],
  ] as const)('refuses %s, saying what to fix', (_name, extra, name, ns, pod, reason, hint) => {
    const r = find([...extra], name, ns, pod);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toMatch(reason);
    expect(r.hint).toMatch(hint);
  });

  it('picks the instance --pod names', () => {
    const r = find([SECOND], 'waypoint', 'shop', 'waypoint-1');
    expect(r.ok && r.instance.ip).toBe('127.0.53.251');
  });
});
