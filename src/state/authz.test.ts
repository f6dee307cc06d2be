import { describe, expect, it } from 'vitest';
import { buildAuthzDecision, evaluatePolicies, type ConnectionAttributes } from './authz.js';
import { parseCidr, type IpCidr } from './ip.js';
import {
  rbacMatch,
  type Authorization,
  type AuthorizationRule,
  type RbacMatch,
  type StringMatch,
  type Workload,
} from './model.js';
import { MeshState } from './store.js';

const server: Workload = {
  uid: 'Kubernetes//Pod/shop/server-0',
  name: 'server-0',
  namespace: 'shop',
  serviceAccount: 'server',
  trustDomain: 'cluster.local',
  workloadIps: ['10.0.2.7'],
  network: '',
  node: 'node-b',
  protocol: 'HBONE',
  nativeTunnel: false,
  services: {},
  status: 'Healthy',
  canonicalName: 'server',
  canonicalRevision: 'v1',
  workloadName: 'server',
  workloadType: 'pod',
  locality: { region: '', zone: '', subzone: '' },
  capacity: 1,
  clusterId: 'Kubernetes',
  authorizationPolicies: [],
};

const CLIENT = 'spiffe://cluster.local/ns/shop/sa/client';
const OTHER = 'spiffe://cluster.local/ns/other/sa/robot';

const conn = (over: Partial<ConnectionAttributes> = {}): ConnectionAttributes => ({
  workload: server,
  sourceIdentity: CLIENT,
  sourceIp: '10.0.1.5',
  destinationIp: '10.0.2.7',
  destinationPort: 8080,
  ...over,
});

const exact = (value: string): StringMatch => ({ kind: 'exact', value });
const cidr = (s: string): IpCidr => parseCidr(s)!;
const rule = (...clauses: RbacMatch[][]): AuthorizationRule => ({
  clauses: clauses.map((matches) => ({ matches })),
});
const policy = (
  name: string,
  action: 'Allow' | 'Deny',
  rules: AuthorizationRule[],
  extra: Partial<Authorization> = {},
): Authorization => ({ name, namespace: 'shop', scope: 'Namespace', action, rules, dryRun: false, ...extra });
const allowFrom = (m: Partial<RbacMatch>, name = 'allow') => policy(name, 'Allow', [rule([rbacMatch(m)])]);
const denyFrom = (m: Partial<RbacMatch>, name = 'deny') => policy(name, 'Deny', [rule([rbacMatch(m)])]);

const ALLOWED = { allow: true };
const NONE_ALLOWED = { allow: false, reason: 'allow policies exist, but none allowed' };
const deniedBy = (key: string) => ({ allow: false, reason: `explicitly denied by: ${key}`, policy: key });

