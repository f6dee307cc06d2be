/**
 * Endpoint choice among the hosts that are eligible right now (outlier detection and panic mode
 * are applied by the caller). Hosts are opaque keys (e.g. "10.0.3.7:8080").
 *
 * - LEAST_REQUEST (Istio's default): Envoy's power-of-two-choices for equal weights — two draws
 *   with replacement, keep the host with fewer active requests, the first draw on a tie. With
 *   equal counts this is a uniform random choice.
 * - ROUND_ROBIN: a rotating index that starts at a random position, so that many waypoints do
 *   not all start on the same endpoint.
 * - RANDOM: uniform.
 *
 * Invariant (RoundRobinBalancer): the index only grows; it is taken modulo the current host count.
 */
import type { Random } from './random.js';
import { randomIndex } from './random.js';

export type LoadBalancerKind = 'LEAST_REQUEST' | 'ROUND_ROBIN' | 'RANDOM';

export interface LoadBalancer {
  readonly kind: LoadBalancerKind;
  choose(hosts: readonly string[], activeRequests: (host: string) => number): string | undefined;
}

/** Envoy's default choice_count for least-request. */
export const LEAST_REQUEST_CHOICES = 2;

export class LeastRequestBalancer implements LoadBalancer {
  readonly kind = 'LEAST_REQUEST';
  constructor(private readonly random: Random) {}

  choose(hosts: readonly string[], activeRequests: (host: string) => number): string | undefined {
    if (hosts.length <= 1) return hosts[0];
    let best: string | undefined;
    let bestActive = Infinity;
    for (let i = 0; i < LEAST_REQUEST_CHOICES; i++) {
      const h = hosts[randomIndex(this.random, hosts.length)];
      if (h === undefined) continue;
      const a = activeRequests(h);
      if (best === undefined || a < bestActive) {
        best = h;
        bestActive = a;
      }
    }
    return best;
  }
}

export class RoundRobinBalancer implements LoadBalancer {
  readonly kind = 'ROUND_ROBIN';
  private next: number;
  constructor(random: Random) {
    this.next = Math.floor(random() * 1_000_000);
  }

  choose(hosts: readonly string[]): string | undefined {
    if (hosts.length === 0) return undefined;
    return hosts[this.next++ % hosts.length];
  }
}

export class RandomBalancer implements LoadBalancer {
  readonly kind = 'RANDOM';
  constructor(private readonly random: Random) {}

  choose(hosts: readonly string[]): string | undefined {
    if (hosts.length === 0) return undefined;
    return hosts[randomIndex(this.random, hosts.length)];
  }
}

export function createLoadBalancer(kind: LoadBalancerKind, random: Random): LoadBalancer {
  switch (kind) {
    case 'LEAST_REQUEST':
      return new LeastRequestBalancer(random);
    case 'ROUND_ROBIN':
      return new RoundRobinBalancer(random);
    case 'RANDOM':
      return new RandomBalancer(random);
  }
}
