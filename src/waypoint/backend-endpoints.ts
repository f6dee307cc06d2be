/**
 * The endpoints of a backend Service port as upstream hosts, resolved once per config view and
 * cached for it: `ip:targetPort` keys for the UpstreamCluster, and what the connector needs to
 * reach each one (its IP, port and the identities it may present).
 *
 * Invariant: a cache entry is derived only from the view it is stored under (views are immutable).
 */
import { identityOf } from '../state/index.js';
import type { BackendService } from './http-types.js';
import type { UpstreamCluster, UpstreamClusterSet } from './upstream-cluster.js';
import type { UpstreamEndpoint } from './upstream-types.js';
import type { WaypointView } from './view.js';

export interface BackendEndpoints {
  keys: string[];
  byKey: ReadonlyMap<string, UpstreamEndpoint>;
}

const EMPTY: BackendEndpoints = { keys: [], byKey: new Map() };
const cache = new WeakMap<WaypointView, Map<string, BackendEndpoints>>();

export function findBackendEndpoints(
  view: WaypointView,
  backend: { namespace: string; hostname: string; port: number; workloadIp?: string },
): BackendEndpoints {
  let perView = cache.get(view);
  if (!perView) {
    perView = new Map();
    cache.set(view, perView);
  }
  const key = `${backend.namespace}/${backend.hostname}:${backend.port}`;
  const hit = perView.get(key);
  if (hit) return hit;
  if (backend.workloadIp !== undefined) {
    const result = findWorkloadEndpoint(view, backend.workloadIp, backend.port);
    perView.set(key, result);
    return result;
  }
  const svc = view.state.findServiceByKey(`${backend.namespace}/${backend.hostname}`);
  if (!svc) {
    perView.set(key, EMPTY);
    return EMPTY;
  }
  const byKey = new Map<string, UpstreamEndpoint>();
  for (const ep of view.state.findEndpoints(svc, backend.port)) {
    const ip = ep.workload.workloadIps[0];
    if (ip === undefined) continue;
    const k = ip.includes(':') ? `[${ip}]:${ep.targetPort}` : `${ip}:${ep.targetPort}`;
    byKey.set(k, {
      key: k,
      ip,
      port: ep.targetPort,
      identities: [...new Set([identityOf(ep.workload), ...svc.subjectAltNames])],
      workload: ep.workload,
    });
  }
  const result = { keys: [...byKey.keys()], byKey };
  perView.set(key, result);
  return result;
}

/** Workload-addressed traffic: the one pod at `ip`, on the port the client dialled. */
function findWorkloadEndpoint(view: WaypointView, ip: string, port: number): BackendEndpoints {
  const workload = view.state.findWorkloadByIp(ip);
  if (!workload) return EMPTY;
  const k = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
  const ep: UpstreamEndpoint = { key: k, ip, port, identities: [identityOf(workload)], workload };
  return { keys: [k], byKey: new Map([[k, ep]]) };
}

export interface BackendCluster {
  cluster: UpstreamCluster;
  endpoints: BackendEndpoints;
}

/** The cluster of `backend`, with its hosts brought up to date from the view's endpoints. */
export function findBackendCluster(
  clusters: UpstreamClusterSet,
  view: WaypointView,
  backend: BackendService,
): BackendCluster {
  const endpoints = findBackendEndpoints(view, backend);
  const cluster = clusters.clusterFor(view.config, backend);
  cluster.setHosts(endpoints.keys);
  return { cluster, endpoints };
}

/** One endpoint by the cluster's load balancing, or undefined when none is healthy. */
export function chooseBackendEndpoint(b: BackendCluster): UpstreamEndpoint | undefined {
  const choice = b.cluster.chooseHost();
  return choice.ok ? b.endpoints.byKey.get(choice.host) : undefined;
}
