/**
 * RetryBudget: Envoy's cluster retry budget (DestinationRule trafficPolicy.retryBudget).
 *
 * Invariants:
 * - at most max(minRetryConcurrency, percent% of the active and pending requests) retries are in
 *   flight at once; `active` never goes below 0;
 * - a slot is taken by tryAcquire and returned by release, once per granted retry.
 */

/** Envoy's and Istio's defaults: 20 % of outstanding requests, but never fewer than 3 retries. */
export const DEFAULT_RETRY_BUDGET_PERCENT = 20;
export const DEFAULT_MIN_RETRY_CONCURRENCY = 3;

export interface RetryBudgetSettings {
  percent: number;
  minRetryConcurrency: number;
}

export class RetryBudget {
  private inFlight = 0;

  constructor(
    readonly settings: RetryBudgetSettings = {
      percent: DEFAULT_RETRY_BUDGET_PERCENT,
      minRetryConcurrency: DEFAULT_MIN_RETRY_CONCURRENCY,
    },
  ) {}

  /** Concurrent retries allowed while `outstandingRequests` (active + pending) are in flight. */
  limit(outstandingRequests: number): number {
    const byPercent = Math.floor((this.settings.percent / 100) * Math.max(0, outstandingRequests));
    return Math.max(this.settings.minRetryConcurrency, byPercent);
  }

  get active(): number {
    return this.inFlight;
  }

  tryAcquire(outstandingRequests: number): boolean {
    if (this.inFlight >= this.limit(outstandingRequests)) return false;
    this.inFlight++;
    return true;
  }

  release(): void {
    if (this.inFlight > 0) this.inFlight--;
  }
}
