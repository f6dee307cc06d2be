import { describe, expect, it } from 'vitest';
import { buildAuthzDecision, rbacMatch, type MeshState, type Workload } from '../state/index.js';
import { compileYaml } from './compile.js';
import { formatWarning } from './kube.js';

const BASE = `apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 127.0.0.2}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: ns, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: ns2, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: ns, labels: {app: web}}
spec: {nodeName: n1}
status: {podIP: 127.0.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: ns, labels: {app: db}}
spec: {nodeName: n1}
status: {podIP: 127.0.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: ns2, labels: {app: web}}
spec: {nodeName: n1}
status: {podIP: 127.0.2.1}
`;

function compile(docs: string) {
  return compileYaml(`${BASE}---\n${docs}`, 'p.yaml');
}

const ap = (name: string, ns: string, spec: string, annotations = '{}') =>
  `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: ${ns}, annotations: ${annotations}}\nspec:\n${spec}\n`;

const web = (s: MeshState) => s.findWorkloadByIp('127.0.1.1')!;
const db = (s: MeshState) => s.findWorkloadByIp('127.0.1.2')!;
const web2 = (s: MeshState) => s.findWorkloadByIp('127.0.2.1')!;

describe('AuthorizationPolicy scopes', () => {
  it.each([
    [
      'selector → WorkloadSelector on matching pods of its namespace',
      'ns',
      '  selector: {matchLabels: {app: web}}\n  rules: [{}]',
      'WorkloadSelector',
      [true, false, false],
    ],
    ['no selector → Namespace', 'ns', '  rules: [{}]', 'Namespace', [false, false, false]],
    [
      'root namespace, no selector → Global',
      'istio-system',
      '  rules: [{}]',
      'Global',
      [false, false, false],
    ],
    [
      'root namespace with selector → matching pods of every namespace',
      'istio-system',
      '  selector: {matchLabels: {app: web}}\n  rules: [{}]',
      'WorkloadSelector',
      [true, false, true],
    ],
  ])('%s', (_n, ns, spec, scope, attached) => {
    const { state } = compile(ap('p', ns, spec));
    expect(state.findPolicy(`${ns}/p`)?.scope).toBe(scope);
    expect(
      [web(state), db(state), web2(state)].map((w) => w.authorizationPolicies.includes(`${ns}/p`)),
    ).toEqual(attached);
  });
});

