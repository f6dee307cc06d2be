import { describe, expect, it } from 'vitest';
import { ConfigValidationError } from '../config-source/kube.js';
import { compileWaypointConfig } from './config.js';
import { locatedObjects, TEST_SERVICES } from './test-helpers/index.js';

const OPTS = { waypointName: 'waypoint', waypointNamespace: 'shop' };
const compile = (yaml: string) =>
  compileWaypointConfig(locatedObjects(`${TEST_SERVICES}\n---\n${yaml}`), OPTS);

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
      'mirror without backendRef',
      route(`{filters: [{type: RequestMirror, requestMirror: {percent: 10}}], ${BE}}`),
      'spec.rules[0].filters[0].requestMirror.backendRef',
      /is required/,
    ],
    [
      'mirror percent out of range',
      route(
        `{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: reviews-v2, port: 9080}, percent: 150}}], ${BE}}`,
      ),
      'spec.rules[0].filters[0].requestMirror.percent',
      /out of range/,
    ],
    [
      'mirror with percent and fraction',
      route(
        `{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: reviews-v2, port: 9080}, percent: 5, fraction: {numerator: 1}}}], ${BE}}`,
      ),
      'spec.rules[0].filters[0].requestMirror.fraction',
      /must not be set together with percent/,
    ],
    [
      'mirror fraction above one',
      route(
        `{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: reviews-v2, port: 9080}, fraction: {numerator: 3, denominator: 2}}}], ${BE}}`,
      ),
      'spec.rules[0].filters[0].requestMirror.fraction',
      /3\/2 is more than 1/,
    ],
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

describe('config that is not this waypoint’s is not judged', () => {
  const bad = (svc: string): string[] => [
    `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r-${svc}, namespace: shop}\nspec: {parentRefs: [{kind: Service, group: "", name: ${svc}}], rules: [{filters: [{type: CORS, cors: {}}]}]}`,
    `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v-${svc}, namespace: shop}\nspec: {hosts: [${svc}], http: [{fault: {abort: {percentage: {value: 5}}}}]}`,
    `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d-${svc}, namespace: shop}\nspec: {host: ${svc}, trafficPolicy: {outlierDetection: {interval: soon}}}`,
    `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a-${svc}, namespace: shop}\nspec: {targetRefs: [{kind: Service, group: "", name: ${svc}}], action: CUSTOM}`,
  ];

  it.each([0, 1, 2, 3])(
    'object %i for a Service served elsewhere is skipped; for ours it is an error',
    (i) => {
      const serves = (s: { name: string }): boolean => s.name !== 'ratings';
      const run = (svc: string) => () =>
        compileWaypointConfig(locatedObjects(`${TEST_SERVICES}\n---\n${bad(svc)[i] ?? ''}`), {
          ...OPTS,
          serves,
        });
      expect(run('ratings')).not.toThrow();
      expect(run('reviews')).toThrow(ConfigValidationError);
    },
  );

  it('a route attached only to an ingress Gateway is not validated', () => {
    const yaml = `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: ingress, namespace: shop}\nspec: {parentRefs: [{name: public-gw}], rules: [{filters: [{type: CORS, cors: {}}]}]}`;
    expect(compile(yaml).warnings).toEqual([]);
  });
});
