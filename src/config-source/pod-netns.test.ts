import { describe, expect, it } from 'vitest';
import { compileYaml } from './compile.js';
import { ConfigValidationError } from './kube.js';
import { parseKubeYaml } from './parse.js';
import { buildPodNetnsIndex, parseNetnsAnnotation } from './pod-netns.js';

describe('parseNetnsAnnotation', () => {
  const cases: Array<[string, unknown, string | RegExp]> = [
    ['a netns name', 'shop-frontend', '/var/run/netns/shop-frontend'],
    ['a name with dots and underscores', 'mcap-1.n1_p2', '/var/run/netns/mcap-1.n1_p2'],
    ['an absolute path', '/proc/4242/ns/net', '/proc/4242/ns/net'],
    ['empty', '', /non-empty string/],
    ['not a string', 42, /non-empty string, got 42/],
    ['a relative path', 'netns/x', /neither a network namespace name nor an absolute path/],
    ['a name starting with a dot', '.hidden', /neither/],
    ['an absolute path climbing out', '/var/run/netns/../../etc/passwd', /not a plain absolute path/],
  ];
  it.each(cases)('%s', (_name, value, want) => {
    const r = parseNetnsAnnotation(value);
    if (typeof want === 'string') expect(r).toEqual({ ok: true, path: want });
    else {
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.problem).toMatch(want);
    }
  });
});

const yaml = (annotation: string) => `apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 10.77.0.1}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, annotations: {meshd.io/netns: ${annotation}}}
spec: {nodeName: n1}
status: {podIP: 10.77.1.2}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: shop}
spec: {nodeName: n1}
status: {podIP: 10.77.1.3}
`;

describe('the meshd.io/netns Pod annotation', () => {
  it('a malformed value fails the config, naming the file, document, field and fix', () => {
    let err: unknown;
    try {
      compileYaml(yaml('"../x"'), 'pods.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigValidationError);
    const e = err as ConfigValidationError;
    expect(e.loc).toMatchObject({ file: 'pods.yaml', document: 3 });
    expect(e.field).toBe('metadata.annotations["meshd.io/netns"]');
    expect(e.message).toMatch(/Pod shop\/web-0/);
    expect(e.hint).toMatch(/ip netns list/);
  });

  it('indexes declared namespaces by namespace/name; pods without one are absent', () => {
    const text = yaml('web-ns');
    expect(() => compileYaml(text, 'pods.yaml')).not.toThrow();
    const index = buildPodNetnsIndex(parseKubeYaml(text, 'pods.yaml'));
    expect([...index]).toEqual([['shop/web-0', '/var/run/netns/web-ns']]);
  });
});
