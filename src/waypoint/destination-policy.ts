/**
 * The traffic policy the waypoint applies to one destination Service (and port): what Istio
 * builds into the waypoint's per-service cluster from a DestinationRule, with Istio's defaults
 * for everything the DestinationRule leaves out.
 */
import type { CircuitBreakerLimits } from './circuit-breaker.js';
import { ISTIO_DEFAULT_LIMITS } from './circuit-breaker.js';
import type { LoadBalancerKind } from './load-balancer.js';
import type { OutlierDetectionSettings } from './outlier.js';
import type { RetryBudgetSettings } from './retry-budget.js';

export interface DestinationPolicy {
  loadBalancer: LoadBalancerKind;
  /** Undefined: no outlier detection (Istio configures none unless the DestinationRule asks). */
  outlierDetection: OutlierDetectionSettings | undefined;
  limits: CircuitBreakerLimits;
  /** 0 = unlimited (Istio default); 1 disables connection reuse. */
  maxRequestsPerConnection: number;
  /** MeshConfig connectTimeout default: 10 s. */
  connectTimeoutMs: number;
  /** Idle upstream connection timeout; Istio's default is 1 h. */
  idleTimeoutMs: number;
  /** Undefined: maxRetries bounds concurrent retries instead. */
  retryBudget: RetryBudgetSettings | undefined;
  /** The DestinationRule this came from, for config dumps and logs. */
  source: { namespace: string; name: string } | undefined;
}

export const ISTIO_DEFAULT_DESTINATION_POLICY: DestinationPolicy = Object.freeze({
  loadBalancer: 'LEAST_REQUEST',
  outlierDetection: undefined,
  limits: ISTIO_DEFAULT_LIMITS,
  maxRequestsPerConnection: 0,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 3_600_000,
  retryBudget: undefined,
  source: undefined,
});
