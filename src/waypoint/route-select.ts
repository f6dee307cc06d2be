/**
 * Route selection: Gateway API precedence over every (rule, match) pair attached to a Service,
 * then a weighted backend draw.
 *
 * Precedence (ties fall through to the next line), as Istio orders the routes it generates:
 * 1. path match kind: Exact, then PathPrefix, then RegularExpression — Gateway API leaves regex
 *    precedence to the implementation; Istio ranks it below both and, between regexes, prefers
 *    the longer expression, and so does meshd;
 * 2. longer path value;
 * 3. a method match over none;
 * 4. more header matches;
 * 5. more query-parameter matches;
 * 6. older route (creationTimestamp; a route without one counts as newest);
 * 7. route namespace, then name, alphabetically;
 * 8. rule order, then match order within the rule.
 * A parentRef port only filters (the route applies to that port); it adds no precedence.
 */
import type { Random } from './random.js';
import type { MatchableRequest } from './route-match.js';
import { matchesRoute } from './route-match.js';
import type { RouteEntry, RouteMatch, RouteRule, WeightedBackend } from './route-types.js';

const PATH_RANK = { Exact: 3, PathPrefix: 2, RegularExpression: 1 } as const;

function compareMatches(a: RouteMatch, b: RouteMatch): number {
  return (
    PATH_RANK[b.path.kind] - PATH_RANK[a.path.kind] ||
    b.path.value.length - a.path.value.length ||
    Number(b.method !== undefined) - Number(a.method !== undefined) ||
    b.headers.length - a.headers.length ||
    b.queryParams.length - a.queryParams.length
  );
}

/** Code-unit order, like Go's cmp.Compare that Istio uses (not locale order). */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareRules(a: RouteRule, b: RouteRule): number {
  const ta = a.route.createdAt;
  const tb = b.route.createdAt;
  if (ta !== tb) return ta < tb ? -1 : 1;
  return (
    compareStrings(a.route.namespace, b.route.namespace) ||
    compareStrings(a.route.name, b.route.name) ||
    a.ruleIndex - b.ruleIndex
  );
}

export function compareRouteEntries(a: RouteEntry, b: RouteEntry): number {
  return compareMatches(a.match, b.match) || compareRules(a.rule, b.rule) || a.matchIndex - b.matchIndex;
}

/** Sorts a copy of the entries into precedence order (done once, at compile time). */
export function sortRouteEntries(entries: readonly RouteEntry[]): RouteEntry[] {
  return [...entries].sort(compareRouteEntries);
}

export type RouteSelection =
  /** No route is attached to this Service port: send the request straight to the Service. */
  | { kind: 'default' }
  /** Routes are attached but none matched: 404 with flag NR. */
  | { kind: 'no-route' }
  | { kind: 'rule'; rule: RouteRule; match: RouteMatch; matchIndex: number };

/** `entries` must be in precedence order (sortRouteEntries). */
export function buildRouteSelection(
  entries: readonly RouteEntry[],
  port: number,
  req: MatchableRequest,
): RouteSelection {
  let attached = false;
  for (const e of entries) {
    if (e.port !== undefined && e.port !== port) continue;
    attached = true;
    if (matchesRoute(e.match, req))
      return { kind: 'rule', rule: e.rule, match: e.match, matchIndex: e.matchIndex };
  }
  return attached ? { kind: 'no-route' } : { kind: 'default' };
}

/** Weighted random choice; weights are proportional (not percentages). Undefined if none. */
export function chooseWeightedBackend(
  backends: readonly WeightedBackend[],
  random: Random,
): WeightedBackend | undefined {
  let total = 0;
  for (const b of backends) total += b.weight;
  if (total <= 0) return undefined;
  let draw = random() * total;
  for (const b of backends) {
    if (draw < b.weight) return b;
    draw -= b.weight;
  }
  return backends[backends.length - 1];
}
