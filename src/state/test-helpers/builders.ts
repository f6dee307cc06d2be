/**
 * Builders of model objects for tests: a healthy HBONE pod Workload and a public Service with
 * Istio's defaults, so a test states only what it is about (through `over`).
 */
import type { Service, Workload } from '../model.js';

export function testWorkload(
  name: string,
  namespace: string,
  ip: string | string[],
  over: Partial<Workload> = {},
): Workload {
  return {
    uid: `Kubernetes//Pod/${namespace}/${name}`,
    name,
    namespace,
    serviceAccount: 'default',
    trustDomain: 'cluster.local',
    workloadIps: Array.isArray(ip) ? ip : [ip],
    network: '',
    node: 'node-a',
    protocol: 'HBONE',
    nativeTunnel: false,
    services: {},
    status: 'Healthy',
    canonicalName: name,
    canonicalRevision: 'latest',
    workloadName: name,
    workloadType: 'pod',
    locality: { region: '', zone: '', subzone: '' },
    capacity: 1,
    clusterId: 'Kubernetes',
    authorizationPolicies: [],
    ...over,
  };
}

/** `ports` maps service port → target port (0: the target port is named per workload). */
export function testService(
  name: string,
  namespace: string,
  vip: string | undefined,
  ports: Record<number, number>,
  over: Partial<Service> = {},
): Service {
  return {
    name,
    namespace,
    hostname: `${name}.${namespace}.svc.cluster.local`,
    vips: vip ? [{ network: '', address: vip }] : [],
    ports,
    appProtocols: {},
    subjectAltNames: [],
    visibility: 'Public',
    canonical: false,
    ...over,
  };
}
