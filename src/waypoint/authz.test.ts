import { describe, expect, it } from 'vitest';
import type { AuthzAttributes } from './authz.js';
import { buildAuthzAttributes, evaluateL7Authorization } from './authz.js';
import type { L7Policy } from './authz-types.js';
import { compileWaypointConfig, findAuthorizationPolicies } from './config.js';
import type { HeaderMap } from './http-types.js';
import { locatedObjects } from './test-helpers/index.js';

type Spec = Record<string, unknown>;
const SERVICE = { namespace: 'shop', name: 'reviews', port: 9080, vip: '10.96.0.10' };

function compile(specs: Array<[name: string, spec: Spec, annotations?: Record<string, string>]>): L7Policy[] {
  const docs = specs.map(([name, spec, annotations]) =>
    JSON.stringify({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name, namespace: 'shop', annotations },
      spec: { targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }], ...spec },
    }),
  );
  const { config } = compileWaypointConfig(locatedObjects(docs.join('\n---\n')), {
    waypointName: 'waypoint',
    waypointNamespace: 'shop',
  });
  return [...findAuthorizationPolicies(config, SERVICE)];
}

interface Req {
  identity?: string | null;
  ip?: string;
  remoteIp?: string;
  method?: string;
  path?: string;
  host?: string;
  headers?: HeaderMap;
  tcp?: boolean;
}

function attrs(r: Req = {}): AuthzAttributes {
  const identity =
    r.identity === null ? undefined : (r.identity ?? 'spiffe://cluster.local/ns/frontend/sa/web');
  return buildAuthzAttributes(
    { identity, ip: r.ip ?? '10.1.0.5', remoteIp: r.remoteIp },
    SERVICE,
    r.tcp
      ? undefined
      : {
          host: r.host ?? 'reviews:9080',
          method: r.method ?? 'GET',
          path: r.path ?? '/api/items',
          headers: r.headers ?? {},
        },
  );
}

const allow = (rules: Spec[]): Spec => ({ action: 'ALLOW', rules });
const deny = (rules: Spec[]): Spec => ({ action: 'DENY', rules });
const from = (source: Spec): Spec => ({ from: [{ source }] });
const to = (operation: Spec): Spec => ({ to: [{ operation }] });
const when = (...conds: Spec[]): Spec => ({ when: conds });

