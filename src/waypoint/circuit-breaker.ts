/**
 * CircuitBreaker: Envoy's per-cluster resource limits, as DestinationRule.connectionPool sets
 * them. A request that would exceed a limit is refused at once: 503 with response flag UO.
 *
 * - requests: concurrent requests to the service (http.http2MaxRequests);
 * - pending: requests waiting for a connection or stream (http.http1MaxPendingRequests);
 * - connections: upstream connections (tcp.maxConnections);
 * - retries: concurrent retries (http.maxRetries), or the retry budget when one is configured
 *   (Envoy: a budget replaces max_retries).
 * Istio raises every Envoy default (1024/1024/1024/3) to 2^32−1, so out of the box only the retry
 * policy bounds anything.
 *
 * Invariants: each counter equals the number of grants not yet released; a grant's release is
 * idempotent, so a double release never drives a counter below the truth.
 */
import type { RetryBudget } from './retry-budget.js';

/** Istio's value for every circuit-breaker threshold it does not set (math.MaxUint32). */
export const UNLIMITED = 4_294_967_295;

export interface CircuitBreakerLimits {
  maxConnections: number;
  maxPendingRequests: number;
  maxRequests: number;
  maxRetries: number;
}

export const ISTIO_DEFAULT_LIMITS: CircuitBreakerLimits = Object.freeze({
  maxConnections: UNLIMITED,
  maxPendingRequests: UNLIMITED,
  maxRequests: UNLIMITED,
  maxRetries: UNLIMITED,
});

export type CircuitResource = 'request' | 'pending' | 'connection' | 'retry';

export type CircuitGrant =
  { ok: true; release: () => void } | { ok: false; status: 503; responseFlag: 'UO'; reason: string };

export class CircuitBreaker {
  private readonly counts: Record<CircuitResource, number> = {
    request: 0,
    pending: 0,
    connection: 0,
    retry: 0,
  };

  constructor(
    readonly limits: CircuitBreakerLimits = ISTIO_DEFAULT_LIMITS,
    private readonly retryBudget?: RetryBudget,
  ) {}

  get activeRequests(): number {
    return this.counts.request;
  }
  get pendingRequests(): number {
    return this.counts.pending;
  }
  get activeConnections(): number {
    return this.counts.connection;
  }
  get activeRetries(): number {
    return this.retryBudget ? this.retryBudget.active : this.counts.retry;
  }

  tryAcquire(resource: CircuitResource): CircuitGrant {
    if (resource === 'retry' && this.retryBudget) {
      const budget = this.retryBudget;
      const outstanding = this.counts.request + this.counts.pending;
      if (!budget.tryAcquire(outstanding)) {
        return overflow(
          `retry budget exhausted (${budget.active} of ${budget.limit(outstanding)} retries in flight)`,
        );
      }
      return { ok: true, release: once(() => budget.release()) };
    }
    const limit = this.limitOf(resource);
    if (this.counts[resource] >= limit) return overflow(`${resource} limit ${limit} reached`);
    this.counts[resource]++;
    return { ok: true, release: once(() => this.counts[resource]--) };
  }

  private limitOf(resource: CircuitResource): number {
    switch (resource) {
      case 'request':
        return this.limits.maxRequests;
      case 'pending':
        return this.limits.maxPendingRequests;
      case 'connection':
        return this.limits.maxConnections;
      case 'retry':
        return this.limits.maxRetries;
    }
  }
}

function overflow(reason: string): CircuitGrant {
  return { ok: false, status: 503, responseFlag: 'UO', reason };
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
