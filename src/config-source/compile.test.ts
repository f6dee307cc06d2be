import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatWarning } from './kube.js';
import { compileYaml } from './compile.js';

const FILE = new URL('./testdata/mesh.yaml', import.meta.url);
const text = readFileSync(FILE, 'utf8');
const compiled = compileYaml(text, 'mesh.yaml');
const { state } = compiled;

const wp = (ns: string, name: string) => ({
  destination: { kind: 'hostname', namespace: ns, hostname: `${name}.${ns}.svc.cluster.local` },
  hboneMtlsPort: 15008,
});

describe('compile a realistic multi-namespace file', () => {
  it('nodes: InternalIP address and labels', () => {
    expect(compiled.nodes.get('node-a')).toMatchObject({ name: 'node-a', address: '127.0.0.2' });
    expect(compiled.nodes.get('node-b')?.address).toBe('127.0.0.3');
  });

  it('keeps every object (routes for the waypoint compiler too)', () => {
    expect(compiled.objects.map((o) => o.obj.kind)).toContain('HTTPRoute');
    expect(compiled.objects).toHaveLength(23);
    expect(compiled.objects[0]?.loc).toEqual({ file: 'mesh.yaml', document: 1, line: 3 });
  });

  it('an enrolled pod becomes an HBONE workload with identity, canonical labels, locality', () => {
    expect(state.findWorkloadByUid('Kubernetes//Pod/shop/frontend-0')).toEqual({
      uid: 'Kubernetes//Pod/shop/frontend-0',
      name: 'frontend-0',
      namespace: 'shop',
      serviceAccount: 'frontend',
      trustDomain: 'cluster.local',
      workloadIps: ['127.0.1.1'],
      network: '',
      node: 'node-a',
      protocol: 'HBONE',
      nativeTunnel: false,
      services: { 'shop/frontend.shop.svc.cluster.local': { 80: 8080 } },
      status: 'Healthy',
      canonicalName: 'frontend',
      canonicalRevision: 'v1',
      workloadName: 'frontend',
      workloadType: 'pod',
      locality: { region: 'eu', zone: 'eu-1', subzone: '' },
      capacity: 1,
      clusterId: 'Kubernetes',
      authorizationPolicies: [],
    });
  });

  it.each([
    ['shop/batch-0', 'TCP', false, 'opted out with istio.io/dataplane-mode: none'],
    ['legacy/db-0', 'TCP', false, 'namespace not enrolled'],
    ['payments/ledger-0', 'HBONE', false, 'enrolled namespace'],
    ['shop/waypoint-7f9c', 'HBONE', true, 'waypoint instance terminates HBONE itself'],
  ])('%s: protocol %s, nativeTunnel %s (%s)', (id, protocol, native) => {
    const w = state.findWorkloadByUid(`Kubernetes//Pod/${id}`);
    expect(w?.protocol).toBe(protocol);
    expect(w?.nativeTunnel).toBe(native);
  });

  it('canonical name/revision from app.kubernetes.io labels; serviceAccount default', () => {
    const ledger = state.findWorkloadByIp('127.0.1.30');
    expect([ledger?.canonicalName, ledger?.canonicalRevision, ledger?.workloadName]).toEqual([
      'ledger',
      '2.1',
      'ledger',
    ]);
    const db = state.findWorkloadByIp('127.0.2.20');
    expect([db?.serviceAccount, db?.canonicalRevision]).toEqual(['default', 'latest']);
    expect(state.findWorkloadByIp('127.0.2.9')?.workloadName).toBe('waypoint-7f9c');
  });

  it('Ready=False → Unhealthy', () => {
    expect(state.findWorkloadByIp('127.0.2.2')?.status).toBe('Unhealthy');
    expect(state.findWorkloadByIp('127.0.1.2')?.status).toBe('Healthy');
  });

  it('named targetPort resolved per pod; a pod without the name is excluded for that port only', () => {
    const key = 'shop/backend.shop.svc.cluster.local';
    expect(state.findWorkloadByIp('127.0.1.2')?.services[key]).toEqual({ 80: 9080, 9090: 9090 });
    expect(state.findWorkloadByIp('127.0.2.2')?.services[key]).toEqual({ 80: 9081, 9090: 9090 });
    expect(state.findWorkloadByIp('127.0.2.3')?.services[key]).toEqual({ 9090: 9090 });
    const backend = state.findServiceByKey(key)!;
    expect(backend.ports).toEqual({ 80: 0, 9090: 9090 });
    expect(backend.appProtocols).toEqual({ 80: 'HTTP11', 9090: 'GRPC' });
    expect(state.findEndpoints(backend, 80).map((e) => `${e.workload.name}:${e.targetPort}`)).toEqual([
      'backend-0:9080',
    ]);
    expect(compiled.warnings.map(formatWarning)).toContainEqual(
      expect.stringMatching(
        /Service shop\/backend: spec\.ports\[0\]\.targetPort: "http" is not a container port of Pod shop\/backend-2/,
      ),
    );
  });

  it('use-waypoint: namespace label, Service label wins, none opts out, cross-namespace', () => {
    const svc = (ns: string, n: string) => state.findServiceByKey(`${ns}/${n}.${ns}.svc.cluster.local`);
    expect(svc('shop', 'frontend')?.waypoint).toEqual(wp('shop', 'waypoint'));
    expect(svc('shop', 'reviews')?.waypoint).toEqual(wp('shop', 'reviews-wp'));
    expect(svc('shop', 'backend')?.waypoint).toBeUndefined();
    expect(svc('payments', 'ledger')?.waypoint).toEqual(wp('shop', 'waypoint'));
    expect(svc('payments', 'ledger')?.vips).toEqual([]);
    expect(svc('legacy', 'db')?.waypoint).toBeUndefined();
    expect(svc('legacy', 'db')?.vips).toEqual([{ network: '', address: '127.10.0.3' }]);
  });

  it('waypoint Services are synthesized, never get a waypoint, and have the instance pods as endpoints', () => {
    const waypoint = state.findServiceByKey('shop/waypoint.shop.svc.cluster.local')!;
    expect(waypoint).toMatchObject({ name: 'waypoint', vips: [], ports: { 15008: 15008 } });
    expect(waypoint.waypoint).toBeUndefined();
    const resolved = state.findWaypoint(wp('shop', 'waypoint') as never);
    expect(resolved?.endpoints.map((e) => [e.workload.name, e.targetPort])).toEqual([
      ['waypoint-7f9c', 15008],
    ]);
    expect(state.findWaypoint(wp('shop', 'reviews-wp') as never)?.endpoints).toEqual([]);
  });

  it('selector policy attached to the selected pods only', () => {
    expect(state.findWorkloadByIp('127.0.1.2')?.authorizationPolicies).toEqual([
      'shop/backend-from-frontend',
    ]);
    expect(state.findWorkloadByIp('127.0.1.1')?.authorizationPolicies).toEqual([]);
    expect(state.findPolicy('shop/backend-from-frontend')?.scope).toBe('WorkloadSelector');
  });

  it('pods default to no workload waypoint (waypoints serve service traffic by default)', () => {
    expect(state.findWorkloadByIp('127.0.1.1')?.waypoint).toBeUndefined();
  });

  it('warns about controllers and names the fix', () => {
    expect(compiled.warnings.map(formatWarning)).toContainEqual(
      expect.stringMatching(/Deployment shop\/frontend: kind: meshd local mode reads Pods, not controllers/),
    );
    expect(compiled.warnings.some((w) => w.object.startsWith('HTTPRoute'))).toBe(false);
  });

  it('local captured workloads per node', () => {
    expect(state.findLocalWorkloads('node-a').map((w) => w.name)).toEqual([
      'frontend-0',
      'backend-0',
      'ledger-0',
    ]);
    expect(state.findLocalWorkloads('node-b').map((w) => w.name)).toEqual(['backend-1', 'backend-2']);
  });
});

describe('compile options and workload waypoints', () => {
  const base = `
apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 10.0.0.1}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: ns, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: wp}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: ns, labels: {istio.io/waypoint-for: all}}
spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns}
spec: {nodeName: n1}
status: {podIP: 10.1.0.1}
`;

  it('trust domain, cluster domain and cluster id', () => {
    const { state } = compileYaml(base, 'x.yaml', {
      trustDomain: 'example.org',
      clusterDomain: 'corp',
      clusterId: 'c1',
    });
    const w = state.findWorkloadByUid('c1//Pod/ns/p');
    expect(w?.trustDomain).toBe('example.org');
    expect(w?.clusterId).toBe('c1');
    expect(w?.waypoint).toEqual({
      destination: { kind: 'hostname', namespace: 'ns', hostname: 'wp.ns.svc.corp' },
      hboneMtlsPort: 15008,
    });
  });
});