describe('evaluateL7Authorization', () => {
  it.each([
    ['no policy → allow', [], {}, true],
    ['ALLOW without rules allows nothing', [allow([])], {}, false],
    ['ALLOW rules [{}] allows everything', [allow([{}])], {}, true],
    ['DENY wins over a matching ALLOW', [allow([{}]), deny([to({ methods: ['GET'] })])], {}, false],
    ['DENY without rules has no effect', [deny([])], {}, true],
    ['DENY that does not match', [deny([to({ methods: ['DELETE'] })])], {}, true],
    ['principal exact', [allow([from({ principals: ['cluster.local/ns/frontend/sa/web'] })])], {}, true],
    [
      'principal exact, other caller',
      [allow([from({ principals: ['cluster.local/ns/frontend/sa/web'] })])],
      { identity: 'spiffe://cluster.local/ns/x/sa/y' },
      false,
    ],
    ['principal prefix', [allow([from({ principals: ['cluster.local/ns/frontend/*'] })])], {}, true],
    ['principal suffix', [allow([from({ principals: ['*/sa/web'] })])], {}, true],
    [
      'principal presence needs an identity',
      [allow([from({ principals: ['*'] })])],
      { identity: null },
      false,
    ],
    [
      'notPrincipals matches a plaintext caller',
      [allow([from({ notPrincipals: ['cluster.local/ns/frontend/sa/web'] })])],
      { identity: null },
      true,
    ],
    ['namespaces', [allow([from({ namespaces: ['frontend'] })])], {}, true],
    ['notNamespaces', [allow([from({ notNamespaces: ['frontend'] })])], {}, false],
    ['serviceAccounts ns/sa', [allow([from({ serviceAccounts: ['frontend/web'] })])], {}, true],
    [
      'serviceAccounts sa means the policy namespace',
      [allow([from({ serviceAccounts: ['web'] })])],
      {},
      false,
    ],
    ['ipBlocks CIDR', [allow([from({ ipBlocks: ['10.1.0.0/16'] })])], {}, true],
    ['ipBlocks single IP', [allow([from({ ipBlocks: ['10.1.0.6'] })])], {}, false],
    [
      'ipBlocks v4-mapped client',
      [allow([from({ ipBlocks: ['10.1.0.0/16'] })])],
      { ip: '::ffff:10.1.0.5' },
      true,
    ],
    ['notIpBlocks', [deny([from({ notIpBlocks: ['10.0.0.0/8'] })])], { ip: '192.168.0.1' }, false],
    [
      'remoteIpBlocks use the original client',
      [allow([from({ remoteIpBlocks: ['203.0.113.0/24'] })])],
      { remoteIp: '203.0.113.9' },
      true,
    ],
    ['methods', [allow([to({ methods: ['GET', 'HEAD'] })])], {}, true],
    ['methods miss', [allow([to({ methods: ['POST'] })])], {}, false],
    ['paths prefix', [allow([to({ paths: ['/api/*'] })])], {}, true],
    ['paths suffix', [allow([to({ paths: ['*/items'] })])], {}, true],
    ['paths exact ignores the query', [allow([to({ paths: ['/api/items'] })])], { path: '/api/items' }, true],
    ['paths {*} one segment', [allow([to({ paths: ['/api/{*}'] })])], {}, true],
    ['paths {*} not two segments', [allow([to({ paths: ['/api/{*}'] })])], { path: '/api/items/7' }, false],
    ['paths {**} many segments', [allow([to({ paths: ['/api/{**}'] })])], { path: '/api/items/7/x' }, true],
    ['paths {*} then {**}', [allow([to({ paths: ['/{*}/items/{**}'] })])], { path: '/api/items/7' }, true],
    ['notPaths', [deny([to({ notPaths: ['/healthz'] })])], {}, false],
    ['hosts without port match host:port', [allow([to({ hosts: ['reviews'] })])], {}, true],
    ['hosts are case-insensitive', [allow([to({ hosts: ['REVIEWS'] })])], { host: 'Reviews' }, true],
    [
      'hosts suffix',
      [allow([to({ hosts: ['*.svc.cluster.local'] })])],
      { host: 'reviews.shop.svc.cluster.local:9080' },
      true,
    ],
    ['hosts with port must match the port', [allow([to({ hosts: ['reviews:80'] })])], {}, false],
    ['ports', [allow([to({ ports: ['9080'] })])], {}, true],
    ['notPorts', [allow([to({ notPorts: ['9080'] })])], {}, false],
    [
      'when header value',
      [allow([when({ key: 'request.headers[X-Token]', values: ['abc'] })])],
      { headers: { 'x-token': 'abc' } },
      true,
    ],
    ['when header absent', [allow([when({ key: 'request.headers[x-token]', values: ['*'] })])], {}, false],
    [
      'when header notValues, absent header',
      [allow([when({ key: 'request.headers[x-token]', notValues: ['bad'] })])],
      {},
      true,
    ],
    [
      'when header values and notValues',
      [allow([when({ key: 'request.headers[x-v]', values: ['v*'], notValues: ['v2'] })])],
      { headers: { 'x-v': 'v2' } },
      false,
    ],
    [
      'when source.principal',
      [allow([when({ key: 'source.principal', values: ['cluster.local/ns/frontend/sa/web'] })])],
      {},
      true,
    ],
    ['when source.namespace', [allow([when({ key: 'source.namespace', values: ['other'] })])], {}, false],
    [
      'when source.serviceAccount',
      [allow([when({ key: 'source.serviceAccount', values: ['frontend/web'] })])],
      {},
      true,
    ],
    ['when source.ip', [allow([when({ key: 'source.ip', values: ['10.1.0.0/24'] })])], {}, true],
    ['when destination.ip', [allow([when({ key: 'destination.ip', values: ['10.96.0.0/12'] })])], {}, true],
    ['when destination.port', [allow([when({ key: 'destination.port', values: ['8080'] })])], {}, false],
    [
      'all when conditions must hold',
      [
        allow([
          when({ key: 'source.namespace', values: ['frontend'] }, { key: 'destination.port', values: ['1'] }),
        ]),
      ],
      {},
      false,
    ],
    [
      'from AND to',
      [allow([{ ...from({ namespaces: ['frontend'] }), ...to({ methods: ['POST'] }) }])],
      {},
      false,
    ],
    [
      'any of several from entries',
      [allow([{ from: [{ source: { namespaces: ['x'] } }, { source: { namespaces: ['frontend'] } }] }])],
      {},
      true,
    ],
    [
      'fields in one source are ANDed',
      [allow([from({ namespaces: ['frontend'], ipBlocks: ['192.168.0.0/16'] })])],
      {},
      false,
    ],
    ['any rule of a policy', [allow([to({ methods: ['POST'] }), to({ methods: ['GET'] })])], {}, true],
    [
      'one of several ALLOW policies',
      [allow([to({ methods: ['POST'] })]), allow([to({ methods: ['GET'] })])],
      {},
      true,
    ],
  ] as Array<[string, Spec[], Req, boolean]>)('%s', (_n, specs, req, allowed) => {
    const policies = compile(specs.map((s, i) => [`p${i}`, s]));
    expect(evaluateL7Authorization(policies, attrs(req)).allowed).toBe(allowed);
  });

  it('reports the deciding policy and rule', () => {
    const policies = compile([
      ['allow-all', allow([{}])],
      ['deny-post', deny([to({ methods: ['PUT'] }), to({ methods: ['POST'] })])],
    ]);
    expect(evaluateL7Authorization(policies, attrs({ method: 'POST' }))).toMatchObject({
      allowed: false,
      reason: 'denied-by-policy',
      policy: { namespace: 'shop', name: 'deny-post', ruleIndex: 1 },
    });
    expect(evaluateL7Authorization(policies, attrs())).toMatchObject({
      allowed: true,
      reason: 'allowed-by-policy',
      policy: { name: 'allow-all' },
    });
  });

  it('AUDIT never changes the decision but is reported', () => {
    const policies = compile([['audit-get', { action: 'AUDIT', rules: [to({ methods: ['GET'] })] }]]);
    const d = evaluateL7Authorization(policies, attrs());
    expect(d.allowed).toBe(true);
    expect(d.reason).toBe('no-allow-policies');
    expect(d.audit).toEqual([{ namespace: 'shop', name: 'audit-get', ruleIndex: 0 }]);
  });

  it('dry-run policies are shadow-evaluated only', () => {
    const policies = compile([['dry-deny', deny([{}]), { 'istio.io/dry-run': 'true' }]]);
    const d = evaluateL7Authorization(policies, attrs());
    expect(d.allowed).toBe(true);
    expect(d.shadow).toEqual({
      allowed: false,
      policy: { namespace: 'shop', name: 'dry-deny', ruleIndex: 0 },
    });
  });

  it('for TCP traffic, HTTP-only fields match in DENY and fail in ALLOW', () => {
    const denyMethods = compile([['d', deny([to({ methods: ['GET'], ports: ['9080'] })])]]);
    expect(evaluateL7Authorization(denyMethods, attrs({ tcp: true })).allowed).toBe(false);
    const allowPaths = compile([['a', allow([to({ paths: ['/x'] })])]]);
    expect(evaluateL7Authorization(allowPaths, attrs({ tcp: true })).allowed).toBe(false);
    const allowPorts = compile([['a', allow([to({ ports: ['9080'] })])]]);
    expect(evaluateL7Authorization(allowPorts, attrs({ tcp: true })).allowed).toBe(true);
  });
});
