/**
 * UpstreamConnections: the waypoint's connections to backend endpoints, one HTTP/1.1 agent and
 * one HTTP/2 session per endpoint, opened through the injected connector.
 *
 * Invariants:
 * - one transport per (endpoint, identities, protocol, connection limits); when a DestinationRule changes
 *   the limits, the old transport finishes its requests and closes;
 * - `retain` closes the transports of endpoints that left every Service, so nothing is kept for
 *   pods that are gone;
 * - after close()/destroy() no new connection is opened.
 */
import type { Duplex } from 'node:stream';
import { UNLIMITED } from './circuit-breaker.js';
import type { DestinationPolicy } from './destination-policy.js';
import type { RequestBody } from './request-body.js';
import { Http1Upstream } from './upstream-http1.js';
import { Http2Upstream } from './upstream-http2.js';
import type {
  Attempt,
  UpstreamConnector,
  UpstreamEndpoint,
  UpstreamLimits,
  UpstreamRequestSpec,
  UpstreamTransport,
} from './upstream-types.js';
import { connectWithin } from './upstream-types.js';

const limitsCache = new WeakMap<DestinationPolicy, { limits: UpstreamLimits; key: string }>();

/** The limits of a policy and their identity key, computed once per (immutable) policy. */
function findLimits(policy: DestinationPolicy): { limits: UpstreamLimits; key: string } {
  let hit = limitsCache.get(policy);
  if (!hit) {
    const limits = buildUpstreamLimits(policy);
    hit = { limits, key: JSON.stringify(limits) };
    limitsCache.set(policy, hit);
  }
  return hit;
}

export function buildUpstreamLimits(policy: DestinationPolicy): UpstreamLimits {
  const max = policy.limits.maxConnections;
  return {
    maxConnections: max >= UNLIMITED ? Infinity : max,
    maxRequestsPerConnection: policy.maxRequestsPerConnection,
    connectTimeoutMs: policy.connectTimeoutMs,
    idleTimeoutMs: policy.idleTimeoutMs,
  };
}

interface Entry {
  transport: UpstreamTransport;
  endpointKey: string;
  limitsKey: string;
}

export class UpstreamConnections {
  private readonly transports = new Map<string, Entry>();
  private closed = false;

  constructor(private readonly connector: UpstreamConnector) {}

  send(
    endpoint: UpstreamEndpoint,
    spec: UpstreamRequestSpec,
    body: RequestBody,
    policy: DestinationPolicy,
  ): Attempt {
    return this.transportFor(endpoint, spec.protocol, findLimits(policy)).send(spec, body);
  }

  /** A raw connection to `endpoint` (L4 passthrough), bounded by the policy's connect timeout. */
  open(endpoint: UpstreamEndpoint, policy: DestinationPolicy): Promise<Duplex> {
    if (this.closed) return Promise.reject(new Error('the waypoint is shutting down'));
    return connectWithin(this.connector, endpoint, policy.connectTimeoutMs);
  }

  /** Close the transports of endpoints not in `keep` (keys `ip:port`). */
  retain(keep: ReadonlySet<string>): void {
    for (const [key, entry] of this.transports) {
      if (keep.has(entry.endpointKey)) continue;
      entry.transport.close();
      this.transports.delete(key);
    }
  }

  get size(): number {
    return this.transports.size;
  }

  /** Stop pooling: idle connections close now, busy ones when their request ends. */
  close(): void {
    this.closed = true;
    for (const e of this.transports.values()) e.transport.close();
    this.transports.clear();
  }

  destroy(): void {
    this.closed = true;
    for (const e of this.transports.values()) e.transport.destroy();
    this.transports.clear();
  }

  private transportFor(
    endpoint: UpstreamEndpoint,
    protocol: 'http1' | 'http2',
    { limits, key: limitsKey }: { limits: UpstreamLimits; key: string },
  ): UpstreamTransport {
    // The identities are part of the key: a new pod behind a reused IP gets new connections.
    const key = `${endpoint.key}|${protocol}|${endpoint.identities.join(',')}`;
    const existing = this.transports.get(key);
    if (existing && existing.limitsKey === limitsKey) return existing.transport;
    existing?.transport.close();
    const open = () =>
      this.closed
        ? Promise.reject(new Error('the waypoint is shutting down'))
        : connectWithin(this.connector, endpoint, limits.connectTimeoutMs);
    const transport =
      protocol === 'http1' ? new Http1Upstream(open, limits) : new Http2Upstream(open, limits);
    this.transports.set(key, { transport, endpointKey: endpoint.key, limitsKey });
    return transport;
  }
}
