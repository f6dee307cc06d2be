/**
 * Intermediate records shared by the per-kind compilers. One Compilation lives for one compile
 * call: the compilers fill it in a fixed order (nodes, namespaces, waypoints, pods, services,
 * authorization, peer authentication) and the last step turns it into Workload/Service/
 * Authorization values.
 */
import type { Authorization, GatewayAddress, Service } from '../state/index.js';
import type { Diagnostics, ObjectContext } from './fields.js';

export interface CompileOptions {
  /** SPIFFE trust domain of workload identities. Istio's default: cluster.local. */
  trustDomain?: string;
  /** Kubernetes DNS domain for service hostnames. Kubernetes' default: cluster.local. */
  clusterDomain?: string;
  /** Cluster id in workload uids and telemetry. istiod's default: Kubernetes. */
  clusterId?: string;
  /** Istio root namespace: policies here without a selector are mesh-wide. Default istio-system. */
  rootNamespace?: string;
}

export type ResolvedOptions = Required<CompileOptions>;

export const DEFAULT_COMPILE_OPTIONS: Readonly<ResolvedOptions> = Object.freeze({
  trustDomain: 'cluster.local',
  clusterDomain: 'cluster.local',
  clusterId: 'Kubernetes',
  rootNamespace: 'istio-system',
});

export interface NodeInfo {
  name: string;
  /** status.addresses InternalIP: where the node's daemon ports listen in local mode. */
  address: string;
  labels: Readonly<Record<string, string>>;
}

export interface NamespaceInfo {
  ctx: ObjectContext | undefined;
  labels: Record<string, string>;
  enrolled: boolean;
}

export type WaypointFor = 'service' | 'workload' | 'all' | 'none';

export interface WaypointGateway {
  ctx: ObjectContext;
  name: string;
  namespace: string;
  /** `<name>.<ns>.svc.<clusterDomain>`: the waypoint Service's hostname. */
  hostname: string;
  waypointFor: WaypointFor;
  /** The HBONE listener's allowedRoutes.namespaces. */
  allowedFrom: 'Same' | 'All' | 'Selector';
  allowedSelector: Record<string, string>;
}

export interface PodInfo {
  ctx: ObjectContext;
  uid: string;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  node: string;
  serviceAccount: string;
  ips: string[];
  healthy: boolean;
  /** Container port name → number, for named targetPorts. */
  namedPorts: Map<string, number>;
  enrolled: boolean;
  /** Set when the pod is an instance of a waypoint Gateway ("ns/name"). */
  waypointInstanceOf?: string;
  /** Filled by the service compiler. */
  services: Record<string, Record<number, number>>;
  /** Filled by the authorization compilers. */
  policies: string[];
  waypoint?: GatewayAddress;
}

export interface Compilation extends Diagnostics {
  opts: ResolvedOptions;
  nodes: Map<string, NodeInfo>;
  namespaces: Map<string, NamespaceInfo>;
  /** Waypoint Gateways by "ns/name". */
  waypoints: Map<string, WaypointGateway>;
  pods: PodInfo[];
  services: Service[];
  policies: Authorization[];
  /** IP → owner description, for duplicate-address errors. */
  ipOwners: Map<string, string>;
}

export function waypointAddress(gw: Pick<WaypointGateway, 'namespace' | 'hostname'>): GatewayAddress {
  return {
    destination: { kind: 'hostname', namespace: gw.namespace, hostname: gw.hostname },
    hboneMtlsPort: 15008,
  };
}
