/**
 * OutlierDetector: Envoy's passive health checking for one upstream service, as Istio configures
 * it from DestinationRule.outlierDetection (only the consecutive-error detectors; Istio disables
 * success-rate ejection).
 *
 * Semantics (Envoy outlier_detection_impl.cc):
 * - errors are counted inline per host: every 5xx bumps the consecutive-5xx counter, a 502/503/504
 *   also bumps the consecutive-gateway counter (another 5xx resets it), any other response resets
 *   both. Without split mode, a connect failure or reset counts as 503 and a timeout as 504; with
 *   `splitExternalLocalOriginErrors` they count against a separate local-origin counter instead;
 * - when a counter reaches its threshold the host is ejected, unless it already is or ejecting it
 *   would take the ejected share above maxEjectionPercent (Envoy ≥ 1.31 and so Istio ≥ 1.23 check
 *   the share *after* ejection and no longer always allow one host; `alwaysEjectOneHost` restores
 *   the old behaviour). The counter is reset either way;
 * - an ejection lasts baseEjectionTime × multiplier (capped at maxEjectionTime); the multiplier
 *   grows by one per ejection and shrinks by one for each full interval the host stays healthy
 *   after its return;
 * - the host returns exactly when its ejection time has elapsed (Envoy returns it at the next
 *   interval tick; meshd has no timer, it checks lazily against the injected clock), and its
 *   counters start again from zero.
 *
 * Invariants: `ejected` holds exactly the hosts whose `ejectedAt` is set; every tracked host is in
 * `hosts`; the ejected count never exceeds the host count.
 */
import type { Clock } from './random.js';
import type { AttemptOutcome } from './retry-policy.js';

export interface OutlierDetectionSettings {
  /** 0 disables. */
  consecutive5xxErrors: number;
  /** 0 disables. */
  consecutiveGatewayErrors: number;
  splitExternalLocalOriginErrors: boolean;
  /** Only with split mode; 0 disables. */
  consecutiveLocalOriginFailures: number;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionTimeMs: number;
  maxEjectionPercent: number;
  /** Below this healthy share the balancer ignores ejections (panic); 0 = never (Istio default). */
  minHealthPercent: number;
  alwaysEjectOneHost: boolean;
}

/** Istio's DestinationRule defaults (Envoy's where Istio passes nothing). */
export const ISTIO_OUTLIER_DEFAULTS: OutlierDetectionSettings = Object.freeze({
  consecutive5xxErrors: 5,
  consecutiveGatewayErrors: 0,
  splitExternalLocalOriginErrors: false,
  consecutiveLocalOriginFailures: 5,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 10,
  minHealthPercent: 0,
  alwaysEjectOneHost: false,
});

export type EjectionReason =
  'consecutive-5xx' | 'consecutive-gateway-errors' | 'consecutive-local-origin-failures';

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocal: number;
  ejectedAt: number | undefined;
  ejectionMs: number;
  /** Multiplier as of the last return; decays with healthy intervals (see effectiveMultiplier). */
  multiplier: number;
  returnedAt: number | undefined;
  timesEjected: number;
}

export class OutlierDetector {
  private readonly hosts = new Map<string, HostState>();
  private readonly ejected = new Set<string>();

  constructor(
    readonly settings: OutlierDetectionSettings,
    private readonly clock: Clock,
  ) {}

  /** Replace the host set (endpoint discovery). New hosts start healthy; removed ones are forgotten. */
  setHosts(hosts: readonly string[]): void {
    const keep = new Set(hosts);
    for (const h of [...this.hosts.keys()]) {
      if (!keep.has(h)) {
        this.hosts.delete(h);
        this.ejected.delete(h);
      }
    }
    for (const h of keep) if (!this.hosts.has(h)) this.hosts.set(h, newHostState());
  }

  get hostCount(): number {
    return this.hosts.size;
  }

  isEjected(host: string): boolean {
    this.refresh();
    return this.ejected.has(host);
  }

  ejectedHosts(): string[] {
    this.refresh();
    return [...this.ejected];
  }

  /** The multiplier the next ejection of `host` would start from (for introspection and tests). */
  ejectionMultiplier(host: string): number {
    this.refresh();
    const s = this.hosts.get(host);
    return s ? this.effectiveMultiplier(s) : 0;
  }

  /** Milliseconds until `host` returns, or 0 if it is not ejected. */
  remainingEjectionMs(host: string): number {
    this.refresh();
    const s = this.hosts.get(host);
    if (!s || s.ejectedAt === undefined) return 0;
    return s.ejectedAt + s.ejectionMs - this.clock();
  }

