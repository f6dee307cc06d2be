import { describe, expect, it } from 'vitest';
import { formatWarning } from '../config-source/kube.js';
import {
  compileWaypointConfig,
  findAuthorizationPolicies,
  findDestinationPolicy,
  findFaultRoutes,
  findRouteEntries,
} from './config.js';
import { DEFAULT_RETRY_BUDGET, ISTIO_DEFAULT_DESTINATION_POLICY } from './destination-policy.js';
import { ISTIO_DEFAULT_RETRY_POLICY } from './retry-policy.js';
import { locatedObjects, TEST_SERVICES } from './test-helpers/index.js';

const OPTS = { waypointName: 'waypoint', waypointNamespace: 'shop' };
const compile = (yaml: string) =>
  compileWaypointConfig(locatedObjects(`${TEST_SERVICES}\n---\n${yaml}`), OPTS);
const reviews = { namespace: 'shop', name: 'reviews' };

const VALID = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop, creationTimestamp: "2024-05-01T12:00:00Z"}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /api/}
      headers: [{name: X-Env, value: canary}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: X-Route, value: canary}], remove: [x-debug]}
    - type: URLRewrite
      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    backendRefs:
    - {name: reviews-v2, port: 9080, weight: 90}
    - {name: reviews-v1, port: 9080, weight: 10}
    - {name: reviews-v1, port: 9080, weight: 0}
    timeouts: {request: 10s, backendRequest: 2s}
    retry: {attempts: 3, codes: [503], backoff: 100ms}
  - matches: [{path: {type: Exact, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /new}, statusCode: 301}
  - timeouts: {backendRequest: 3s}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {maxConnections: 100}
      http: {http1MaxPendingRequests: 10, http2MaxRequests: 50, maxRetries: 0}
    outlierDetection: {consecutive5xxErrors: 3, interval: 5s, baseEjectionTime: 1m}
    retryBudget: {percent: 25}
    portLevelSettings:
    - port: {number: 9443}
      loadBalancer: {simple: RANDOM}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews-faults, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    fault: {delay: {fixedDelay: 7s, percentage: {value: 100}}}
    route: [{destination: {host: reviews}}]
  - fault: {abort: {httpStatus: 500, percentage: {value: 10}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: waypoint-wide, namespace: shop}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: DENY
  rules: [{to: [{operation: {paths: [/admin/*]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewers, namespace: shop}
spec:
  targetRefs: [{kind: Service, group: "", name: reviews}]
  rules: [{from: [{source: {namespaces: [frontend]}}], to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ztunnel-only, namespace: shop}
spec:
  selector: {matchLabels: {app: reviews}}
  action: CUSTOM
  provider: {name: ext}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: other-waypoint, namespace: shop}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: other}]
  action: CUSTOM
`;

describe('compileWaypointConfig: valid input', () => {
  const { config, warnings } = compile(VALID);

  it('compiles HTTPRoute rules into precedence-ordered entries', () => {
    const entries = findRouteEntries(config, reviews);
    expect(entries.map((e) => [e.match.path.kind, e.match.path.value, e.port])).toEqual([
      ['Exact', '/old', 9080],
      ['PathPrefix', '/api', 9080],
      ['PathPrefix', '/', 9080],
    ]);
    const canary = entries[1]?.rule;
    expect(canary?.route).toEqual({
      namespace: 'shop',
      name: 'reviews',
      createdAt: Date.parse('2024-05-01T12:00:00Z'),
    });
    expect(canary?.matches[0]?.headers).toEqual([
      { name: 'x-env', match: { kind: 'Exact', value: 'canary' } },
    ]);
    expect(canary?.backends.map((b) => [b.target.kind === 'Service' && b.target.hostname, b.weight])).toEqual(
      [
        ['reviews-v2.shop.svc.cluster.local', 90],
        ['reviews-v1.shop.svc.cluster.local', 10],
      ],
    );
    expect(canary?.filters.map((f) => f.type)).toEqual(['RequestHeaderModifier', 'URLRewrite']);
    expect(canary?.timeouts).toEqual({ requestMs: 10_000, perTryMs: 2000 });
    expect(canary?.retry).toMatchObject({
      numRetries: 3,
      retriableStatusCodes: [503],
      backoffBaseMs: 100,
      backoffMaxMs: 1000,
      perTryTimeoutMs: 2000,
    });
  });

  it('a rule without backends and redirect answers 500; backendRequest without retry becomes the route timeout', () => {
    const last = findRouteEntries(config, reviews)[2]?.rule;
    expect(last?.directResponse).toEqual({ status: 500 });
    expect(last?.timeouts).toEqual({ requestMs: 3000, perTryMs: undefined });
    expect(last?.retry).toBeUndefined();
    const redirect = findRouteEntries(config, reviews)[0]?.rule;
    expect(redirect?.directResponse).toBeUndefined();
  });

  it('resolves the DestinationRule with Istio defaults and port-level overrides', () => {
    const p = findDestinationPolicy(config, reviews, 9080);
    expect(p.loadBalancer).toBe('ROUND_ROBIN');
    expect(p.limits).toEqual({
      maxConnections: 100,
      maxPendingRequests: 10,
      maxRequests: 50,
      maxRetries: 4_294_967_295,
    });
    expect(p.outlierDetection).toMatchObject({
      consecutive5xxErrors: 3,
      consecutiveGatewayErrors: 0,
      intervalMs: 5000,
      baseEjectionTimeMs: 60_000,
      maxEjectionPercent: 10,
      minHealthPercent: 0,
    });
    expect(p.retryBudget).toEqual({ percent: 25, minRetryConcurrency: 3 });
    expect(findDestinationPolicy(config, reviews, 9443).loadBalancer).toBe('RANDOM');
    expect(findDestinationPolicy(config, { namespace: 'shop', name: 'ratings' }, 9080)).toBe(
      ISTIO_DEFAULT_DESTINATION_POLICY,
    );
  });

  it('keeps only faults and their matches from the VirtualService', () => {
    const faults = findFaultRoutes(config, reviews);
    expect(faults).toHaveLength(2);
    expect(faults[0]?.fault?.delay).toEqual({ fixedDelayMs: 7000, percent: 100 });
    expect(faults[0]?.matches[0]?.headers).toEqual([
      { name: 'end-user', match: { kind: 'exact', value: 'jason' } },
    ]);
    expect(faults[1]?.fault?.abort).toEqual({ httpStatus: 500, grpcStatus: undefined, percent: 10 });
  });

  it('applies waypoint-wide and Service policies, ignores selector policies and other waypoints', () => {
    expect(findAuthorizationPolicies(config, reviews).map((p) => `${p.action} ${p.name}`)).toEqual([
      'DENY waypoint-wide',
      'ALLOW reviews-viewers',
    ]);
    expect(
      findAuthorizationPolicies(config, { namespace: 'shop', name: 'ratings' }).map((p) => p.name),
    ).toEqual(['waypoint-wide']);
  });

  it('warns about VirtualService routing and rules that can only answer 500', () => {
    expect(warnings.map(formatWarning)).toEqual([
      expect.stringContaining(
        'HTTPRoute shop/reviews: spec.rules[2]: rule has no backendRefs and no RequestRedirect',
      ),
      expect.stringContaining(
        'VirtualService shop/reviews-faults: spec.http[0]: ignored route: meshd supports only fault injection',
      ),
    ]);
    expect(warnings[1]?.loc.document).toBe(8);
  });
});

describe('compileWaypointConfig: warnings', () => {
  it.each([
    [
      'consumer route',
      `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: frontend}\nspec: {parentRefs: [{kind: Service, group: "", name: reviews, namespace: shop}]}`,
      /consumer route/,
    ],
    [
      'hostnames ignored',
      `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\nspec: {hostnames: [a.example], parentRefs: [{kind: Service, group: "", name: reviews}]}`,
      /spec.hostnames: hostnames are ignored/,
    ],
    [
      'missing parent',
      `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\nspec: {parentRefs: [{kind: Service, group: "", name: nope}]}`,
      /parent Service shop\/nope not found/,
    ],
    [
      'missing backend',
      `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\nspec: {parentRefs: [{kind: Service, group: "", name: reviews}], rules: [{backendRefs: [{name: gone, port: 80}]}]}`,
      /backend Service shop\/gone not found; its share of requests gets 500/,
    ],
    [
      'typo with suggestion',
      `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\nspec: {parentRefs: [{kind: Service, group: "", name: reviews}], rules: [{backendRef: []}]}`,
      /spec.rules\[0\].backendRef: unknown field, ignored; did you mean "backendRefs"\?/,
    ],
    [
      'mirror to a missing Service',
      `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\nspec: {parentRefs: [{kind: Service, group: "", name: reviews}], rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: gone, port: 9080}}}], backendRefs: [{name: reviews-v1, port: 9080}]}]}`,
      /requestMirror.backendRef: backend Service shop\/gone not found; nothing is mirrored to it/,
    ],
    [
      'abort without percentage',
      `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: shop}\nspec: {hosts: [reviews], http: [{fault: {abort: {httpStatus: 503}}}]}`,
      /no percentage: Istio aborts no requests/,
    ],
  ])('%s', (_n, yaml, re) => {
    expect(compile(yaml).warnings.map(formatWarning).join('\n')).toMatch(re);
  });
});

const route = (rule: string, extra = ''): string =>
  `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: bad, namespace: shop${extra}}\nspec:\n  parentRefs: [{kind: Service, group: "", name: reviews}]\n  rules: [${rule}]`;
const BE = 'backendRefs: [{name: reviews-v1, port: 9080}]';

describe('RequestMirror', () => {
  it('compiles percent and fraction into a share of requests, 100 % when neither is set', () => {
    const mirror = (spec: string) =>
      `{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: reviews-v2, port: 9080}${spec}}}], ${BE}}`;
    const shares = [
      mirror(''),
      mirror(', percent: 25'),
      mirror(', fraction: {numerator: 1, denominator: 8}'),
    ].map((r) => {
      const f = findRouteEntries(compile(route(r)).config, reviews)[0]?.rule.filters[0];
      return f?.type === 'RequestMirror' ? [f.mirror.percent, f.mirror.target.kind] : undefined;
    });
    expect(shares).toEqual([
      [100, 'Service'],
      [25, 'Service'],
      [12.5, 'Service'],
    ]);
  });
});

describe('default retry policy', () => {
  it('rules without a retry stanza use the waypoint default unless the route opts into non-idempotent retries', () => {
    const plain = compile(route(BE.replace('backendRefs: ', '{backendRefs: ') + '}'));
    expect(findRouteEntries(plain.config, reviews)[0]?.rule.retry).toBeUndefined();
    const opted = compile(
      route(
        BE.replace('backendRefs: ', '{backendRefs: ') + '}',
        ', annotations: {retry.meshd.io/non-idempotent: "true"}',
      ),
    );
    expect(findRouteEntries(opted.config, reviews)[0]?.rule.retry).toMatchObject({
      ...ISTIO_DEFAULT_RETRY_POLICY,
      retryNonIdempotent: true,
    });
  });
});

describe('retry budget default', () => {
  const dr = (tp: string): string =>
    `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d, namespace: shop}\nspec: {host: reviews, trafficPolicy: ${tp}}`;
  it.each([
    ['no DestinationRule', '', DEFAULT_RETRY_BUDGET],
    [
      'a DestinationRule without retry settings',
      dr('{loadBalancer: {simple: RANDOM}}'),
      DEFAULT_RETRY_BUDGET,
    ],
    [
      'maxRetries 0 (Istio: the default, unlimited)',
      dr('{connectionPool: {http: {maxRetries: 0}}}'),
      DEFAULT_RETRY_BUDGET,
    ],
    ['an explicit maxRetries', dr('{connectionPool: {http: {maxRetries: 5}}}'), undefined],
    [
      'its own budget',
      dr('{retryBudget: {percent: 50, minRetryConcurrency: 1}}'),
      { percent: 50, minRetryConcurrency: 1 },
    ],
  ])('%s', (_name, yaml, want) => {
    expect(findDestinationPolicy(compile(yaml).config, reviews, 9080).retryBudget).toEqual(want);
  });
});
