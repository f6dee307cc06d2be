/**
 * The workload model: the three resource kinds ztunnel consumes, shaped like Istio's
 * istio.workload.Workload, istio.workload.Service and istio.security.Authorization messages
 * (field names in camelCase, enums as strings), so that a later xDS client can fill the same
 * types from istiod.
 *
 * Values of these types are treated as immutable once built: MeshState indexes them and hands out
 * the same objects to every caller.
 */

import { formatSpiffeId } from '../identity/index.js';
import type { IpCidr } from './ip.js';

export type TunnelProtocol = 'HBONE' | 'TCP';
export type WorkloadStatus = 'Healthy' | 'Unhealthy';
/** istio.workload.WorkloadType, lower-case as ztunnel prints it in telemetry. */
export type WorkloadType = 'deployment' | 'cronjob' | 'pod' | 'job';
/** istio.workload.AppProtocol. */
export type AppProtocol = 'UNKNOWN' | 'HTTP11' | 'HTTP2' | 'GRPC' | 'TCP' | 'TLS';

export interface Locality {
  region: string;
  zone: string;
  subzone: string;
}

/** servicePort → targetPort. On a Service, targetPort 0 means "a named port: resolve per workload". */
export type PortMap = Readonly<Record<number, number>>;

export interface Port {
  servicePort: number;
  targetPort: number;
  appProtocol: AppProtocol;
}

export interface NetworkAddress {
  /** "" is the default (local) network. */
  network: string;
  address: string;
}

export type GatewayDestination =
  | { kind: 'hostname'; namespace: string; hostname: string }
  | { kind: 'address'; network: string; ip: string };

/** istio.workload.GatewayAddress: where a waypoint (or network gateway) is reached. */
export interface GatewayAddress {
  destination: GatewayDestination;
  /** The HBONE port of the gateway: 15008, hard-coded by istiod. */
  hboneMtlsPort: number;
}

export interface Workload {
  /** Primary key, e.g. `Kubernetes//Pod/shop/frontend-0`. */
  uid: string;
  name: string;
  namespace: string;
  serviceAccount: string;
  trustDomain: string;
  /** The pod's IPs in canonical form (proto field `addresses`). */
  workloadIps: readonly string[];
  network: string;
  node: string;
  /** HBONE: the workload expects HBONE inbound (enrolled, or a native-tunnel waypoint). */
  protocol: TunnelProtocol;
  /** The workload terminates HBONE itself (a waypoint): ztunnel does not serve it. */
  nativeTunnel: boolean;
  /** Workload-attached waypoint for workload-addressed traffic. */
  waypoint?: GatewayAddress;
  /** `ns/hostname` → {servicePort: targetPort}: makes this workload an endpoint of those services. */
  services: Readonly<Record<string, PortMap>>;
  status: WorkloadStatus;
  canonicalName: string;
  canonicalRevision: string;
  workloadName: string;
  workloadType: WorkloadType;
  locality: Locality;
  /** Relative load-balancing weight; unset in the proto means 1. */
  capacity: number;
  clusterId: string;
  /** `ns/name` keys of the selector-scoped Authorization policies that apply to this workload. */
  authorizationPolicies: readonly string[];
}

export type LoadBalancingScope = 'Region' | 'Zone' | 'Subzone' | 'Node' | 'Cluster' | 'Network';
export type LoadBalancingMode = 'Standard' | 'Strict' | 'Failover' | 'Passthrough';
export type HealthPolicy = 'OnlyHealthy' | 'AllowAll';

export interface LoadBalancing {
  routingPreferences: readonly LoadBalancingScope[];
  mode: LoadBalancingMode;
  healthPolicy: HealthPolicy;
}

export interface Service {
  name: string;
  namespace: string;
  /** FQDN `<name>.<ns>.svc.<clusterDomain>`; `ns/hostname` is the primary key. */
  hostname: string;
  /** Cluster IPs; empty for a headless service. */
  vips: readonly NetworkAddress[];
  /** servicePort → targetPort; 0 = named port, resolved per endpoint workload. */
  ports: PortMap;
  /** servicePort → application protocol. */
  appProtocols: Readonly<Record<number, AppProtocol>>;
  /** Extra acceptable peer identities (SPIFFE URIs) for TLS to this service. */
  subjectAltNames: readonly string[];
  waypoint?: GatewayAddress;
  loadBalancing?: LoadBalancing;
  /** Namespace: only clients in the service's namespace resolve or route to it. */
  visibility: 'Public' | 'Namespace';
  /** Preferred when several services share a VIP or hostname outside the client's namespace. */
  canonical: boolean;
}

export type StringMatch =
  | { kind: 'exact'; value: string }
  | { kind: 'prefix'; value: string }
  | { kind: 'suffix'; value: string }
  | { kind: 'presence' };

export interface ServiceAccountMatch {
  namespace: string;
  serviceAccount: string;
}

/**
 * One istio.security.Match: every populated field must hold (AND), any value within a field (OR),
 * and a not* field holds when none of its values match. A match with no field populated never
 * matches (ztunnel skips it).
 */
