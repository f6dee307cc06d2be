import { describe, expect, it } from 'vitest';
import { ConfigValidationError, formatWarning } from '../config-source/kube.js';
import {
  compileWaypointConfig,
  findAuthorizationPolicies,
  findDestinationPolicy,
  findFaultRoutes,
  findRouteEntries,
} from './config.js';
import { ISTIO_DEFAULT_DESTINATION_POLICY } from './destination-policy.js';
import { ISTIO_DEFAULT_RETRY_POLICY } from './retry-policy.js';
import { locatedObjects, TEST_SERVICES } from './test-helpers.js';

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
      'mirror ignored',
      `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: shop}\nspec: {parentRefs: [{kind: Service, group: "", name: reviews}], rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: ratings, port: 9080}}}]}]}`,
      /RequestMirror is not supported/,
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
const dr = (tp: string): string =>
  `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: bad, namespace: shop}\nspec: {host: reviews, trafficPolicy: ${tp}}`;
const vs = (http: string): string =>
  `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad, namespace: shop}\nspec: {hosts: [reviews], http: [${http}]}`;
const ap = (spec: string): string =>
  `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: bad, namespace: shop}\nspec: {targetRefs: [{kind: Service, group: "", name: reviews}], ${spec}}`;
const BE = 'backendRefs: [{name: reviews-v1, port: 9080}]';