describe('evaluatePolicies (Istio order and matching)', () => {
  const cases: Array<[string, Authorization[], Partial<ConnectionAttributes>, object]> = [
    ['no policies allows everything', [], {}, ALLOWED],
    ['matching allow', [allowFrom({ principals: [exact('cluster.local/ns/shop/sa/client')] })], {}, ALLOWED],
    [
      'principal with spiffe:// prefix never matches (policies name principals without it)',
      [allowFrom({ principals: [exact(CLIENT)] })],
      {},
      NONE_ALLOWED,
    ],
    ['non-matching allow', [allowFrom({ namespaces: [exact('other')] })], {}, NONE_ALLOWED],
    [
      'deny wins over a matching allow',
      [allowFrom({ namespaces: [exact('shop')] }), denyFrom({ destinationPorts: [8080] })],
      {},
      deniedBy('shop/deny'),
    ],
    ['non-matching deny, no allow → allow', [denyFrom({ destinationPorts: [9090] })], {}, ALLOWED],
    [
      'allow with empty rules never matches (allow-nothing)',
      [policy('nothing', 'Allow', [])],
      {},
      NONE_ALLOWED,
    ],
    ['deny with empty rules has no effect', [policy('d', 'Deny', [])], {}, ALLOWED],
    [
      'rule with no clauses matches everything (rules: [{}])',
      [policy('all', 'Allow', [rule()])],
      {},
      ALLOWED,
    ],
    [
      'clause with only empty matches never matches',
      [policy('d', 'Deny', [rule([rbacMatch({})])])],
      {},
      ALLOWED,
    ],
    [
      'clause with no matches at all matches',
      [policy('d', 'Deny', [{ clauses: [{ matches: [] }] }])],
      {},
      deniedBy('shop/d'),
    ],
    [
      'clauses are ANDed',
      [
        policy('a', 'Allow', [
          rule([rbacMatch({ destinationPorts: [8080] })], [rbacMatch({ namespaces: [exact('x')] })]),
        ]),
      ],
      {},
      NONE_ALLOWED,
    ],
    [
      'matches within a clause are ORed',
      [
        policy('a', 'Allow', [
          rule([rbacMatch({ namespaces: [exact('x')] }), rbacMatch({ destinationPorts: [8080] })]),
        ]),
      ],
      {},
      ALLOWED,
    ],
    [
      'rules are ORed',
      [
        policy('a', 'Allow', [
          rule([rbacMatch({ namespaces: [exact('x')] })]),
          rule([rbacMatch({ destinationPorts: [8080] })]),
        ]),
      ],
      {},
      ALLOWED,
    ],
    [
      'fields within a match are ANDed',
      [allowFrom({ namespaces: [exact('shop')], destinationPorts: [9090] })],
      {},
      NONE_ALLOWED,
    ],
    ['notNamespaces excludes', [allowFrom({ notNamespaces: [exact('shop')] })], {}, NONE_ALLOWED],
    ['namespace prefix', [allowFrom({ namespaces: [{ kind: 'prefix', value: 'sh' }] })], {}, ALLOWED],
    ['principal suffix', [allowFrom({ principals: [{ kind: 'suffix', value: '/sa/client' }] })], {}, ALLOWED],
    ['principal presence with identity', [allowFrom({ principals: [{ kind: 'presence' }] })], {}, ALLOWED],
    [
      'principal presence without identity',
      [allowFrom({ principals: [{ kind: 'presence' }] })],
      { sourceIdentity: undefined },
      NONE_ALLOWED,
    ],
    [
      'STRICT: notPrincipals presence denies no identity',
      [denyFrom({ notPrincipals: [{ kind: 'presence' }] }, 'istio_converted_static_strict')],
      { sourceIdentity: undefined },
      deniedBy('shop/istio_converted_static_strict'),
    ],
    [
      'STRICT: notPrincipals presence lets an identity through',
      [denyFrom({ notPrincipals: [{ kind: 'presence' }] })],
      {},
      ALLOWED,
    ],
    [
      'serviceAccounts match namespace and SA',
      [allowFrom({ serviceAccounts: [{ namespace: 'other', serviceAccount: 'robot' }] })],
      { sourceIdentity: OTHER },
      ALLOWED,
    ],
    [
      'serviceAccounts wrong namespace',
      [allowFrom({ serviceAccounts: [{ namespace: 'shop', serviceAccount: 'robot' }] })],
      { sourceIdentity: OTHER },
      NONE_ALLOWED,
    ],
    [
      'serviceAccounts never match without identity',
      [allowFrom({ serviceAccounts: [{ namespace: 'shop', serviceAccount: 'client' }] })],
      { sourceIdentity: undefined },
      NONE_ALLOWED,
    ],
    [
      'notServiceAccounts without identity holds',
      [allowFrom({ notServiceAccounts: [{ namespace: 'shop', serviceAccount: 'client' }] })],
      { sourceIdentity: undefined },
      ALLOWED,
    ],
    ['source CIDR v4', [allowFrom({ sourceIps: [cidr('10.0.1.0/24')] })], {}, ALLOWED],
    ['source CIDR v4 miss', [allowFrom({ sourceIps: [cidr('10.0.9.0/24')] })], {}, NONE_ALLOWED],
    [
      'notSourceIps',
      [denyFrom({ notSourceIps: [cidr('10.0.0.0/16')] })],
      { sourceIp: '192.168.0.1' },
      deniedBy('shop/deny'),
    ],
    [
      'source CIDR v6',
      [allowFrom({ sourceIps: [cidr('fd00:1::/32')] })],
      { sourceIp: 'fd00:1:2::9', destinationIp: 'fd00:2::7' },
      ALLOWED,
    ],
    [
      'v4 CIDR does not match a v6 source',
      [allowFrom({ sourceIps: [cidr('0.0.0.0/0')] })],
      { sourceIp: 'fd00::1' },
      NONE_ALLOWED,
    ],
    [
      'v4-mapped source matches v4 CIDR',
      [allowFrom({ sourceIps: [cidr('10.0.1.5')] })],
      { sourceIp: '::ffff:10.0.1.5' },
      ALLOWED,
    ],
    ['destination IP', [allowFrom({ destinationIps: [cidr('10.0.2.7/32')] })], {}, ALLOWED],
    ['notDestinationPorts', [allowFrom({ notDestinationPorts: [8080] })], {}, NONE_ALLOWED],
  ];

  it.each(cases)('%s', (_name, policies, over, want) => {
    expect(evaluatePolicies(policies, conn(over))).toEqual(want);
  });
});

