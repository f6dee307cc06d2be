/**
 * Per-request telemetry of the waypoint: the Istio request metrics and one access-log line,
 * both written exactly once when the request ends (answered, failed or abandoned by the client).
 * The access-log line uses the ztunnel's dotted field names where they mean the same thing, plus
 * Envoy's request fields (method, path, response code, flags, details, upstream host).
 */
import type { Logger } from '../telemetry/index.js';
import type { MeshState, Workload } from '../state/index.js';
import { identityOf } from '../state/index.js';
import type { RequestClient } from './http-types.js';
import type { WaypointRequestMetrics, WorkloadLabels } from './metrics.js';
import { buildRequestMetricLabels, recordRequest } from './metrics.js';
import type { ResponseFlag } from './response.js';
import { formatResponseFlags } from './response.js';

export interface RequestRecord {
  connectionId: string;
  requestId: string;
  traceId: string;
  protocol: 'http1' | 'http2';
  method: string;
  /** As the client sent it. */
  path: string;
  authority: string;
  client: RequestClient;
  /** The destination Service of the request (the backend when routed elsewhere). */
  service: { hostname: string; name: string; namespace: string } | undefined;
  grpc: boolean;
  responseCode: number;
  grpcStatus: number | undefined;
  responseFlags: ResponseFlag[];
  details: string;
  route: string | undefined;
  upstreamHost: string | undefined;
  upstreamWorkload: Workload | undefined;
  attempts: number;
  bytesReceived: number;
  bytesSent: number;
  durationMs: number;
}

const sourceCache = new WeakMap<MeshState, Map<string, Workload | null>>();

/**
 * The client's workload: the workload at its IP whose identity is the tunnel's peer identity.
 * Cached per (immutable) state, since every request of a connection asks the same question.
 */
export function findSourceWorkload(state: MeshState, client: RequestClient): Workload | undefined {
  let cache = sourceCache.get(state);
  if (!cache) {
    cache = new Map();
    sourceCache.set(state, cache);
  }
  const key = `${client.ip} ${client.identity ?? ''}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit ?? undefined;
  const w = state.findWorkloadByIp(client.ip);
  const found = w && (client.identity === undefined || identityOf(w) === client.identity) ? w : undefined;
  if (cache.size > 10_000) cache.clear();
  cache.set(key, found ?? null);
  return found;
}

export function workloadLabels(w: Workload | undefined, principal: string | undefined): WorkloadLabels {
  if (!w) return { principal };
  return {
    workload: w.workloadName,
    namespace: w.namespace,
    canonicalService: w.canonicalName,
    canonicalRevision: w.canonicalRevision,
    principal: principal ?? identityOf(w),
    app: w.canonicalName,
    version: w.canonicalRevision,
    cluster: w.clusterId,
  };
}

export function recordRequestEnd(
  state: MeshState,
  metrics: WaypointRequestMetrics,
  log: Logger,
  r: RequestRecord,
): void {
  const source = findSourceWorkload(state, r.client);
  const dst = r.upstreamWorkload;
  const labels = buildRequestMetricLabels({
    source: workloadLabels(source, r.client.identity),
    destination: dst ? workloadLabels(dst, undefined) : undefined,
    service: r.service,
    protocol: r.grpc ? 'grpc' : 'http',
    responseCode: r.responseCode,
    grpcStatus: r.grpcStatus,
    responseFlags: r.responseFlags,
    mutualTls: r.client.identity !== undefined,
  });
  recordRequest(metrics, labels, r.durationMs);
  if (!log.isLevelEnabled('info')) return;
  const fields: Record<string, unknown> = {
    scope: 'access',
    'conn.id': r.connectionId,
    'request.id': r.requestId,
    'trace.id': r.traceId,
    protocol: r.protocol === 'http2' ? 'HTTP/2' : 'HTTP/1.1',
    method: r.method,
    path: r.path,
    authority: r.authority,
    'src.addr': r.client.ip,
    'src.workload': source?.name,
    'src.namespace': source?.namespace,
    'src.identity': r.client.identity,
    'dst.service': r.service?.hostname,
    'dst.workload': dst?.name,
    'dst.namespace': dst?.namespace,
    'dst.identity': dst ? identityOf(dst) : undefined,
    'upstream.host': r.upstreamHost,
    route: r.route,
    response_code: r.responseCode,
    grpc_status: r.grpcStatus,
    response_flags: formatResponseFlags(r.responseFlags),
    response_code_details: r.details,
    attempts: r.attempts,
    bytes_received: r.bytesReceived,
    bytes_sent: r.bytesSent,
    duration: `${Math.round(r.durationMs)}ms`,
  };
  for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
  log.info(fields, 'request complete');
}
