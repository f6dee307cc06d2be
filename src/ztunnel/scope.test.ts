import { describe, expect, it } from 'vitest';
import { compileYaml } from '../config-source/index.js';
import { buildDaemonScope, parsePodRef, scopeServes, type DaemonScope } from './scope.js';

const pod = (ns: string, name: string, node: string | null, ip: string | null, labels = '{}') => `---
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: ${labels} }
spec: { ${node ? `nodeName: ${node}` : ''} }
status: { ${ip ? `podIP: ${ip}` : ''} }
`;

const YAML = `
apiVersion: v1
kind: Node
metadata: { name: node-a }
status: { addresses: [{ type: InternalIP, address: 127.0.65.1 }] }
---
apiVersion: v1
kind: Node
metadata: { name: node-b }
status: { addresses: [{ type: InternalIP, address: 127.0.66.1 }] }
---
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { istio.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Namespace
metadata: { name: legacy }
${pod('shop', 'web-0', 'node-a', '127.0.65.10')}
${pod('shop', 'api-0', 'node-b', '127.0.66.10')}
${pod('shop', 'opted-out-0', 'node-a', '127.0.65.11', '{ istio.io/dataplane-mode: none }')}
${pod('shop', 'pending-0', null, null)}
${pod('legacy', 'old-0', 'node-a', '127.0.65.12')}
`;

const compiled = compileYaml(YAML, 'mesh.yaml');
const declaredPods = new Set(
  compiled.objects
    .filter((o) => o.obj.kind === 'Pod')
    .map((o) => `${o.obj.metadata.namespace}/${o.obj.metadata.name}`),
);
const scopeOf = (flags: { node?: string; dedicated?: string }) =>
  buildDaemonScope({
    configPath: 'mesh.yaml',
    nodes: compiled.nodes,
    state: compiled.state,
    declaredPods,
    ...flags,
  });

describe('buildDaemonScope', () => {
  it.each<[string, { node?: string; dedicated?: string }, DaemonScope]>([
    [
      'node mode: the node and its InternalIP',
      { node: 'node-a' },
      { nodeName: 'node-a', daemonAddress: '127.0.65.1' },
    ],
    [
      'dedicated: the pod names its node; daemon ports on the pod IP',
      { dedicated: 'shop/api-0' },
      {
        nodeName: 'node-b',
        daemonAddress: '127.0.66.10',
        dedicatedUid: 'Kubernetes//Pod/shop/api-0',
        dedicated: 'shop/api-0',
      },
    ],
    [
      'dedicated with a matching --node',
      { dedicated: 'shop/web-0', node: 'node-a' },
      {
        nodeName: 'node-a',
        daemonAddress: '127.0.65.10',
        dedicatedUid: 'Kubernetes//Pod/shop/web-0',
        dedicated: 'shop/web-0',
      },
    ],
  ])('%s', (_name, flags, expected) => {
    expect(scopeOf(flags)).toEqual({ ok: true, scope: expected });
  });

  it.each<[string, { node?: string; dedicated?: string }, string, RegExp, RegExp]>([
    [
      'neither flag',
      {},
      'MESH_ERR_INVALID_ARGUMENT',
      /either --node NAME .* or --dedicated NAMESPACE\/POD .* is required/,
      /--node/,
    ],
    [
      'unknown node',
      { node: 'node-z' },
      'MESH_ERR_CONFIG',
      /node "node-z" is not declared .*node-a, node-b/,
      /v1 Node/,
    ],
    [
      'not NAMESPACE/POD',
      { dedicated: 'web-0' },
      'MESH_ERR_INVALID_ARGUMENT',
      /"web-0" is not NAMESPACE\/POD/,
      /namespace\/name/,
    ],
    [
      "unknown pod (lists the namespace's pods)",
      { dedicated: 'shop/nope-0' },
      'MESH_ERR_CONFIG',
      /pod shop\/nope-0 is not declared in mesh.yaml \(pods in namespace shop: shop\/api-0, shop\/opted-out-0, shop\/pending-0, shop\/web-0\)/,
      /add a v1 Pod/,
    ],
    [
      'declared pod that is not running',
      { dedicated: 'shop/pending-0' },
      'MESH_ERR_CONFIG',
      /not a running workload/,
      /spec.nodeName/,
    ],
    [
      'pod in a namespace not enrolled',
      { dedicated: 'legacy/old-0' },
      'MESH_ERR_CONFIG',
      /legacy\/old-0 is not enrolled/,
      /label namespace legacy istio.io\/dataplane-mode=ambient/,
    ],
    [
      'pod opted out by label',
      { dedicated: 'shop/opted-out-0' },
      'MESH_ERR_CONFIG',
      /shop\/opted-out-0 is not enrolled/,
      /do not label the pod/,
    ],
    [
      '--node that contradicts the pod',
      { dedicated: 'shop/web-0', node: 'node-b' },
      'MESH_ERR_INVALID_ARGUMENT',
      /--node node-b does not match pod shop\/web-0, which runs on node node-a/,
      /leave out --node/,
    ],
  ])('refuses: %s', (_name, flags, code, message, hint) => {
    const r = scopeOf(flags);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe(code);
    expect(r.error.message).toMatch(message);
    expect(r.error.hint).toMatch(hint);
  });
});

describe('parsePodRef', () => {
  it.each<[string, { namespace: string; name: string } | undefined]>([
    ['shop/web-0', { namespace: 'shop', name: 'web-0' }],
    ['kube-system/coredns-7db6d8ff4d-abcde', { namespace: 'kube-system', name: 'coredns-7db6d8ff4d-abcde' }],
    ['a/b.c', { namespace: 'a', name: 'b.c' }],
    ['web-0', undefined],
    ['/web-0', undefined],
    ['shop/', undefined],
    ['shop/web/0', undefined],
    ['Shop/web-0', undefined],
  ])('%s', (text, expected) => {
    expect(parsePodRef(text)).toEqual(expected);
  });
});

describe('scopeServes', () => {
  it('node mode serves every workload; dedicated mode only its own', () => {
    expect(scopeServes({}, { uid: 'x' })).toBe(true);
    expect(scopeServes({ dedicatedUid: 'x' }, { uid: 'x' })).toBe(true);
    expect(scopeServes({ dedicatedUid: 'x' }, { uid: 'y' })).toBe(false);
  });
});
