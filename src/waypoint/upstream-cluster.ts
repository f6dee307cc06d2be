/**
 * UpstreamCluster: the per-destination state the waypoint keeps across requests — endpoint
 * choice, active-request counts, outlier detection and circuit breaking — for one Service port
 * under one DestinationPolicy. The runtime builds one per (service, port) and replaces it when
 * the policy changes; endpoints are fed in with setHosts.
 *
 * Invariants:
 * - `active` counts only hosts in the current host set, and each count equals the number of
 *   startRequest grants for that host not yet released;
 * - ejected hosts are never chosen unless the cluster is in panic (healthy share below
 *   minHealthPercent), in which case all hosts are eligible, as in Envoy.
 */
import { CircuitBreaker } from './circuit-breaker.js';
import type { WaypointConfig } from './config.js';
import { findDestinationPolicy } from './config.js';
import type { DestinationPolicy } from './destination-policy.js';
import type { LoadBalancer } from './load-balancer.js';
import { createLoadBalancer } from './load-balancer.js';
import { OutlierDetector } from './outlier.js';
import type { Clock, Random } from './random.js';
import { RetryBudget } from './retry-budget.js';
import type { AttemptOutcome } from './retry-policy.js';
import { HOST_SELECTION_MAX_ATTEMPTS } from './retry-policy.js';

export type HostChoice =
  | { ok: true; host: string; panic: boolean }
  /** no-endpoints: the service has none; all-ejected: outlier detection removed them all (503 UH). */
  | { ok: false; reason: 'no-endpoints' | 'all-ejected' };

export class UpstreamCluster {
  readonly circuitBreaker: CircuitBreaker;
  readonly outlier: OutlierDetector | undefined;
  private readonly lb: LoadBalancer;
  private hosts: string[] = [];
  private readonly active = new Map<string, number>();

  constructor(
    readonly policy: DestinationPolicy,
    deps: { clock: Clock; random: Random },
  ) {
    this.lb = createLoadBalancer(policy.loadBalancer, deps.random);
    this.outlier = policy.outlierDetection
      ? new OutlierDetector(policy.outlierDetection, deps.clock)
      : undefined;
    this.circuitBreaker = new CircuitBreaker(
      policy.limits,
      policy.retryBudget ? new RetryBudget(policy.retryBudget) : undefined,
    );
  }

  /** Cheap when the list is unchanged, so the runtime may call it before every pick. */
  setHosts(hosts: readonly string[]): void {
    if (hosts.length === this.hosts.length && hosts.every((h, i) => h === this.hosts[i])) return;
    this.hosts = [...new Set(hosts)];
    const keep = new Set(this.hosts);
    for (const h of [...this.active.keys()]) if (!keep.has(h)) this.active.delete(h);
    this.outlier?.setHosts(this.hosts);
  }

  get hostList(): readonly string[] {
    return this.hosts;
  }

  activeRequests(host: string): number {
    return this.active.get(host) ?? 0;
  }

  /** Hosts eligible now, and whether that is because of panic mode. */
  eligibleHosts(): { hosts: string[]; panic: boolean } {
    const od = this.outlier;
    if (!od) return { hosts: this.hosts, panic: false };
    const healthy = this.hosts.filter((h) => !od.isEjected(h));
    const healthyPercent = this.hosts.length === 0 ? 100 : (100 * healthy.length) / this.hosts.length;
    if (healthyPercent < od.settings.minHealthPercent) return { hosts: this.hosts, panic: true };
    return { hosts: healthy, panic: false };
  }

  /**
   * Pick a host. With `exclude` (hosts already tried by this request), re-pick up to
   * `maxAttempts` times to find an untried one and settle for the last pick otherwise (Envoy's
   * previous_hosts predicate with host_selection_retry_max_attempts).
   */
  chooseHost(exclude?: ReadonlySet<string>, maxAttempts = HOST_SELECTION_MAX_ATTEMPTS): HostChoice {
    if (this.hosts.length === 0) return { ok: false, reason: 'no-endpoints' };
    const { hosts, panic } = this.eligibleHosts();
    if (hosts.length === 0) return { ok: false, reason: 'all-ejected' };
    const active = (h: string): number => this.activeRequests(h);
    let pick = this.lb.choose(hosts, active);
    for (let i = 1; exclude && pick !== undefined && exclude.has(pick) && i < maxAttempts; i++) {
      pick = this.lb.choose(hosts, active);
    }
    return pick === undefined ? { ok: false, reason: 'all-ejected' } : { ok: true, host: pick, panic };
  }

  /** Count a request as active on `host` (least-request); call the result when it ends. */
  startRequest(host: string): () => void {
    this.active.set(host, this.activeRequests(host) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = this.active.get(host);
      if (n === undefined) return;
      if (n <= 1) this.active.delete(host);
      else this.active.set(host, n - 1);
    };
  }

  recordOutcome(host: string, outcome: AttemptOutcome): void {
    this.outlier?.recordOutcome(host, outcome);
  }
}

/**
 * UpstreamClusterSet: one UpstreamCluster per (service, port), created on first use. After a
 * config reload a cluster is replaced only if its resolved policy really changed, so outlier and
 * load state survive unrelated config changes.
 *
 * Invariant: every cluster in the map was built from the policy stored beside it.
 */
export class UpstreamClusterSet {
  private readonly clusters = new Map<
    string,
    { cluster: UpstreamCluster; policyJson: string; config: WaypointConfig }
  >();

  constructor(private readonly deps: { clock: Clock; random: Random }) {}

  /** The cluster for `backend` under `config`; the policy is re-resolved only when config changes. */
  clusterFor(
    config: WaypointConfig,
    backend: { namespace: string; name: string; port: number },
  ): UpstreamCluster {
    const key = `${backend.namespace}/${backend.name}:${backend.port}`;
    const cached = this.clusters.get(key);
    if (cached && cached.config === config) return cached.cluster;
    const policy = findDestinationPolicy(config, backend, backend.port);
    const policyJson = JSON.stringify(policy);
    if (cached && cached.policyJson === policyJson) {
      cached.config = config;
      return cached.cluster;
    }
    const cluster = new UpstreamCluster(policy, this.deps);
    if (cached) cluster.setHosts(cached.cluster.hostList);
    this.clusters.set(key, { cluster, policyJson, config });
    return cluster;
  }

  /** Drop clusters for backends no longer in use. */
  retain(keep: (key: string) => boolean): void {
    for (const key of [...this.clusters.keys()]) if (!keep(key)) this.clusters.delete(key);
  }

  get size(): number {
    return this.clusters.size;
  }
}
