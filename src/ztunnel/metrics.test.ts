import { describe, expect, it } from 'vitest';
import { createRegistry, readMetric } from '../telemetry/index.js';
import { TrafficMetrics, buildTrafficLabels, type TrafficLabelsInput } from './metrics.js';

const client = {
  name: 'frontend-0',
  namespace: 'shop',
  workloadName: 'frontend',
  canonicalName: 'frontend',
  canonicalRevision: 'v1',
  clusterId: 'Kubernetes',
};
const server = {
  name: 'backend-0',
  namespace: 'shop',
  workloadName: 'backend',
  canonicalName: 'backend',
  canonicalRevision: 'v2',
  clusterId: 'Kubernetes',
  locality: { region: 'r1', zone: 'z1' },
};

describe('Istio TCP labels', () => {
  it('fills every label, with unknown for missing values', () => {
    const labels = buildTrafficLabels({ reporter: 'source', source: client, mtls: false });
    expect(Object.keys(labels)).toHaveLength(27);
    expect(labels).toMatchObject({
      reporter: 'source',
      source_workload: 'frontend',
      source_canonical_service: 'frontend',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'shop',
      source_principal: 'unknown',
      destination_service: 'unknown',
      destination_workload: 'unknown',
      destination_principal: 'unknown',
      request_protocol: 'tcp',
      response_flags: '-',
      connection_security_policy: 'unknown',
      source_region: 'unknown',
    });
  });

  it('names the service and both principals for an mTLS connection', () => {
    const labels = buildTrafficLabels(
      {
        reporter: 'destination',
        source: client,
        sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/frontend',
        destination: server,
        destinationPrincipal: 'spiffe://cluster.local/ns/shop/sa/backend',
        destinationService: {
          hostname: 'backend.shop.svc.cluster.local',
          name: 'backend',
          namespace: 'shop',
        },
        mtls: true,
      },
      'DENY',
    );
    expect(labels).toMatchObject({
      reporter: 'destination',
      source_principal: 'spiffe://cluster.local/ns/shop/sa/frontend',
      destination_principal: 'spiffe://cluster.local/ns/shop/sa/backend',
      destination_service: 'backend.shop.svc.cluster.local',
      destination_service_name: 'backend',
      destination_service_namespace: 'shop',
      destination_workload: 'backend',
      destination_version: 'v2',
      destination_region: 'r1',
      destination_zone: 'z1',
      response_flags: 'DENY',
      connection_security_policy: 'mutual_tls',
    });
  });
});

describe('TrafficMetrics', () => {
  it('counts open, close, bytes and failures, and closes once', async () => {
    const registry = createRegistry();
    const m = new TrafficMetrics(registry);
    const input: TrafficLabelsInput = { reporter: 'source', source: client, destination: server, mtls: true };
    const ok = m.recordOpen(input);
    expect(await readMetric(registry, 'istio_tcp_connections_opened_total', { reporter: 'source' })).toBe(1);
    expect(await readMetric(registry, 'istio_tcp_sockets_open', { reporter: 'source' })).toBe(1);
    ok.close({ bytesReceived: 11, bytesSent: 22, responseFlags: '-' });
    ok.close({ bytesReceived: 11, bytesSent: 22, responseFlags: '-' });
    expect(await readMetric(registry, 'istio_tcp_connections_closed_total', { response_flags: '-' })).toBe(1);
    expect(await readMetric(registry, 'istio_tcp_received_bytes_total')).toBe(11);
    expect(await readMetric(registry, 'istio_tcp_sent_bytes_total')).toBe(22);
    expect(await readMetric(registry, 'istio_tcp_sockets_open')).toBe(0);
    expect(await readMetric(registry, 'istio_tcp_connections_failed_total')).toBe(0);
    m.recordOpen(input).close({ bytesReceived: 0, bytesSent: 0, responseFlags: 'CONNECT' });
    expect(
      await readMetric(registry, 'istio_tcp_connections_failed_total', { response_flags: 'CONNECT' }),
    ).toBe(1);
    expect(await readMetric(registry, 'istio_tcp_connections_closed_total')).toBe(2);
  });
});
