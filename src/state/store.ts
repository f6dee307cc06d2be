/**
 * MeshState: one immutable snapshot of workloads, services and authorization policies, with the
 * indexes ztunnel's hot path needs and synchronous find* lookups over them.
 *
 * Invariants:
 * - A snapshot never changes after build(); a config change builds a new one and swaps it, so a
 *   connection that captured a snapshot sees one consistent view.
 * - Every index is derived from the three input lists and nothing else; IPs are keyed in
 *   canonical form (see ip.ts), hostnames in lower case.
 * - Workload uids, service keys (`ns/hostname`) and policy keys (`ns/name`) are unique: build()
 *   throws a MeshError on a duplicate rather than letting one silently shadow the other.
 * - Lookups never throw for unknown input; they return undefined or an empty list.
 */
import { MeshError } from '../errors.js';
import { canonicalIp } from './ip.js';
import {
  isCaptured,
  policyKey,
  serviceKey,
  type Authorization,
  type GatewayAddress,
  type Service,
  type Workload,
} from './model.js';

export interface MeshStateInput {
  workloads?: readonly Workload[];
  services?: readonly Service[];
  policies?: readonly Authorization[];
}

export interface MeshStateOptions {
  /** Kubernetes cluster DNS domain, for short-name resolution. Default cluster.local. */
  clusterDomain?: string;
}

/** An endpoint workload of a service port, with the port to dial on it. */
export interface ServiceEndpoint {
  workload: Workload;
  targetPort: number;
}

export interface WaypointResolution {
  /** The waypoint's Service, when the GatewayAddress names (or its IP is the VIP of) one. */
  service?: Service;
  /** Instances to send to, port = the HBONE port on the instance; healthy only. */
  endpoints: readonly ServiceEndpoint[];
  /** Every instance workload, healthy or not, for "is the source this waypoint?" checks. */
  instances: readonly Workload[];
}

export interface FindEndpointsOptions {
  /** Include Unhealthy workloads regardless of the service's health policy. */
  includeUnhealthy?: boolean;
}

const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