  /** Feed the outcome of one attempt to `host`; may eject it. Returns the ejection, if any. */
  recordOutcome(host: string, outcome: AttemptOutcome): EjectionReason | undefined {
    this.refresh();
    const s = this.hosts.get(host);
    if (!s) return undefined;
    const split = this.settings.splitExternalLocalOriginErrors;
    if (outcome.kind === 'response') {
      if (split) s.consecutiveLocal = 0;
      return this.recordStatus(host, s, outcome.status);
    }
    if (outcome.failure === 'overflow') return undefined;
    if (split) {
      s.consecutiveLocal++;
      if (
        this.settings.consecutiveLocalOriginFailures > 0 &&
        s.consecutiveLocal === this.settings.consecutiveLocalOriginFailures
      ) {
        return this.onThreshold(host, s, 'consecutive-local-origin-failures');
      }
      return undefined;
    }
    return this.recordStatus(host, s, outcome.failure === 'timeout' ? 504 : 503);
  }

  private recordStatus(host: string, s: HostState, status: number): EjectionReason | undefined {
    if (status < 500 || status > 599) {
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
      return undefined;
    }
    let result: EjectionReason | undefined;
    if (status === 502 || status === 503 || status === 504) {
      s.consecutiveGateway++;
      const n = this.settings.consecutiveGatewayErrors;
      if (n > 0 && s.consecutiveGateway === n)
        result = this.onThreshold(host, s, 'consecutive-gateway-errors');
    } else {
      s.consecutiveGateway = 0;
    }
    s.consecutive5xx++;
    const n = this.settings.consecutive5xxErrors;
    if (n > 0 && s.consecutive5xx === n) result = this.onThreshold(host, s, 'consecutive-5xx') ?? result;
    return result;
  }

  private onThreshold(host: string, s: HostState, reason: EjectionReason): EjectionReason | undefined {
    // Errors that keep arriving for an already ejected host neither re-eject it nor reset counters.
    if (s.ejectedAt !== undefined) return undefined;
    const ejected = this.tryEject(host, s);
    if (reason === 'consecutive-5xx') s.consecutive5xx = 0;
    else if (reason === 'consecutive-gateway-errors') s.consecutiveGateway = 0;
    else s.consecutiveLocal = 0;
    return ejected ? reason : undefined;
  }

  private tryEject(host: string, s: HostState): boolean {
    const total = this.hosts.size;
    const after = (100 * (this.ejected.size + 1)) / total;
    const allowed =
      after <= Math.min(100, this.settings.maxEjectionPercent) ||
      (this.settings.alwaysEjectOneHost && this.ejected.size === 0);
    if (!allowed) return false;
    const now = this.clock();
    const base = this.settings.baseEjectionTimeMs;
    const max = Math.max(this.settings.maxEjectionTimeMs, base);
    let multiplier = this.effectiveMultiplier(s);
    if (multiplier * base < max + base) multiplier++;
    s.multiplier = multiplier;
    s.returnedAt = undefined;
    s.ejectedAt = now;
    s.ejectionMs = Math.min(base * multiplier, max);
    s.timesEjected++;
    this.ejected.add(host);
    return true;
  }

  private effectiveMultiplier(s: HostState): number {
    if (s.ejectedAt !== undefined || s.returnedAt === undefined) return s.multiplier;
    const healthyIntervals = Math.floor((this.clock() - s.returnedAt) / this.settings.intervalMs);
    return Math.max(0, s.multiplier - healthyIntervals);
  }

  /** Return every host whose ejection time has elapsed. */
  private refresh(): void {
    if (this.ejected.size === 0) return;
    const now = this.clock();
    for (const host of [...this.ejected]) {
      const s = this.hosts.get(host);
      if (!s || s.ejectedAt === undefined) {
        this.ejected.delete(host);
        continue;
      }
      const until = s.ejectedAt + s.ejectionMs;
      if (now >= until) {
        s.ejectedAt = undefined;
        s.returnedAt = until;
        s.consecutive5xx = 0;
        s.consecutiveGateway = 0;
        s.consecutiveLocal = 0;
        this.ejected.delete(host);
      }
    }
  }
}

function newHostState(): HostState {
  return {
    consecutive5xx: 0,
    consecutiveGateway: 0,
    consecutiveLocal: 0,
    ejectedAt: undefined,
    ejectionMs: 0,
    multiplier: 0,
    returnedAt: undefined,
    timesEjected: 0,
  };
}
