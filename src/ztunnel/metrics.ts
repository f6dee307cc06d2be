/**
 * Istio's TCP metrics, with the same names and labels as Istio's ztunnel so existing dashboards
 * work: istio_tcp_connections_opened_total, istio_tcp_connections_closed_total,
 * istio_tcp_received_bytes_total (client→server) and istio_tcp_sent_bytes_total (server→client),
 * plus the unstable istio_tcp_connections_failed_total and istio_tcp_sockets_open.
 *
 * Invariants: a connection's label set is computed and bound once when it opens; afterwards the
 * hot path only increments. A missing value is "unknown". Byte counters carry the same meaning
 * for both reporters (received = client→server).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** The workload fields telemetry reads (a structural subset of the state model's Workload). */
export interface TelemetryWorkload {
  name: string;
  namespace: string;
  workloadName?: string;
  canonicalName?: string;
  canonicalRevision?: string;
  clusterId?: string;
  locality?: { region?: string; zone?: string };
}

export interface TelemetryService {
  hostname: string;
  name: string;
  namespace: string;
}

export type Reporter = 'source' | 'destination';

/** ztunnel's response flags. */
export type ResponseFlags =
  | '-'
  | 'DENY'
  | 'CONNECT'
  | 'TLS_FAILURE'
  | 'H2_HANDSHAKE_FAILURE'
  | 'NETWORK_POLICY'
  | 'IDENTITY_ERROR'
  | 'NO_HEALTHY_UPSTREAM'
  | 'NO_WAYPOINT';

export interface TrafficLabelsInput {
  reporter: Reporter;
  source?: TelemetryWorkload;
  /** SPIFFE URI of the source, only when established by mTLS. */
  sourcePrincipal?: string;
  destination?: TelemetryWorkload;
  destinationPrincipal?: string;
  destinationService?: TelemetryService;
  /** True when the connection is carried by mTLS (HBONE). */
  mtls: boolean;
}

const LABELS = [
  'reporter',
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_service',
  'destination_service_namespace',
  'destination_service_name',
  'destination_workload',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
  'source_region',
  'source_zone',
  'destination_region',
  'destination_zone',
] as const;
type Label = (typeof LABELS)[number];
export type TrafficLabels = Record<Label, string>;

const u = (v: string | undefined): string => (v === undefined || v === '' ? 'unknown' : v);

export function buildTrafficLabels(
  input: TrafficLabelsInput,
  responseFlags: ResponseFlags = '-',
): TrafficLabels {
  const s = input.source;
  const d = input.destination;
  const svc = input.destinationService;
  return {
    reporter: input.reporter,
    source_workload: u(s?.workloadName ?? s?.name),
    source_canonical_service: u(s?.canonicalName),
    source_canonical_revision: u(s?.canonicalRevision),
    source_workload_namespace: u(s?.namespace),
    source_principal: u(input.sourcePrincipal),
    source_app: u(s?.canonicalName),
    source_version: u(s?.canonicalRevision),
    source_cluster: u(s?.clusterId),
    destination_service: u(svc?.hostname),
    destination_service_namespace: u(svc?.namespace),
    destination_service_name: u(svc?.name),
    destination_workload: u(d?.workloadName ?? d?.name),
    destination_canonical_service: u(d?.canonicalName),
    destination_canonical_revision: u(d?.canonicalRevision),
    destination_workload_namespace: u(d?.namespace),
    destination_principal: u(input.destinationPrincipal),
    destination_app: u(d?.canonicalName),
    destination_version: u(d?.canonicalRevision),
    destination_cluster: u(d?.clusterId),
    request_protocol: 'tcp',
    response_flags: responseFlags,
    connection_security_policy: input.mtls ? 'mutual_tls' : 'unknown',
    source_region: u(s?.locality?.region),
    source_zone: u(s?.locality?.zone),
    destination_region: u(d?.locality?.region),
    destination_zone: u(d?.locality?.zone),
  };
}

export interface ConnectionOutcome {
  /** Bytes client→server. */
  bytesReceived: number;
  /** Bytes server→client. */
  bytesSent: number;
  responseFlags: ResponseFlags;
}

/** One connection's metrics: opened on creation, closed exactly once. */
export class TrafficRecord {
  private closed = false;

  constructor(
    private readonly metrics: TrafficMetrics,
    private readonly input: TrafficLabelsInput,
  ) {}

  close(outcome: ConnectionOutcome): void {
    if (this.closed) return;
    this.closed = true;
    this.metrics.recordClose(this.input, outcome);
  }
}

export class TrafficMetrics {
  private readonly opened: Counter<Label>;
  private readonly closedTotal: Counter<Label>;
  private readonly received: Counter<Label>;
  private readonly sent: Counter<Label>;
  private readonly failed: Counter<Label>;
  private readonly socketsOpen: Gauge<'reporter'>;

  constructor(registry: Registry) {
    const counter = (name: string, help: string) =>
      new Counter({ name, help, labelNames: LABELS, registers: [registry] });
    this.opened = counter('istio_tcp_connections_opened_total', 'The total number of TCP connections opened');
    this.closedTotal = counter(
      'istio_tcp_connections_closed_total',
      'The total number of TCP connections closed',
    );
    this.received = counter(
      'istio_tcp_received_bytes_total',
      'The size of total bytes received during request in case of a TCP connection',
    );
    this.sent = counter(
      'istio_tcp_sent_bytes_total',
      'The size of total bytes sent during response in case of a TCP connection',
    );
    this.failed = counter(
      'istio_tcp_connections_failed_total',
      'The total number of TCP connections that failed to establish (unstable)',
    );
    this.socketsOpen = new Gauge({
      name: 'istio_tcp_sockets_open',
      help: 'The current number of open TCP sockets (unstable)',
      labelNames: ['reporter'],
      registers: [registry],
    });
  }

  /** Record a connection opening; the returned record closes it. */
  recordOpen(input: TrafficLabelsInput): TrafficRecord {
    this.opened.inc(buildTrafficLabels(input));
    this.socketsOpen.inc({ reporter: input.reporter });
    return new TrafficRecord(this, input);
  }

  /** Called by TrafficRecord.close. */
  recordClose(input: TrafficLabelsInput, outcome: ConnectionOutcome): void {
    const labels = buildTrafficLabels(input, outcome.responseFlags);
    this.closedTotal.inc(labels);
    if (outcome.bytesReceived > 0) this.received.inc(labels, outcome.bytesReceived);
    if (outcome.bytesSent > 0) this.sent.inc(labels, outcome.bytesSent);
    if (outcome.responseFlags !== '-') this.failed.inc(labels);
    this.socketsOpen.dec({ reporter: input.reporter });
  }
}
