/**
 * L4 passthrough: a tunnel whose bytes are not HTTP (a port declared TCP, or first bytes that are
 * not an HTTP request) is authorized with the L4 fields of the waypoint's policies and copied to
 * a least-request endpoint of the Service, through the same connector as HTTP. As Envoy does for
 * TCP, a DENY clause naming HTTP-only fields matches and an ALLOW clause naming them does not.
 *
 * Invariant: exactly one access-log line per tunnel, and the endpoint's active count is released
 * exactly once.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../telemetry/index.js';
import { identityOf } from '../state/index.js';
import { buildAuthzAttributes, evaluateL7Authorization, formatPolicyMatch } from './authz.js';
import { chooseBackendEndpoint, findBackendCluster } from './backend-endpoints.js';
import { buildDefaultBackend, findAuthorizationPolicies, serviceHostname } from './config.js';
import type { InboundContext } from './proxy.js';
import type { Clock } from './random.js';
import type { UpstreamClusterSet } from './upstream-cluster.js';
import type { UpstreamConnections } from './upstream-pool.js';
import { errorText } from './upstream-types.js';
import type { WaypointView } from './view.js';

export interface PassthroughDeps {
  view(): WaypointView;
  clusters: UpstreamClusterSet;
  connections: UpstreamConnections;
  accessLog: Logger;
  clock: Clock;
  /** Copies both directions until both end; resolves with the byte counts. */
  copy(down: Duplex, up: Duplex): Promise<{ bytesUp: number; bytesDown: number; error?: Error }>;
}

export async function proxyTcp(deps: PassthroughDeps, down: Duplex, conn: InboundContext): Promise<void> {
  const started = deps.clock();
  const view = deps.view();
  const svc = conn.service;
  const log = (fields: Record<string, unknown>, error?: string): void => {
    const line = {
      scope: 'access',
      'conn.id': conn.connectionId,
      protocol: 'TCP',
      'src.addr': conn.client.ip,
      'src.identity': conn.client.identity,
      'dst.service': svc.workload ? undefined : serviceHostname(svc, view.config.clusterDomain),
      duration: `${Math.round(deps.clock() - started)}ms`,
      ...fields,
    };
    if (error) deps.accessLog.error({ ...line, error }, 'connection complete');
    else deps.accessLog.info(line, 'connection complete');
  };
  const attrs = buildAuthzAttributes(conn.client, svc, undefined);
  const authz = evaluateL7Authorization(findAuthorizationPolicies(view.config, svc), attrs);
  if (!authz.allowed) {
    down.destroy();
    const why = authz.policy ? formatPolicyMatch(authz.policy) : 'no ALLOW policy matched';
    log({ response_flags: 'DENY' }, `connection denied by authorization policy: ${why}`);
    return;
  }
  const backend = buildDefaultBackend(svc, view.config.clusterDomain);
  const upstream = findBackendCluster(deps.clusters, view, backend);
  const { cluster } = upstream;
  const endpoint = chooseBackendEndpoint(upstream);
  if (!endpoint) {
    down.destroy();
    log(
      { response_flags: 'UH' },
      svc.workload
        ? `pod ${svc.namespace}/${svc.name} (${svc.workload.ip}) is not a known workload`
        : `Service ${svc.namespace}/${svc.name} port ${svc.port} has no healthy endpoint`,
    );
    return;
  }
  const done = cluster.startRequest(endpoint.key);
  let up: Duplex;
  try {
    up = await deps.connections.open(endpoint, cluster.policy);
  } catch (err) {
    done();
    cluster.recordOutcome(endpoint.key, { kind: 'failure', failure: 'connect-failure' });
    down.destroy();
    log({ response_flags: 'UF', 'upstream.host': endpoint.key }, errorText(err));
    return;
  }
  const result = await deps.copy(down, up);
  done();
  const dst = endpoint.workload;
  log(
    {
      'upstream.host': endpoint.key,
      'dst.workload': dst?.name,
      'dst.namespace': dst?.namespace,
      'dst.identity': dst ? identityOf(dst) : undefined,
      bytes_received: result.bytesUp,
      bytes_sent: result.bytesDown,
    },
    result.error?.message,
  );
}