describe('compileWaypointConfig: invalid input', () => {
  it.each([
    [
      'path without slash',
      route(`{matches: [{path: {value: api}}], ${BE}}`),
      'spec.rules[0].matches[0].path.value',
      /must start with "\/"/,
    ],
    [
      'path with //',
      route(`{matches: [{path: {type: Exact, value: /a//b}}], ${BE}}`),
      'spec.rules[0].matches[0].path.value',
      /must not contain "\/\/"/,
    ],
    [
      'unknown path type',
      route(`{matches: [{path: {type: Prefix, value: /a}}], ${BE}}`),
      'spec.rules[0].matches[0].path.type',
      /"Prefix" is not one of Exact, PathPrefix, RegularExpression/,
    ],
    [
      'bad regex',
      route(`{matches: [{path: {type: RegularExpression, value: "/(a"}}], ${BE}}`),
      'spec.rules[0].matches[0].path.value',
      /invalid regular expression/,
    ],
    [
      'lookahead regex',
      route(`{matches: [{headers: [{type: RegularExpression, name: x, value: "(?=a)a"}]}], ${BE}}`),
      'spec.rules[0].matches[0].headers[0].value',
      /lookaround/,
    ],
    [
      'bad header name',
      route(`{matches: [{headers: [{name: "x y", value: v}]}], ${BE}}`),
      'spec.rules[0].matches[0].headers[0].name',
      /is not valid/,
    ],
    [
      'bad method',
      route(`{matches: [{method: get}], ${BE}}`),
      'spec.rules[0].matches[0].method',
      /"get" is not one of GET/,
    ],
    [
      'redirect + rewrite',
      route(
        `{filters: [{type: RequestRedirect, requestRedirect: {hostname: a.b}}, {type: URLRewrite, urlRewrite: {hostname: c.d}}]}`,
      ),
      'spec.rules[0].filters',
      /cannot be used together/,
    ],
    [
      'redirect + backends',
      route(`{filters: [{type: RequestRedirect, requestRedirect: {hostname: a.b}}], ${BE}}`),
      'spec.rules[0].backendRefs',
      /cannot have backendRefs/,
    ],
    [
      'prefix rewrite with exact match',
      route(
        `{matches: [{path: {type: Exact, value: /a}}], filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}], ${BE}}`,
      ),
      'spec.rules[0].matches',
      /exactly one match, of type PathPrefix/,
    ],
    [
      'duplicate filter',
      route(
        `{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {remove: [a]}}, {type: RequestHeaderModifier, requestHeaderModifier: {remove: [b]}}], ${BE}}`,
      ),
      'spec.rules[0].filters[1].type',
      /appears more than once/,
    ],
    [
      'two actions for one header',
      route(
        `{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-A, value: "1"}], remove: [x-a]}}], ${BE}}`,
      ),
      'spec.rules[0].filters[0].requestHeaderModifier.remove[0]',
      /already has an action/,
    ],
    [
      'filter field mismatch',
      route(`{filters: [{type: RequestHeaderModifier, requestRedirect: {hostname: a.b}}], ${BE}}`),
      'spec.rules[0].filters[0].requestRedirect',
      /must not be set for type RequestHeaderModifier/,
    ],
    [
      'ExtensionRef',
      route(`{filters: [{type: ExtensionRef, extensionRef: {group: x, kind: y, name: z}}], ${BE}}`),
      'spec.rules[0].filters[0].type',
      /ExtensionRef is not supported/,
    ],
    [
      'redirect status',
      route(`{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 304}}]}`),
      'spec.rules[0].filters[0].requestRedirect.statusCode',
      /304 is not a redirect status/,
    ],
    [
      'full path without value',
      route(`{filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath}}}], ${BE}}`),
      'spec.rules[0].filters[0].urlRewrite.path.replaceFullPath',
      /must be set when type is ReplaceFullPath/,
    ],
    [
      'backend without port',
      route(`{backendRefs: [{name: reviews-v1}]}`),
      'spec.rules[0].backendRefs[0].port',
      /is required when the backend is a Service/,
    ],
    [
      'backend hostname',
      route(`{backendRefs: [{name: reviews-v1.shop.svc.cluster.local, port: 80}]}`),
      'spec.rules[0].backendRefs[0].name',
      /looks like a hostname/,
    ],
    [
      'weight too large',
      route(`{backendRefs: [{name: reviews-v1, port: 80, weight: 1000001}]}`),
      'spec.rules[0].backendRefs[0].weight',
      /out of range/,
    ],
    [
      'GEP-2257 duration',
      route(`{timeouts: {request: 1.5s}, ${BE}}`),
      'spec.rules[0].timeouts.request',
      /is not a Gateway API duration/,
    ],
    [
      'backendRequest > request',
      route(`{timeouts: {request: 1s, backendRequest: 2s}, ${BE}}`),
      'spec.rules[0].timeouts.backendRequest',
      /longer than timeouts.request/,
    ],
    [
      'retry code',
      route(`{retry: {codes: [200]}, ${BE}}`),
      'spec.rules[0].retry.codes[0]',
      /200 is out of range/,
    ],
    [
      'bad creationTimestamp',
      route(BE.replace('backendRefs: ', '{backendRefs: ') + '}', ', creationTimestamp: yesterday'),
      'metadata.creationTimestamp',
      /not an RFC 3339 time/,
    ],
    [
      'DR duration',
      dr('{outlierDetection: {interval: "10"}}'),
      'spec.trafficPolicy.outlierDetection.interval',
      /is not a valid duration/,
    ],
    [
      'DR percent',
      dr('{outlierDetection: {maxEjectionPercent: 150}}'),
      'spec.trafficPolicy.outlierDetection.maxEjectionPercent',
      /150 is out of range/,
    ],
    [
      'DR LB',
      dr('{loadBalancer: {simple: LEAST_REQUESTS}}'),
      'spec.trafficPolicy.loadBalancer.simple',
      /did you mean "LEAST_REQUEST"/,
    ],
    [
      'VS abort status',
      vs('{fault: {abort: {percentage: {value: 5}}}}'),
      'spec.http[0].fault.abort',
      /exactly one of httpStatus or grpcStatus/,
    ],
    [
      'VS delay',
      vs('{fault: {delay: {fixedDelay: soon, percentage: {value: 5}}}}'),
      'spec.http[0].fault.delay.fixedDelay',
      /not a duration/,
    ],
    [
      'VS sourceLabels',
      vs('{match: [{sourceLabels: {app: a}}], fault: {abort: {httpStatus: 503, percentage: {value: 5}}}}'),
      'spec.http[0].match[0].sourceLabels',
      /not supported/,
    ],
    [
      'VS grpc status',
      vs('{fault: {abort: {grpcStatus: NOPE, percentage: {value: 5}}}}'),
      'spec.http[0].fault.abort.grpcStatus',
      /not a gRPC status name/,
    ],
    [
      'AP CUSTOM',
      ap('action: CUSTOM, provider: {name: ext}'),
      'spec.action',
      /CUSTOM \(external authorization\) is not supported/,
    ],
    [
      'AP JWT condition',
      ap('rules: [{when: [{key: "request.auth.claims[iss]", values: [a]}]}]'),
      'spec.rules[0].when[0].key',
      /needs JWT authentication/,
    ],
    [
      'AP unknown key',
      ap('rules: [{when: [{key: source.namespaces, values: [a]}]}]'),
      'spec.rules[0].when[0].key',
      /unknown condition key "source.namespaces"; did you mean "source.namespace"\?/,
    ],
    [
      'AP requestPrincipals',
      ap('rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]'),
      'spec.rules[0].from[0].source.requestPrincipals',
      /JWT request principals are not supported/,
    ],
    [
      'AP bad CIDR',
      ap('rules: [{from: [{source: {ipBlocks: [10.0.0.0/40]}}]}]'),
      'spec.rules[0].from[0].source.ipBlocks',
      /"10.0.0.0\/40" is not an IP address or CIDR/,
    ],
    [
      'AP port name',
      ap('rules: [{to: [{operation: {ports: [http]}}]}]'),
      'spec.rules[0].to[0].operation.ports',
      /"http" is not a port/,
    ],
    [
      'AP path template',
      ap('rules: [{to: [{operation: {paths: ["/a/{**}/b"]}}]}]'),
      'spec.rules[0].to[0].operation.paths',
      /\{\*\*\} must be the last segment/,
    ],
    [
      'AP serviceAccounts + principals',
      ap('rules: [{from: [{source: {serviceAccounts: [a], principals: [b]}}]}]'),
      'spec.rules[0].from[0].source.serviceAccounts',
      /cannot be combined/,
    ],
    ['AP empty source', ap('rules: [{from: [{source: {}}]}]'), 'spec.rules[0].from[0].source', /is empty/],
    [
      'AP selector + targetRefs',
      ap('selector: {matchLabels: {a: b}}'),
      'spec.selector',
      /cannot be combined with targetRef/,
    ],
    [
      'AP condition without values',
      ap('rules: [{when: [{key: source.ip}]}]'),
      'spec.rules[0].when[0]',
      /neither values nor notValues/,
    ],
  ])('%s', (_n, yaml, field, message) => {
    let err: unknown;
    try {
      compile(yaml);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigValidationError);
    const e = err as ConfigValidationError;
    expect(e.loc).toMatchObject({ file: 'test.yaml', document: 6 });
    expect(e.object).toMatch(/^(HTTPRoute|DestinationRule|VirtualService|AuthorizationPolicy) shop\/bad$/);
    expect(e.field).toBe(field);
    expect(e.message).toMatch(message);
    expect(e.message.startsWith(`test.yaml: document 6 (line`)).toBe(true);
    expect(e.hint).toBeTruthy();
    expect(e.describe()).toContain('\n  fix: ');
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
