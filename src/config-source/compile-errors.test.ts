import { describe, expect, it } from 'vitest';
import { compileYaml } from './compile.js';
import { ConfigValidationError } from './kube.js';

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
kind: Pod
metadata: {name: web-0, namespace: ns, labels: {app: web}}
spec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 127.0.1.1}
`;

function compileWith(extra: string) {
  return compileYaml(`${BASE}---\n${extra}`, 'bad.yaml');
}

function errorOf(extra: string): ConfigValidationError {
  try {
    compileWith(extra);
  } catch (e) {
    if (e instanceof ConfigValidationError) return e;
    throw e;
  }
  throw new Error('expected a ConfigValidationError');
}

interface BadCase {
  name: string;
  yaml: string;
  /** Expected document number (BASE has 3). */
  document: number;
  object: string | undefined;
  field: string;
  problem: RegExp;
  fix: RegExp;
}

const pod = (name: string, ip: string, extra = '') =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: ns}\nspec: {nodeName: n1${extra}}\nstatus: {podIP: ${ip}}\n`;
const svc = (spec: string, labels = '{}') =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: ns, labels: ${labels}}\nspec: ${spec}\n`;
const ap = (spec: string) =>
  `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ap, namespace: ns}\nspec:\n${spec}\n`;

const cases: BadCase[] = [
  {
    name: 'duplicate object',
    yaml: `apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n`,
    document: 4,
    object: 'Namespace ns',
    field: 'metadata.name',
    problem: /duplicate object: already declared in bad.yaml document 2/,
    fix: /remove one of them/,
  },
  {
    name: 'duplicate pod IP',
    yaml: pod('web-1', '127.0.1.1'),
    document: 4,
    object: 'Pod ns/web-1',
    field: 'status.podIP',
    problem: /IP 127\.0\.1\.1 is already used by Pod ns\/web-0/,
    fix: /its own address/,
  },
  {
    name: 'clusterIP equal to a pod IP',
    yaml: svc('{clusterIP: 127.0.1.1, selector: {app: web}, ports: [{port: 80}]}'),
    document: 4,
    object: 'Service ns/web',
    field: 'spec.clusterIP',
    problem: /already used by Pod ns\/web-0/,
    fix: /its own address/,
  },
  {
    name: 'pod on an undeclared node',
    yaml: pod('web-1', '127.0.1.2').replace('nodeName: n1', 'nodeName: n9'),
    document: 4,
    object: 'Pod ns/web-1',
    field: 'spec.nodeName',
    problem: /Node "n9" is not declared/,
    fix: /add a Node object/,
  },
  {
    name: 'bad pod IP',
    yaml: pod('web-1', '127.0.1.300'),
    document: 4,
    object: 'Pod ns/web-1',
    field: 'status.podIP',
    problem: /"127\.0\.1\.300" is not an IP address/,
    fix: /IPv4 or IPv6/,
  },
  {
    name: 'service port out of range',
    yaml: svc('{clusterIP: 127.10.0.1, selector: {app: web}, ports: [{port: 70000}]}'),
    document: 4,
    object: 'Service ns/web',
    field: 'spec.ports[0].port',
    problem: /port 70000 is out of range/,
    fix: /between 1 and 65535/,
  },
  {
    name: 'port of the wrong type',
    yaml: svc('{clusterIP: 127.10.0.1, selector: {app: web}, ports: [{port: "80"}]}'),
    document: 4,
    object: 'Service ns/web',
    field: 'spec.ports[0].port',
    problem: /must be a port number, got string "80"/,
    fix: /integer/,
  },
  {
    name: 'quoted numeric targetPort',
    yaml: svc('{clusterIP: 127.10.0.1, selector: {app: web}, ports: [{port: 80, targetPort: "8080"}]}'),
    document: 4,
    object: 'Service ns/web',
    field: 'spec.ports[0].targetPort',
    problem: /quoted number/,
    fix: /unquoted/,
  },
  {
    name: 'ports not a list',
    yaml: svc('{clusterIP: 127.10.0.1, ports: {port: 80}}'),
    document: 4,
    object: 'Service ns/web',
    field: 'spec.ports',
    problem: /must be a list, got a mapping/,
    fix: /YAML list/,
  },
  {
    name: 'label value not a string',
    yaml: `apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns, labels: {version: 1}}\n`,
    document: 4,
    object: 'Pod ns/p',
    field: 'metadata.labels.version',
    problem: /must be a string, got number 1/,
    fix: /quote the value: version: "1"/,
  },
  {
    name: 'use-waypoint naming a missing Gateway',
    yaml: svc(
      '{clusterIP: 127.10.0.1, selector: {app: web}, ports: [{port: 80}]}',
      '{istio.io/use-waypoint: wp}',
    ),
    document: 4,
    object: 'Service ns/web',
    field: 'metadata.labels.istio.io/use-waypoint',
    problem: /names waypoint "wp" in namespace "ns", but no Gateway of class istio-waypoint/,
    fix: /never bypasses a waypoint/,
  },
  {
    name: 'waypoint Gateway without an HBONE listener',
    yaml: `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: wp, namespace: ns}\nspec: {gatewayClassName: istio-waypoint, listeners: [{name: http, port: 80, protocol: HTTP}]}\n`,
    document: 4,
    object: 'Gateway ns/wp',
    field: 'spec.listeners',
    problem: /needs an HBONE listener on port 15008/,
    fix: /protocol: HBONE/,
  },
  {
    name: 'typo in a source key',
    yaml: ap('  rules:\n    - from:\n        - source: {principal: [cluster.local/ns/ns/sa/x]}'),
    document: 4,
    object: 'AuthorizationPolicy ns/ap',
    field: 'spec.rules[0].from[0].source.principal',
    problem: /unknown field "principal"/,
    fix: /use one of: principals, notPrincipals/,
  },
  {
    name: 'typo in a rule key',
    yaml: ap('  rules:\n    - form: [{source: {namespaces: [a]}}]'),
    document: 4,
    object: 'AuthorizationPolicy ns/ap',
    field: 'spec.rules[0].form',
    problem: /unknown field "form"/,
    fix: /from, to, when/,
  },
  {
    name: 'unknown when key',
    yaml: ap('  rules:\n    - when: [{key: source.ips, values: [10.0.0.1]}]'),
    document: 4,
    object: 'AuthorizationPolicy ns/ap',
    field: 'spec.rules[0].when[0].key',
    problem: /unknown condition key "source.ips"/,
    fix: /source\.ip/,
  },
  {
    name: 'bad ipBlock',
    yaml: ap('  rules:\n    - from: [{source: {ipBlocks: [10.0.0.0/33]}}]'),
    document: 4,
    object: 'AuthorizationPolicy ns/ap',
    field: 'spec.rules[0].from[0].source.ipBlocks[0]',
    problem: /not an IP address or CIDR block/,
    fix: /10\.0\.0\.0\/8/,
  },
  {
    name: 'serviceAccounts combined with principals',
    yaml: ap('  rules:\n    - from: [{source: {serviceAccounts: [a], principals: [b]}}]'),
    document: 4,
    object: 'AuthorizationPolicy ns/ap',
    field: 'spec.rules[0].from[0].source.serviceAccounts',
    problem: /cannot be combined/,
    fix: /either serviceAccounts/,
  },
  {
    name: 'unknown action',
    yaml: ap('  action: REJECT'),
    document: 4,
    object: 'AuthorizationPolicy ns/ap',
    field: 'spec.action',
    problem: /unknown action "REJECT"/,
    fix: /ALLOW, DENY/,
  },
  {
    name: 'portLevelMtls without selector',
    yaml: `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: pa, namespace: ns}\nspec: {mtls: {mode: STRICT}, portLevelMtls: {"8080": {mode: PERMISSIVE}}}\n`,
    document: 4,
    object: 'PeerAuthentication ns/pa',
    field: 'spec.portLevelMtls',
    problem: /requires a workload selector/,
    fix: /selector/,
  },
  {
    name: 'node without InternalIP',
    yaml: `apiVersion: v1\nkind: Node\nmetadata: {name: n2}\nstatus: {addresses: [{type: Hostname, address: n2}]}\n`,
    document: 4,
    object: 'Node n2',
    field: 'status.addresses',
    problem: /no InternalIP/,
    fix: /InternalIP/,
  },
  {
    name: 'document is not a mapping',
    yaml: `- just\n- a list\n`,
    document: 4,
    object: undefined,
    field: '',
    problem: /must be a Kubernetes object \(a mapping\), got a list/,
    fix: /apiVersion/,
  },
  {
    name: 'missing kind',
    yaml: `apiVersion: v1\nmetadata: {name: x}\n`,
    document: 4,
    object: undefined,
    field: 'kind',
    problem: /missing/,
    fix: /kind: Pod/,
  },
  {
    name: 'missing metadata.name',
    yaml: `apiVersion: v1\nkind: Pod\nmetadata: {namespace: ns}\n`,
    document: 4,
    object: 'Pod',
    field: 'metadata.name',
    problem: /missing/,
    fix: /name/,
  },
];

describe('invalid input names file, document, object, field and fix', () => {
  it.each(cases)('$name', (tc) => {
    const err = errorOf(tc.yaml);
    expect(err.code).toBe('MESH_ERR_CONFIG');
    expect(err.loc.file).toBe('bad.yaml');
    expect(err.loc.document).toBe(tc.document);
    expect(err.object).toBe(tc.object);
    expect(err.field).toBe(tc.field);
    expect(err.message).toMatch(new RegExp(`^bad\\.yaml: document ${tc.document} \\(line \\d+\\): `));
    expect(err.message).toMatch(tc.problem);
    expect(err.hint).toMatch(tc.fix);
  });

  it('YAML syntax errors carry the line of the error', () => {
    const err = (() => {
      try {
        compileYaml(
          `${BASE}---\napiVersion: v1\nkind: Pod\nmetadata: {name: p\n  namespace: ns\n`,
          'bad.yaml',
        );
      } catch (e) {
        return e as ConfigValidationError;
      }
      throw new Error('expected an error');
    })();
    expect(err).toBeInstanceOf(ConfigValidationError);
    expect(err.loc.document).toBe(4);
    expect(err.loc.line).toBe(18); // the `metadata: {name: p` line
    expect(err.message).toMatch(/invalid YAML/);
    expect(err.hint).toMatch(/YAML syntax/);
  });

  it('empty documents are skipped but still counted', () => {
    const r = compileYaml(`---\n---\n${BASE}`, 'ok.yaml');
    expect(r.objects.map((o) => o.loc.document)).toEqual([2, 3, 4]);
    expect(r.objects[0]?.loc.line).toBe(3);
  });

  it('a Gateway with no instance pods is fine (routing fails closed later)', () => {
    const r = compileWith(
      `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: wp, namespace: ns}\nspec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}\n---\n` +
        svc(
          '{clusterIP: 127.10.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}',
          '{istio.io/use-waypoint: wp}',
        ),
    );
    const s = r.state.findServiceByVip('127.10.0.1');
    expect(s?.waypoint?.destination).toEqual({
      kind: 'hostname',
      namespace: 'ns',
      hostname: 'wp.ns.svc.cluster.local',
    });
    expect(r.state.findWaypoint(s!.waypoint!)?.endpoints).toEqual([]);
  });
});
