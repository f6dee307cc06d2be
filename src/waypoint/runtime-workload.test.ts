/**
 * Workload-addressed traffic through the waypoint runtime (a waypoint for `all` traffic, pods of
 * the namespace using it): the request goes to the pod the client dialled, only the waypoint's own
 * policies apply, and telemetry names the pod with no destination Service.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { readMetric } from '../telemetry/index.js';
import { BASE_YAML_ALL_TRAFFIC, readBody, RuntimeHarness } from './test-helpers/runtime.js';

let h: RuntimeHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function get(agent: http.Agent, path: string): Promise<{ status: number; pod: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.53.1', port: 8080, path, agent }, (res) => {
      readBody(res).then(
        () => resolve({ status: res.statusCode ?? 0, pod: res.headers['x-pod'] as string }),
        reject,
      );
    });
    req.on('error', reject);
    req.end();
  });
}

const policy = (name: string, target: string, path: string): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: shop}
spec:
  targetRefs: [${target}]
  action: DENY
  rules:
  - to: [{operation: {paths: ["${path}"]}}]`;

describe('waypoint runtime, workload-addressed traffic', () => {
  it('reaches the dialled pod; Service routes and policies do not apply, the waypoint’s do', async () => {
    h = new RuntimeHarness(
      [
        // Would send every Service request to v2, and deny /svc-only: neither applies to pod traffic.
        `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - backendRefs: [{name: reviews-v2, port: 9080}]`,
        policy('svc-deny', '{kind: Service, group: "", name: reviews}', '/svc-only'),
        policy(
          'waypoint-deny',
          '{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}',
          '/admin',
        ),
      ].join('\n---\n'),
      undefined,
      BASE_YAML_ALL_TRAFFIC,
    );
    const { v1, v2 } = await h.startBackends();
    const agent = h.agent(() => h!.context({ kind: 'ip', ip: '127.0.53.1', port: 8080 }));
    for (let i = 0; i < 5; i++)
      expect(await get(agent, `/page/${i}`)).toEqual({ status: 200, pod: 'reviews-v1-0' });
    expect(await get(agent, '/svc-only')).toMatchObject({ status: 200 });
    expect(await get(agent, '/admin')).toMatchObject({ status: 403 });
    expect(v1.count()).toBe(6);
    expect(v2.count()).toBe(0);
    const lines = await h.waitForAccess(7);
    expect(lines[0]).toMatchObject({ response_code: 200, 'dst.workload': 'reviews-v1-0' });
    expect(lines[0]?.['dst.service']).toBeUndefined();
    expect(lines[6]).toMatchObject({
      response_code: 403,
      response_code_details: 'rbac_access_denied_matched_policy[ns[shop]-policy[waypoint-deny]-rule[0]]',
    });
    expect(
      await readMetric(h.registry, 'istio_requests_total', {
        destination_service: 'unknown',
        destination_workload_namespace: 'shop',
        response_code: '200',
      }),
    ).toBe(6);
    agent.destroy();
  });
});
