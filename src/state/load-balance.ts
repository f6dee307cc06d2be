/**
 * Endpoint selection for a service: locality preference (when the service configures
 * LoadBalancing) and then a weighted random pick by workload capacity, as ztunnel's
 * load_balance does. Pure: randomness is injected.
 */
import { canonicalIp, ipFamily } from './ip.js';
import type { LoadBalancing, LoadBalancingScope, Workload } from './model.js';
import type { ServiceEndpoint } from './store.js';

export interface PickEndpointInput {
  endpoints: readonly ServiceEndpoint[];
  /** The client workload, for locality ranking. */
  source?: Workload;
  loadBalancing?: LoadBalancing;
  /** Uniform in [0, 1). */
  random: () => number;
}

function scopeMatches(scope: LoadBalancingScope, a: Workload, b: Workload): boolean {
  switch (scope) {
    case 'Region':
      return a.locality.region === b.locality.region;
    case 'Zone':
      return a.locality.region === b.locality.region && a.locality.zone === b.locality.zone;
    case 'Subzone':
      return (
        a.locality.region === b.locality.region &&
        a.locality.zone === b.locality.zone &&
        a.locality.subzone === b.locality.subzone
      );
    case 'Node':
      return a.node === b.node;
    case 'Cluster':
      return a.clusterId === b.clusterId;
    case 'Network':
      return a.network === b.network;
  }
}

/**
 * How well an endpoint matches the client along the routing preferences: the number of leading
 * preferences that match, stopping at the first mismatch. When Network comes first, a network
 * match outranks any combination of the rest and a network mismatch only skips that scope.
 * `complete` says whether every preference matched (Strict mode keeps only those).
 */
export function rankLocality(
  prefs: readonly LoadBalancingScope[],
  source: Workload,
  endpoint: Workload,
): { rank: number; complete: boolean } {
  let rank = 0;
  let complete = true;
  for (let i = 0; i < prefs.length; i++) {
    const scope = prefs[i] as LoadBalancingScope;
    if (scopeMatches(scope, source, endpoint)) {
      rank += i === 0 && scope === 'Network' ? prefs.length : 1;
      continue;
    }
    complete = false;
    if (i === 0 && scope === 'Network') continue;
    break;
  }
  return { rank, complete };
}

/** The endpoints that locality preference allows, before the weighted pick. */
export function filterByLocality(input: Omit<PickEndpointInput, 'random'>): readonly ServiceEndpoint[] {
  const lb = input.loadBalancing;
  const src = input.source;
  if (!lb || !src || lb.routingPreferences.length === 0) return input.endpoints;
  if (lb.mode !== 'Strict' && lb.mode !== 'Failover') return input.endpoints;
  let ranked = input.endpoints.map((e) => ({ e, ...rankLocality(lb.routingPreferences, src, e.workload) }));
  if (lb.mode === 'Strict') ranked = ranked.filter((r) => r.complete);
  const best = Math.max(-1, ...ranked.map((r) => r.rank));
  return ranked.filter((r) => r.rank === best).map((r) => r.e);
}

/**
 * Weighted random by capacity. Zero-capacity endpoints are only chosen when every candidate has
 * zero capacity (then uniformly), so a drained set still serves rather than failing.
 */
export function pickWeighted<T>(
  items: readonly T[],
  weight: (t: T) => number,
  random: () => number,
): T | undefined {
  if (items.length === 0) return undefined;
  const weights = items.map((t) => Math.max(0, weight(t)));
  const total = weights.reduce((a, b) => a + b, 0);
  if (total <= 0) return items[Math.min(items.length - 1, Math.floor(random() * items.length))];
  let r = random() * total;
  for (let i = 0; i < items.length; i++) {
    r -= weights[i] as number;
    if (r < 0) return items[i];
  }
  return items[items.length - 1];
}

export function pickEndpoint(input: PickEndpointInput): ServiceEndpoint | undefined {
  return pickWeighted(filterByLocality(input), (e) => e.workload.capacity, input.random);
}

/**
 * The IP of a workload to dial: `prefer` itself if the workload owns it, else one of the same
 * family, else its first IP.
 */
export function selectWorkloadIp(w: Workload, prefer?: string): string | undefined {
  const pref = prefer === undefined ? undefined : canonicalIp(prefer);
  if (pref !== undefined && w.workloadIps.includes(pref)) return pref;
  const fam = pref === undefined ? undefined : ipFamily(pref);
  return w.workloadIps.find((ip) => ipFamily(ip) === fam) ?? w.workloadIps[0];
}