export interface RbacMatch {
  namespaces: readonly StringMatch[];
  notNamespaces: readonly StringMatch[];
  principals: readonly StringMatch[];
  notPrincipals: readonly StringMatch[];
  serviceAccounts: readonly ServiceAccountMatch[];
  notServiceAccounts: readonly ServiceAccountMatch[];
  sourceIps: readonly IpCidr[];
  notSourceIps: readonly IpCidr[];
  destinationIps: readonly IpCidr[];
  notDestinationIps: readonly IpCidr[];
  destinationPorts: readonly number[];
  notDestinationPorts: readonly number[];
}

/** A clause matches if any of its matches match; a clause with no matches at all matches. */
export interface AuthorizationClause {
  matches: readonly RbacMatch[];
}

/** A rule matches if all its clauses match; a rule with no clauses matches everything. */
export interface AuthorizationRule {
  clauses: readonly AuthorizationClause[];
}

export type AuthorizationScope = 'Global' | 'Namespace' | 'WorkloadSelector';
export type AuthorizationAction = 'Allow' | 'Deny';

export interface Authorization {
  name: string;
  namespace: string;
  scope: AuthorizationScope;
  action: AuthorizationAction;
  /** A policy with no rules never matches (ALLOW with no rules = allow nothing). */
  rules: readonly AuthorizationRule[];
  dryRun: boolean;
}

/** Name of the DENY policy istiod synthesizes for an effective PeerAuthentication STRICT. */
export const STATIC_STRICT_POLICY_NAME = 'istio_converted_static_strict';

/** Unset capacity means 1, as in the proto's UInt32Value wrapper. */
export const DEFAULT_CAPACITY = 1;

export function rbacMatch(fields: Partial<RbacMatch>): RbacMatch {
  return {
    namespaces: [],
    notNamespaces: [],
    principals: [],
    notPrincipals: [],
    serviceAccounts: [],
    notServiceAccounts: [],
    sourceIps: [],
    notSourceIps: [],
    destinationIps: [],
    notDestinationIps: [],
    destinationPorts: [],
    notDestinationPorts: [],
    ...fields,
  };
}

export function isEmptyMatch(m: RbacMatch): boolean {
  return (
    m.namespaces.length === 0 &&
    m.notNamespaces.length === 0 &&
    m.principals.length === 0 &&
    m.notPrincipals.length === 0 &&
    m.serviceAccounts.length === 0 &&
    m.notServiceAccounts.length === 0 &&
    m.sourceIps.length === 0 &&
    m.notSourceIps.length === 0 &&
    m.destinationIps.length === 0 &&
    m.notDestinationIps.length === 0 &&
    m.destinationPorts.length === 0 &&
    m.notDestinationPorts.length === 0
  );
}

/** The istio.workload key of a service: `ns/hostname`. */
export function serviceKey(s: Pick<Service, 'namespace' | 'hostname'>): string {
  return `${s.namespace}/${s.hostname}`;
}

/** The key policies are referenced by: `ns/name`. */
export function policyKey(p: Pick<Authorization, 'namespace' | 'name'>): string {
  return `${p.namespace}/${p.name}`;
}

/** The workload's SPIFFE identity: spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>. */
export function identityOf(w: Pick<Workload, 'trustDomain' | 'namespace' | 'serviceAccount'>): string {
  return formatSpiffeId({
    trustDomain: w.trustDomain,
    namespace: w.namespace,
    serviceAccount: w.serviceAccount,
  });
}

/** The ztunnel serves this workload (captures its traffic, terminates HBONE for it). */
export function isCaptured(w: Pick<Workload, 'protocol' | 'nativeTunnel'>): boolean {
  return w.protocol === 'HBONE' && !w.nativeTunnel;
}

/** `{exact|prefix|suffix|presence}` against a value; presence means non-empty. */
export function stringMatches(m: StringMatch, value: string): boolean {
  switch (m.kind) {
    case 'exact':
      return value === m.value;
    case 'prefix':
      return value.startsWith(m.value);
    case 'suffix':
      return value.endsWith(m.value);
    case 'presence':
      return value.length > 0;
  }
}

/** Istio's string form: `*` presence, `abc*` prefix, `*abc` suffix, else exact. */
export function parseStringMatch(s: string): StringMatch {
  if (s === '*') return { kind: 'presence' };
  if (s.startsWith('*')) return { kind: 'suffix', value: s.slice(1) };
  if (s.endsWith('*')) return { kind: 'prefix', value: s.slice(0, -1) };
  return { kind: 'exact', value: s };
}

/** The service's ports as a list, in ascending service-port order. */
export function servicePorts(s: Pick<Service, 'ports' | 'appProtocols'>): Port[] {
  return Object.entries(s.ports)
    .map(([sp, tp]) => ({
      servicePort: Number(sp),
      targetPort: tp,
      appProtocol: s.appProtocols[Number(sp)] ?? 'UNKNOWN',
    }))
    .sort((a, b) => a.servicePort - b.servicePort);
}