describe('AuthorizationPolicy conversion', () => {
  const rulesOf = (spec: string, action = 'ALLOW') => {
    const r = compile(ap('p', 'ns', `  action: ${action}\n${spec}`));
    return { rules: r.state.findPolicy('ns/p')?.rules, warnings: r.warnings.map(formatWarning) };
  };

  it('from/to/when become clauses: to first, then from, then one clause per condition', () => {
    const { rules, warnings } = rulesOf(`  rules:
    - from: [{source: {principals: ["cluster.local/ns/a/sa/*"], notNamespaces: [kube-*]}}, {source: {ipBlocks: [10.0.0.0/8]}}]
      to: [{operation: {ports: ["8080"], notPorts: ["9090"]}}]
      when:
        - {key: source.ip, values: [192.168.0.0/16]}
        - {key: destination.port, notValues: ["22"]}
        - {key: source.namespace, values: [prod]}
        - {key: source.principal, values: ["*"]}
        - {key: destination.ip, notValues: ["fd00::/8"]}`);
    expect(warnings).toEqual([]);
    expect(rules).toEqual([
      {
        clauses: [
          { matches: [rbacMatch({ destinationPorts: [8080], notDestinationPorts: [9090] })] },
          {
            matches: [
              rbacMatch({
                principals: [{ kind: 'prefix', value: 'cluster.local/ns/a/sa/' }],
                notNamespaces: [{ kind: 'prefix', value: 'kube-' }],
              }),
              rbacMatch({ sourceIps: [{ address: '10.0.0.0', length: 8 }] }),
            ],
          },
          { matches: [rbacMatch({ sourceIps: [{ address: '192.168.0.0', length: 16 }] })] },
          { matches: [rbacMatch({ notDestinationPorts: [22] })] },
          { matches: [rbacMatch({ namespaces: [{ kind: 'exact', value: 'prod' }] })] },
          { matches: [rbacMatch({ principals: [{ kind: 'presence' }] })] },
          { matches: [rbacMatch({ notDestinationIps: [{ address: 'fd00::', length: 8 }] })] },
        ],
      },
    ]);
  });

  it('serviceAccounts: "sa" alone means the policy namespace', () => {
    const { rules } = rulesOf(
      '  rules: [{from: [{source: {serviceAccounts: [api, other/robot], notServiceAccounts: [ci]}}]}]',
    );
    expect(rules?.[0]?.clauses[0]?.matches[0]).toEqual(
      rbacMatch({
        serviceAccounts: [
          { namespace: 'ns', serviceAccount: 'api' },
          { namespace: 'other', serviceAccount: 'robot' },
        ],
        notServiceAccounts: [{ namespace: 'ns', serviceAccount: 'ci' }],
      }),
    );
  });

  it('ALLOW: a rule with L7 attributes is dropped whole (fail closed), with a warning; L4 rules stay', () => {
    const { rules, warnings } = rulesOf(`  rules:
    - to: [{operation: {methods: [GET], ports: ["8080"]}}]
    - from: [{source: {namespaces: [ns]}}]
      when: [{key: "request.headers[x-user]", values: [admin]}]
    - from: [{source: {namespaces: [ns]}}]`);
    expect(rules).toEqual([
      { clauses: [{ matches: [rbacMatch({ namespaces: [{ kind: 'exact', value: 'ns' }] })] }] },
    ]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(
      /spec\.rules\[0\]: ztunnel cannot enforce HTTP attributes \(methods\); this ALLOW rule is dropped.*fail closed/,
    );
    expect(warnings[1]).toMatch(/spec\.rules\[1\]: .*\(request\.headers\[x-user\]\)/);
  });

  it('ALLOW whose only rule is L7 → no rules → allow-nothing for the selected workload', () => {
    const { state, warnings } = compile(
      ap(
        'p',
        'ns',
        '  selector: {matchLabels: {app: web}}\n  rules: [{to: [{operation: {paths: [/admin]}}]}]',
      ),
    );
    expect(state.findPolicy('ns/p')?.rules).toEqual([]);
    expect(warnings.map(formatWarning)).toContainEqual(expect.stringMatching(/paths/));
    const conn = {
      workload: web(state),
      sourceIdentity: 'spiffe://cluster.local/ns/ns/sa/x',
      sourceIp: '127.0.1.9',
      destinationIp: '127.0.1.1',
      destinationPort: 80,
    };
    expect(buildAuthzDecision(state, conn)).toEqual({
      allow: false,
      reason: 'allow policies exist, but none allowed',
    });
  });

  it('ALLOW with trustDomains is treated as unenforceable too (not silently widened)', () => {
    const { rules, warnings } = rulesOf('  rules: [{from: [{source: {trustDomains: [other.org]}}]}]');
    expect(rules).toEqual([]);
    expect(warnings[0]).toMatch(/trustDomains/);
  });

  it('DENY: L7 removed, L4 rest kept (more restrictive), with a warning', () => {
    const { rules, warnings } = rulesOf(
      '  rules: [{to: [{operation: {methods: [POST], ports: ["8080"]}}]}]',
      'DENY',
    );
    expect(rules).toEqual([{ clauses: [{ matches: [rbacMatch({ destinationPorts: [8080] })] }] }]);
    expect(warnings[0]).toMatch(/enforced without them, which is more restrictive/);
  });

  it('DENY: an L7 attribute alone leaves an empty match → the rule never matches (warned)', () => {
    const r = compile(ap('p', 'ns', '  action: DENY\n  rules: [{to: [{operation: {paths: [/admin]}}]}]'));
    expect(r.state.findPolicy('ns/p')?.rules).toEqual([{ clauses: [{ matches: [rbacMatch({})] }] }]);
    expect(r.warnings.map(formatWarning)[0]).toMatch(/never matches at ztunnel/);
    const conn = {
      workload: web(r.state),
      sourceIdentity: undefined,
      sourceIp: '127.0.1.9',
      destinationIp: '127.0.1.1',
      destinationPort: 80,
    };
    expect(buildAuthzDecision(r.state, conn).allow).toBe(true);
  });

  it('AUDIT and CUSTOM are skipped with a warning', () => {
    for (const action of ['AUDIT', 'CUSTOM']) {
      const extra = action === 'CUSTOM' ? '\n  provider: {name: ext}' : '';
      const r = compile(ap('p', 'ns', `  action: ${action}${extra}\n  rules: [{}]`));
      expect(r.state.findPolicy('ns/p')).toBeUndefined();
      expect(r.warnings.map(formatWarning)[0]).toMatch(new RegExp(`does not support the ${action} action`));
    }
  });

  it('targetRefs policies are left to the waypoint (debug note, no warning)', () => {
    const r = compile(
      ap(
        'p',
        'ns',
        '  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: wp}]\n  rules: [{to: [{operation: {methods: [GET]}}]}]',
      ),
    );
    expect(r.state.findPolicy('ns/p')).toBeUndefined();
    expect(r.warnings).toEqual([]);
    expect(r.notes).toEqual([expect.stringMatching(/AuthorizationPolicy ns\/p: targetRefs policy/)]);
  });

  it('dry-run annotation; empty spec is allow-nothing', () => {
    const r = compile(
      ap('p', 'ns', '  rules: [{}]', '{istio.io/dry-run: "true"}') + '---\n' + ap('q', 'ns', '  {}'),
    );
    expect(r.state.findPolicy('ns/p')?.dryRun).toBe(true);
    expect(r.state.findPolicy('ns/q')).toMatchObject({
      action: 'Allow',
      rules: [],
      scope: 'Namespace',
      dryRun: false,
    });
  });

  it('a principal written with spiffe:// is warned (it can never match)', () => {
    const { warnings } = rulesOf(
      '  rules: [{from: [{source: {principals: ["spiffe://cluster.local/ns/a/sa/b"]}}]}]',
    );
    expect(warnings[0]).toMatch(/never matches: principals are written without spiffe:\/\//);
  });
});

const pa = (name: string, ns: string, spec: string, created?: string) =>
  `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: ${name}, namespace: ${ns}${created ? `, creationTimestamp: "${created}"` : ''}}\nspec: ${spec}\n`;

const STRICT_KEY = 'istio-system/istio_converted_static_strict';

describe('PeerAuthentication precedence', () => {
  const strictOf = (docs: string) => {
    const { state } = compile(docs);
    return [web(state), db(state), web2(state)].map((w) => w.authorizationPolicies.includes(STRICT_KEY));
  };

  it.each([
    ['mesh STRICT applies everywhere', pa('m', 'istio-system', '{mtls: {mode: STRICT}}'), [true, true, true]],
    ['mesh PERMISSIVE', pa('m', 'istio-system', '{mtls: {mode: PERMISSIVE}}'), [false, false, false]],
    ['namespace STRICT', pa('n', 'ns', '{mtls: {mode: STRICT}}'), [true, true, false]],
    [
      'namespace PERMISSIVE overrides mesh STRICT',
      pa('m', 'istio-system', '{mtls: {mode: STRICT}}') +
        '---\n' +
        pa('n', 'ns', '{mtls: {mode: PERMISSIVE}}'),
      [false, false, true],
    ],
    [
      'namespace UNSET inherits mesh STRICT',
      pa('m', 'istio-system', '{mtls: {mode: STRICT}}') + '---\n' + pa('n', 'ns', '{}'),
      [true, true, true],
    ],
    [
      'workload STRICT beats namespace PERMISSIVE',
      pa('n', 'ns', '{mtls: {mode: PERMISSIVE}}') +
        '---\n' +
        pa('w', 'ns', '{selector: {matchLabels: {app: web}}, mtls: {mode: STRICT}}'),
      [true, false, false],
    ],
    [
      'workload PERMISSIVE beats mesh STRICT',
      pa('m', 'istio-system', '{mtls: {mode: STRICT}}') +
        '---\n' +
        pa('w', 'ns', '{selector: {matchLabels: {app: db}}, mtls: {mode: PERMISSIVE}}'),
      [true, false, true],
    ],
    ['DISABLE is not STRICT', pa('n', 'ns', '{mtls: {mode: DISABLE}}'), [false, false, false]],
    [
      'the oldest namespace policy wins',
      pa('a', 'ns', '{mtls: {mode: PERMISSIVE}}', '2024-02-01T00:00:00Z') +
        '---\n' +
        pa('b', 'ns', '{mtls: {mode: STRICT}}', '2024-01-01T00:00:00Z'),
      [true, true, false],
    ],
    [
      'without timestamps, the first declared wins',
      pa('a', 'ns', '{mtls: {mode: PERMISSIVE}}') + '---\n' + pa('b', 'ns', '{mtls: {mode: STRICT}}'),
      [false, false, false],
    ],
  ])('%s', (_n, docs, want) => {
    expect(strictOf(docs)).toEqual(want);
  });

  it('the static STRICT policy is a DENY of traffic without identity', () => {
    const { state } = compile(pa('m', 'istio-system', '{mtls: {mode: STRICT}}'));
    expect(state.findPolicy(STRICT_KEY)).toEqual({
      name: 'istio_converted_static_strict',
      namespace: 'istio-system',
      scope: 'WorkloadSelector',
      action: 'Deny',
      rules: [{ clauses: [{ matches: [rbacMatch({ notPrincipals: [{ kind: 'presence' }] })] }] }],
      dryRun: false,
    });
  });
});

describe('PeerAuthentication portLevelMtls', () => {
  const decide = (state: MeshState, w: Workload, port: number, identity?: string) =>
    buildAuthzDecision(state, {
      workload: w,
      sourceIdentity: identity,
      sourceIp: '10.9.9.9',
      destinationIp: w.workloadIps[0]!,
      destinationPort: port,
    }).allow;

  it.each([
    [
      'STRICT with a PERMISSIVE port',
      pa(
        'w',
        'ns',
        '{selector: {matchLabels: {app: web}}, mtls: {mode: STRICT}, portLevelMtls: {"8080": {mode: PERMISSIVE}}}',
      ),
      { 8080: true, 9090: false },
    ],
    [
      'namespace STRICT, workload UNSET with a DISABLE port',
      pa('n', 'ns', '{mtls: {mode: STRICT}}') +
        '---\n' +
        pa('w', 'ns', '{selector: {matchLabels: {app: web}}, portLevelMtls: {"8080": {mode: DISABLE}}}'),
      { 8080: true, 9090: false },
    ],
    [
      'mesh STRICT, namespace UNSET, PERMISSIVE port (STRICT kept elsewhere)',
      pa('m', 'istio-system', '{mtls: {mode: STRICT}}') +
        '---\n' +
        pa('n', 'ns', '{}') +
        '---\n' +
        pa('w', 'ns', '{selector: {matchLabels: {app: web}}, portLevelMtls: {"8080": {mode: PERMISSIVE}}}'),
      { 8080: true, 9090: false },
    ],
    [
      'PERMISSIVE with a STRICT port',
      pa(
        'w',
        'ns',
        '{selector: {matchLabels: {app: web}}, mtls: {mode: PERMISSIVE}, portLevelMtls: {"8080": {mode: STRICT}}}',
      ),
      { 8080: false, 9090: true },
    ],
    [
      'STRICT with only STRICT ports = plain STRICT',
      pa(
        'w',
        'ns',
        '{selector: {matchLabels: {app: web}}, mtls: {mode: STRICT}, portLevelMtls: {"8080": {mode: STRICT}}}',
      ),
      { 8080: false, 9090: false },
    ],
  ])('%s: plaintext allowed per port', (_n, docs, want) => {
    const { state } = compile(docs);
    const w = web(state);
    for (const [port, allowed] of Object.entries(want)) {
      expect(decide(state, w, Number(port)), `port ${port}`).toBe(allowed);
      expect(decide(state, w, Number(port), 'spiffe://cluster.local/ns/ns/sa/x'), `mTLS on ${port}`).toBe(
        true,
      );
    }
  });

  it('port exceptions reference a converted per-policy DENY instead of the static one', () => {
    const { state } = compile(
      pa(
        'w',
        'ns',
        '{selector: {matchLabels: {app: web}}, mtls: {mode: STRICT}, portLevelMtls: {"8080": {mode: PERMISSIVE}}}',
      ),
    );
    expect(web(state).authorizationPolicies).toEqual(['ns/converted_peer_authentication_w']);
    expect(state.findPolicy('ns/converted_peer_authentication_w')?.rules).toEqual([
      {
        clauses: [
          { matches: [rbacMatch({ notPrincipals: [{ kind: 'presence' }] })] },
          { matches: [rbacMatch({ notDestinationPorts: [8080] })] },
        ],
      },
    ]);
  });
});