function ipKey(network: string, ip: string): string | undefined {
  const c = canonicalIp(ip);
  return c === undefined ? undefined : `${network}/${c}`;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

/** Workload ranking for a shared IP: real pods first, then HBONE (ztunnel's order). */
function workloadRank(w: Workload): number {
  return (w.uid.includes('//Pod/') ? 2 : 0) + (w.protocol === 'HBONE' ? 1 : 0);
}

export class MeshState {
  readonly workloads: readonly Workload[];
  readonly services: readonly Service[];
  readonly policies: readonly Authorization[];
  readonly clusterDomain: string;

  private readonly byUid = new Map<string, Workload>();
  private readonly byIp = new Map<string, Workload[]>();
  private readonly byNode = new Map<string, Workload[]>();
  private readonly serviceByKey = new Map<string, Service>();
  private readonly servicesByVip = new Map<string, Service[]>();
  private readonly servicesByHostname = new Map<string, Service[]>();
  private readonly endpointsByService = new Map<string, Workload[]>();
  private readonly policyByKey = new Map<string, Authorization>();
  /** Namespace-scoped policies by namespace; Global ones under "". */
  private readonly policiesByNamespace = new Map<string, Authorization[]>();

  private constructor(input: MeshStateInput, options: MeshStateOptions) {
    this.workloads = Object.freeze([...(input.workloads ?? [])]);
    this.services = Object.freeze([...(input.services ?? [])]);
    this.policies = Object.freeze([...(input.policies ?? [])]);
    this.clusterDomain = (options.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN).toLowerCase();

    for (const w of this.workloads) {
      if (this.byUid.has(w.uid)) throw duplicate('workload uid', w.uid);
      this.byUid.set(w.uid, w);
      for (const ip of w.workloadIps) {
        const k = ipKey(w.network, ip);
        if (k === undefined) throw badIp(`workload ${w.uid}`, ip);
        push(this.byIp, k, w);
      }
      push(this.byNode, w.node, w);
      for (const svc of Object.keys(w.services)) push(this.endpointsByService, svc, w);
    }
    for (const list of this.byIp.values()) list.sort((a, b) => workloadRank(b) - workloadRank(a));

    for (const s of this.services) {
      const key = serviceKey(s);
      if (this.serviceByKey.has(key)) throw duplicate('service', key);
      this.serviceByKey.set(key, s);
      for (const vip of s.vips) {
        const k = ipKey(vip.network, vip.address);
        if (k === undefined) throw badIp(`service ${key}`, vip.address);
        push(this.servicesByVip, k, s);
      }
      push(this.servicesByHostname, s.hostname.toLowerCase(), s);
    }

    for (const p of this.policies) {
      const key = policyKey(p);
      if (this.policyByKey.has(key)) throw duplicate('authorization policy', key);
      this.policyByKey.set(key, p);
      if (p.scope === 'Namespace') push(this.policiesByNamespace, p.namespace, p);
      else if (p.scope === 'Global') push(this.policiesByNamespace, '', p);
    }
  }

  static build(input: MeshStateInput = {}, options: MeshStateOptions = {}): MeshState {
    return new MeshState(input, options);
  }

  static empty(): MeshState {
    return new MeshState({}, {});
  }

  findWorkloadByUid(uid: string): Workload | undefined {
    return this.byUid.get(uid);
  }

  /** The workload owning an IP on a network; when several share it, ztunnel's ranking decides. */
  findWorkloadByIp(ip: string, network = ''): Workload | undefined {
    const k = ipKey(network, ip);
    return k === undefined ? undefined : this.byIp.get(k)?.[0];
  }

  /** Workloads on a node that this node's ztunnel serves (HBONE, not native-tunnel). */
  findLocalWorkloads(node: string): readonly Workload[] {
    return (this.byNode.get(node) ?? []).filter(isCaptured);
  }

  /** Every workload on a node, captured or not. */
  findWorkloadsOnNode(node: string): readonly Workload[] {
    return this.byNode.get(node) ?? [];
  }

  findServiceByKey(key: string): Service | undefined {
    return this.serviceByKey.get(key);
  }

  /**
   * Services with this VIP, visible to a client in `clientNamespace`, best first: the client's
   * own namespace, then `canonical`, then declaration order.
   */
  findServicesByVip(ip: string, clientNamespace?: string, network = ''): readonly Service[] {
    const k = ipKey(network, ip);
    if (k === undefined) return [];
    return this.preferFor(this.servicesByVip.get(k) ?? [], clientNamespace);
  }

  findServiceByVip(ip: string, clientNamespace?: string, network = ''): Service | undefined {
    return this.findServicesByVip(ip, clientNamespace, network)[0];
  }

  /**
   * Resolve a DNS name the way a pod in `clientNamespace` would (resolv.conf search list
   * `<ns>.svc.<domain> svc.<domain> <domain>`, ndots 5): `name`, `name.ns`, `name.ns.svc` and the
   * FQDN all find the service, the client's own namespace first. A trailing dot means absolute.
   */
  findServiceByHostname(name: string, clientNamespace?: string): Service | undefined {
    let host = name.toLowerCase();
    const absolute = host.endsWith('.');
    if (absolute) host = host.slice(0, -1);
    if (host === '') return undefined;
    const candidates: string[] = [];
    if (absolute) {
      candidates.push(host);
    } else {
      const cd = this.clusterDomain;
      const search = [
        ...(clientNamespace ? [`${clientNamespace.toLowerCase()}.svc.${cd}`] : []),
        `svc.${cd}`,
        cd,
      ].map((suffix) => `${host}.${suffix}`);
      const dots = host.split('.').length - 1;
      if (dots >= 5) candidates.push(host, ...search);
      else candidates.push(...search, host);
    }
    for (const c of candidates) {
      const found = this.preferFor(this.servicesByHostname.get(c) ?? [], clientNamespace)[0];
      if (found) return found;
    }
    return undefined;
  }

  /** Workloads listing this service in their `services` map, in declaration order. */
  findServiceWorkloads(service: Service): readonly Workload[] {
    return this.endpointsByService.get(serviceKey(service)) ?? [];
  }

  /**
   * Endpoints of a service port, each with the port to dial: the workload's own mapping for the
   * service port, else the service's targetPort if non-zero (0 = named port, so a workload
   * without a mapping is skipped). Workloads without an IP are skipped. Unhealthy workloads are
   * skipped unless the service's health policy is AllowAll. Unknown service port → empty.
   */
  findEndpoints(service: Service, servicePort: number, opts: FindEndpointsOptions = {}): ServiceEndpoint[] {
    const svcTarget = service.ports[servicePort];
    if (svcTarget === undefined) return [];
    const allowUnhealthy = opts.includeUnhealthy || service.loadBalancing?.healthPolicy === 'AllowAll';
    const key = serviceKey(service);
    const out: ServiceEndpoint[] = [];
    for (const w of this.endpointsByService.get(key) ?? []) {
      if (w.workloadIps.length === 0) continue;
      if (!allowUnhealthy && w.status !== 'Healthy') continue;
      const mapped = w.services[key]?.[servicePort];
      const targetPort = mapped ?? (svcTarget > 0 ? svcTarget : undefined);
      if (targetPort === undefined || targetPort === 0) continue;
      out.push({ workload: w, targetPort });
    }
    return out;
  }

  /**
   * Resolve a waypoint GatewayAddress to its instances. Hostname form: the Service
   * `namespace/hostname`, port hboneMtlsPort. Address form: a service VIP (its endpoints on
   * hboneMtlsPort) or a workload IP (that workload on hboneMtlsPort). undefined when the address
   * names nothing known.
   */
  findWaypoint(gw: GatewayAddress): WaypointResolution | undefined {
    const port = gw.hboneMtlsPort;
    const d = gw.destination;
    let service: Service | undefined;
    if (d.kind === 'hostname') {
      service = this.serviceByKey.get(`${d.namespace}/${d.hostname}`);
    } else {
      service = this.findServiceByVip(d.ip, undefined, d.network);
      if (!service) {
        const w = this.findWorkloadByIp(d.ip, d.network);
        if (!w) return undefined;
        const endpoints = w.status === 'Healthy' ? [{ workload: w, targetPort: port }] : [];
        return { endpoints, instances: [w] };
      }
    }
    if (!service) return undefined;
    return {
      service,
      endpoints: this.findEndpoints(service, port),
      instances: this.findServiceWorkloads(service),
    };
  }

  findPolicy(key: string): Authorization | undefined {
    return this.policyByKey.get(key);
  }

  /**
   * The policies that apply to a workload, in ztunnel's order: its namespace's, the global ones,
   * then its selector-scoped references (unknown references are skipped).
   */
  findPolicies(workload: Workload): readonly Authorization[] {
    const out: Authorization[] = [
      ...(this.policiesByNamespace.get(workload.namespace) ?? []),
      ...(this.policiesByNamespace.get('') ?? []),
    ];
    for (const key of workload.authorizationPolicies) {
      const p = this.policyByKey.get(key);
      if (p && !out.includes(p)) out.push(p);
    }
    return out;
  }

  private preferFor(list: readonly Service[], clientNamespace: string | undefined): Service[] {
    const visible = list.filter((s) => s.visibility !== 'Namespace' || s.namespace === clientNamespace);
    const score = (s: Service): number =>
      (clientNamespace !== undefined && s.namespace === clientNamespace ? 2 : 0) + (s.canonical ? 1 : 0);
    return visible
      .map((s, i) => ({ s, i }))
      .sort((a, b) => score(b.s) - score(a.s) || a.i - b.i)
      .map((x) => x.s);
  }
}

function duplicate(what: string, key: string): MeshError {
  return new MeshError('MESH_ERR_INVALID_ARGUMENT', `duplicate ${what} "${key}" in the mesh state`, {
    hint: 'each workload uid, service ns/hostname and policy ns/name must be unique',
  });
}

function badIp(owner: string, ip: string): MeshError {
  return new MeshError('MESH_ERR_INVALID_ARGUMENT', `${owner} has an invalid IP "${ip}"`, {
    hint: 'write an IPv4 or IPv6 literal such as 10.0.1.5 or fd00::5',
  });
}
