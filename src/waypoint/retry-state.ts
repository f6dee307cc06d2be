/**
 * RetryState: the retry bookkeeping of one request (Envoy RetryStateImpl).
 *
 * Invariants:
 * - `attempts` counts attempts started (the first one included); retries = attempts − 1 never
 *   exceeds policy.numRetries;
 * - `triedHosts` holds every host an attempt went to, for the previous_hosts predicate;
 * - a retry is granted only if the outcome is retriable, a retry is left, and the cluster's
 *   retry breaker (max retries or retry budget) has a slot; a granted retry holds that slot until
 *   the caller releases it when the retry attempt ends.
 */
import type { CircuitBreaker } from './circuit-breaker.js';
import type { Random } from './random.js';
import type { AttemptOutcome, RetryPolicy } from './retry-policy.js';
import { buildRetryBackoffMs, isRetriable } from './retry-policy.js';
import type { ResponseFlag } from './response.js';
import type { RouteTimeouts } from './route-types.js';

export type RetryDecision =
  | {
      retry: true;
      backoffMs: number;
      /** Returns the retry slot to the breaker or budget; call when the retry attempt ends. */
      releaseRetry: () => void;
    }
  | {
      retry: false;
      /** final-response: a response the policy does not retry (forward it as is). */
      reason: 'final-response' | 'not-retriable' | 'limit-exceeded' | 'retry-overflow';
      /** URX when a retriable outcome ran out of retries (Envoy UpstreamRetryLimitExceeded). */
      responseFlags: readonly ResponseFlag[];
    };

export class RetryState {
  private attemptCount = 0;
  private readonly tried = new Set<string>();

  constructor(
    readonly policy: RetryPolicy,
    private readonly method: string,
    private readonly random: Random,
  ) {}

  get attempts(): number {
    return this.attemptCount;
  }

  get triedHosts(): ReadonlySet<string> {
    return this.tried;
  }

  /** Call when an attempt is sent to `host`. */
  beginAttempt(host: string): void {
    this.attemptCount++;
    this.tried.add(host);
  }

  /**
   * Decide after an attempt ended with `outcome`. The retry slot is taken last from `breaker`
   * (the cluster's circuit breaker: max retries or the retry budget), only when a retry would
   * otherwise happen; a refused slot ends the retries without a flag, as Envoy's retry overflow.
   */
  decide(outcome: AttemptOutcome, breaker?: Pick<CircuitBreaker, 'tryAcquire'>): RetryDecision {
    if (!isRetriable(outcome, this.policy, this.method)) {
      return {
        retry: false,
        reason: outcome.kind === 'response' ? 'final-response' : 'not-retriable',
        responseFlags: [],
      };
    }
    const retriesDone = Math.max(0, this.attemptCount - 1);
    if (retriesDone >= this.policy.numRetries) {
      return {
        retry: false,
        reason: 'limit-exceeded',
        responseFlags: this.policy.numRetries > 0 ? ['URX'] : [],
      };
    }
    const grant = breaker?.tryAcquire('retry');
    if (grant && !grant.ok) return { retry: false, reason: 'retry-overflow', responseFlags: [] };
    return {
      retry: true,
      backoffMs: buildRetryBackoffMs(retriesDone + 1, this.policy, this.random),
      releaseRetry: grant ? grant.release : () => undefined,
    };
  }
}

/**
 * The timeout for the next attempt, `elapsedMs` after the request started: the per-try timeout
 * bounded by what is left of the route timeout (Envoy: the route timeout covers every attempt and
 * backoff). Undefined means no timeout; 0 means the route timeout is spent (answer 504 UT).
 */
export function buildAttemptTimeoutMs(timeouts: RouteTimeouts, elapsedMs: number): number | undefined {
  const left = timeouts.requestMs === undefined ? undefined : Math.max(0, timeouts.requestMs - elapsedMs);
  if (timeouts.perTryMs === undefined) return left;
  return left === undefined ? timeouts.perTryMs : Math.min(timeouts.perTryMs, left);
}
