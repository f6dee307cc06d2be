/**
 * Istio's HTTP request metrics as a waypoint reports them. Istio waypoints label their metrics
 * `reporter="waypoint"` (not source/destination; see istio/istio#51313): the source is the
 * calling workload, the destination the backend workload the waypoint sent the request to.
 * Missing values render as `unknown`, as in Istio.
 */
import { Counter, Histogram } from 'prom-client';
import type { Registry } from '../telemetry/index.js';
import type { ResponseFlag } from './response.js';
import { formatResponseFlags } from './response.js';

export const WAYPOINT_REPORTER = 'waypoint';

export const ISTIO_REQUEST_LABEL_NAMES = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_cluster',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;

export type IstioRequestLabels = Record<(typeof ISTIO_REQUEST_LABEL_NAMES)[number], string>;

export interface WorkloadLabels {
  workload?: string;
  namespace?: string;
  canonicalService?: string;
  canonicalRevision?: string;
  principal?: string;
  app?: string;
  version?: string;
  cluster?: string;
}

export interface RequestMetricInput {
  source: WorkloadLabels | undefined;
  /** The backend workload; undefined when the request never reached one (deny, 404, abort). */
  destination: WorkloadLabels | undefined;
  /** The destination Service: FQDN, name, namespace. */
  service: { hostname: string; name: string; namespace: string } | undefined;
  protocol: 'http' | 'grpc';
  responseCode: number;
  grpcStatus: number | undefined;
  responseFlags: readonly ResponseFlag[];
  /** HBONE is always mutual TLS; false only for plaintext clients. */
  mutualTls: boolean;
}

function v(x: string | undefined): string {
  return x === undefined || x === '' ? 'unknown' : x;
}

export function buildRequestMetricLabels(i: RequestMetricInput): IstioRequestLabels {
  const s = i.source ?? {};
  const d = i.destination ?? {};
  return {
    reporter: WAYPOINT_REPORTER,
    source_workload: v(s.workload),
    source_canonical_service: v(s.canonicalService),
    source_canonical_revision: v(s.canonicalRevision),
    source_workload_namespace: v(s.namespace),
    source_principal: v(s.principal),
    source_app: v(s.app),
    source_version: v(s.version),
    source_cluster: v(s.cluster),
    destination_workload: v(d.workload),
    destination_workload_namespace: v(d.namespace),
    destination_principal: v(d.principal),
    destination_app: v(d.app),
    destination_version: v(d.version),
    destination_service: v(i.service?.hostname),
    destination_service_name: v(i.service?.name),
    destination_service_namespace: v(i.service?.namespace),
    destination_canonical_service: v(d.canonicalService),
    destination_canonical_revision: v(d.canonicalRevision),
    destination_cluster: v(d.cluster),
    request_protocol: i.protocol,
    response_code: String(i.responseCode),
    grpc_response_status: i.grpcStatus === undefined ? '' : String(i.grpcStatus),
    response_flags: formatResponseFlags(i.responseFlags),
    connection_security_policy: i.mutualTls ? 'mutual_tls' : 'none',
  };
}

/** Istio's default buckets for istio_request_duration_milliseconds. */
export const ISTIO_DURATION_BUCKETS_MS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];

export interface WaypointRequestMetrics {
  requests: Counter<(typeof ISTIO_REQUEST_LABEL_NAMES)[number]>;
  duration: Histogram<(typeof ISTIO_REQUEST_LABEL_NAMES)[number]>;
}

/** Registers the two metrics on an injected registry (never the global one). */
export function createWaypointRequestMetrics(registry: Registry): WaypointRequestMetrics {
  return {
    requests: new Counter({
      name: 'istio_requests_total',
      help: 'Total requests handled by the waypoint',
      labelNames: ISTIO_REQUEST_LABEL_NAMES,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'istio_request_duration_milliseconds',
      help: 'Request duration in milliseconds',
      labelNames: ISTIO_REQUEST_LABEL_NAMES,
      buckets: ISTIO_DURATION_BUCKETS_MS,
      registers: [registry],
    }),
  };
}

export function recordRequest(
  m: WaypointRequestMetrics,
  labels: IstioRequestLabels,
  durationMs: number,
): void {
  m.requests.inc(labels);
  m.duration.observe(labels, durationMs);
}