describe('dry-run', () => {
  it('a matching dry-run DENY is only reported', () => {
    const d = evaluatePolicies([{ ...denyFrom({ destinationPorts: [8080] }), dryRun: true }], conn());
    expect(d).toEqual({ allow: true, dryRun: [{ policy: 'shop/deny', action: 'Deny', matched: true }] });
  });

  it('a dry-run ALLOW does not make the workload allow-only', () => {
    const d = evaluatePolicies([{ ...allowFrom({ namespaces: [exact('x')] }), dryRun: true }], conn());
    expect(d).toEqual({ allow: true, dryRun: [{ policy: 'shop/allow', action: 'Allow', matched: false }] });
  });

  it('an enforced deny still denies next to a dry-run allow', () => {
    const d = evaluatePolicies(
      [{ ...allowFrom({ destinationPorts: [8080] }), dryRun: true }, denyFrom({ destinationPorts: [8080] })],
      conn(),
    );
    expect(d).toMatchObject({ allow: false, policy: 'shop/deny' });
    expect(d.dryRun).toEqual([{ policy: 'shop/allow', action: 'Allow', matched: true }]);
  });
});

describe('buildAuthzDecision selects the applicable policies', () => {
  const denyAll = (name: string, namespace: string, scope: Authorization['scope']): Authorization => ({
    name,
    namespace,
    scope,
    action: 'Deny',
    rules: [rule()],
    dryRun: false,
  });

  it.each([
    ['namespace policy of the workload namespace applies', denyAll('d', 'shop', 'Namespace'), [], false],
    ['namespace policy of another namespace does not', denyAll('d', 'other', 'Namespace'), [], true],
    ['global policy applies everywhere', denyAll('d', 'istio-system', 'Global'), [], false],
    ['selector policy applies only when referenced', denyAll('d', 'shop', 'WorkloadSelector'), [], true],
    ['referenced selector policy applies', denyAll('d', 'shop', 'WorkloadSelector'), ['shop/d'], false],
    ['unknown reference is skipped', denyAll('d', 'shop', 'WorkloadSelector'), ['shop/missing'], true],
  ])('%s', (_name, pol, refs, allowed) => {
    const w = { ...server, authorizationPolicies: refs };
    const state = MeshState.build({ workloads: [w], policies: [pol] });
    expect(buildAuthzDecision(state, conn({ workload: w })).allow).toBe(allowed);
  });
});
