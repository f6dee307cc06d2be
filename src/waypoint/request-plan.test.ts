import { describe, expect, it } from 'vitest';
import { compileWaypointConfig } from './config.js';
import type { RequestClient, WaypointRequest } from './http-types.js';
import type { RequestPlan } from './request-plan.js';
import { buildRequestPlan } from './request-plan.js';
import { locatedObjects, TEST_SERVICES } from './test-helpers/index.js';

const YAML = `${TEST_SERVICES}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: x-env, value: canary}]}]
    backendRefs:
    - name: reviews-v2
      port: 9080
      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-backend, value: v2}, {name: x-who, value: backend}]}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-who, value: route}], add: [{name: x-tag, value: canary}]}
    - type: URLRewrite
      urlRewrite: {hostname: reviews-v2.internal, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    retry: {attempts: 1, codes: [503]}
    timeouts: {request: 5s, backendRequest: 1s}
  - matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
    filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-served-by, value: v1}]}}]
  - matches: [{path: {type: Exact, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /new}, statusCode: 301}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: cache-control, value: no-store}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ratings, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: ratings}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /zero}}]
    backendRefs: [{name: ratings, port: 9080, weight: 0}]
  - matches: [{path: {type: PathPrefix, value: /gone}}]
    backendRefs: [{name: missing, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
  - match: [{headers: {x-delay: {exact: "yes"}}}]
    fault: {delay: {fixedDelay: 2s, percentage: {value: 100}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: frontend-only, namespace: shop}
spec:
  targetRefs: [{kind: Service, group: "", name: reviews}]
  rules: [{from: [{source: {namespaces: [frontend]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: shop}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin/*"]}}]}]
`;

const { config } = compileWaypointConfig(locatedObjects(YAML), {
  waypointName: 'waypoint',
  waypointNamespace: 'shop',
});
const FRONTEND: RequestClient = { identity: 'spiffe://cluster.local/ns/frontend/sa/web', ip: '10.1.0.5' };

function plan(
  path: string,
  opts: { service?: string; headers?: Record<string, string>; method?: string; client?: RequestClient } = {},
): RequestPlan {
  const request: WaypointRequest = {
    method: opts.method ?? 'GET',
    path,
    host: `${opts.service ?? 'reviews'}:9080`,
    headers: opts.headers ?? {},
  };
  let n = 0;
  return buildRequestPlan({
    config,
    service: { namespace: 'shop', name: opts.service ?? 'reviews', port: 9080, vip: '10.96.0.10' },
    client: opts.client ?? FRONTEND,
    request,
    random: () => 0.5,
    randomBytes: (len) => new Uint8Array(len).fill(0xab),
    newRequestId: () => `req-${++n}`,
  });
}

function summary(p: RequestPlan): string {
  if (p.kind === 'respond')
    return `${p.response.status} ${p.response.responseFlags.join(',') || '-'} ${p.response.body}`.trim();
  return `forward ${p.backend.name}:${p.backend.port} ${p.upstreamRequest.path} ${p.responseFlags.join(',') || '-'}`;
}

describe('buildRequestPlan', () => {
  it.each([
    [
      'canary header → v2, rewritten',
      '/api/items',
      { headers: { 'x-env': 'canary' } },
      'forward reviews-v2:9080 /v2/items -',
    ],
    ['plain /api → v1', '/api/items', { headers: {} }, 'forward reviews-v1:9080 /api/items -'],
    ['routes attached, no match → 404 NR', '/nothing', {}, '404 NR'],
    [
      'caller outside frontend → 403',
      '/api/items',
      { client: { identity: 'spiffe://cluster.local/ns/x/sa/y', ip: '10.2.0.1' } },
      '403 - RBAC: access denied',
    ],
    ['waypoint-wide DENY → 403', '/admin/users', {}, '403 - RBAC: access denied'],
    ['fault abort → 503 FI', '/api/items', { headers: { 'end-user': 'jason' } }, '503 FI fault filter abort'],
    [
      'fault delay → forward with DI',
      '/api/items',
      { headers: { 'x-delay': 'yes' } },
      'forward reviews-v1:9080 /api/items DI',
    ],
    ['redirect → 301', '/old', {}, '301 -'],
    [
      'no route attached → straight to the Service',
      '/anything',
      { service: 'details' },
      'forward details:9080 /anything -',
    ],
    ['all backends weight 0 → 500', '/zero', { service: 'ratings' }, '500 -'],
    ['missing backend → 500', '/gone', { service: 'ratings' }, '500 -'],
    ['malformed path → 400', '/bad%zz', {}, '400 DPE Bad Request'],
    ['dot segments are normalized before routing', '/old/../api/x', {}, 'forward reviews-v1:9080 /api/x -'],
  ] as Array<
    [string, string, { headers?: Record<string, string>; client?: RequestClient; service?: string }, string]
  >)('%s', (_n, path, opts, want) => {
    expect(summary(plan(path, opts))).toBe(want);
  });

  it('forward plan carries filters, retry, timeouts, request id and trace context', () => {
    const p = plan('/api/items?q=1', {
      headers: {
        'x-env': 'canary',
        'x-request-id': 'abc-123',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        tracestate: 'k=v',
      },
    });
    if (p.kind !== 'forward') throw new Error(p.kind);
    expect(p.upstreamRequest.path).toBe('/v2/items?q=1');
    expect(p.upstreamRequest.host).toBe('reviews-v2.internal');
    // Backend filters first, then the rule's: the rule's set wins on x-who.
    expect(p.upstreamRequest.headers).toMatchObject({
      'x-backend': 'v2',
      'x-who': 'route',
      'x-tag': 'canary',
      'x-request-id': 'abc-123',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-abababababababab-01',
      tracestate: 'k=v',
    });
    expect(p.retryPolicy).toMatchObject({
      numRetries: 1,
      retriableStatusCodes: [503],
      perTryTimeoutMs: 1000,
    });
    expect(p.timeouts).toEqual({ requestMs: 5000, perTryMs: 1000 });
    expect(p.requestId).toBe('abc-123');
    expect(p.authz?.reason).toBe('allowed-by-policy');
  });

  it('response header modifiers and redirect details', () => {
    const v1 = plan('/api/x');
    expect(v1.kind === 'forward' && v1.responseHeaderModifiers).toEqual([
      { set: [{ name: 'x-served-by', value: 'v1' }], add: [], remove: [] },
    ]);
    const r = plan('/old?x=1');
    expect(r.kind === 'respond' && r.response.headers).toEqual({
      location: 'http://reviews:9080/new?x=1',
      'cache-control': 'no-store',
    });
  });

  it('a denied request names the matched policy in the details; a new request id is generated', () => {
    const p = plan('/admin/x');
    expect(p.kind === 'respond' && p.response.details).toBe(
      'rbac_access_denied_matched_policy[ns[shop]-policy[no-admin]-rule[0]]',
    );
    expect(p.requestId).toBe('req-1');
    expect(p.trace.started).toBe(true);
  });

  it('fault delay is reported for the runtime to apply', () => {
    const p = plan('/api/items', { headers: { 'x-delay': 'yes' } });
    expect(p.delayMs).toBe(2000);
  });
});
