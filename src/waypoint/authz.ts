/**
 * L7 authorization at the waypoint, with Istio's semantics:
 * - DENY first: any matching DENY policy rejects;
 * - then ALLOW: with no ALLOW policy the request is allowed; otherwise one must match;
 * - AUDIT never changes the decision; matching AUDIT policies are reported;
 * - dry-run policies are evaluated on their own (the "shadow" result) and never enforced.
 * A policy matches if any rule matches; a rule matches if some `from` source AND some `to`
 * operation AND every `when` condition match; absent sections match anything.
 *
 * For traffic the waypoint handles as plain TCP (no `request`), HTTP-only clauses match for a
 * DENY policy and fail for ALLOW/AUDIT, as in Envoy: a DENY naming methods denies all TCP on the
 * port, an ALLOW naming paths allows no TCP.
 */
import { principalOf, tryParseSpiffeId } from '../identity/index.js';
import { matchesAuthzValue } from './authz-match.js';
import type { AuthzAction, AuthzClause, AuthzRule, L7Policy } from './authz-types.js';
import { HTTP_ATTRIBUTES } from './authz-types.js';
import type { DestinationService, HeaderMap, RequestClient } from './http-types.js';
import { headerValue } from './http-types.js';
import { splitHostPort } from './filters.js';

export interface AuthzAttributes {
  source: {
    /** Without `spiffe://`: `cluster.local/ns/a/sa/b`. Undefined for plaintext clients. */
    principal: string | undefined;
    namespace: string | undefined;
    /** `ns/sa`. */
    serviceAccount: string | undefined;
    trustDomain: string | undefined;
    ip: string;
    remoteIp: string;
  };
  destination: { ip: string | undefined; port: number };
  /** Undefined for TCP traffic. */
  request: { host: string; method: string; path: string; headers: HeaderMap } | undefined;
}

/** Builds the attributes from what the runtime knows; `path` is normalized, without the query. */
export function buildAuthzAttributes(
  client: RequestClient,
  service: DestinationService,
  request: { host: string; method: string; path: string; headers: HeaderMap } | undefined,
): AuthzAttributes {
  const principal = client.identity === undefined ? undefined : principalOf(client.identity);
  const parsed = client.identity === undefined ? undefined : tryParseSpiffeId(client.identity);
  const id = parsed?.ok ? parsed.id : undefined;
  return {
    source: {
      principal,
      namespace: id?.namespace,
      serviceAccount: id ? `${id.namespace}/${id.serviceAccount}` : undefined,
      trustDomain: id?.trustDomain,
      ip: client.ip,
      remoteIp: client.remoteIp ?? client.ip,
    },
    destination: { ip: service.vip, port: service.port },
    request,
  };
}

export interface PolicyMatch {
  namespace: string;
  name: string;
  ruleIndex: number;
}

/** Envoy's rendering in response-code details: ns[foo]-policy[bar]-rule[0]. */
export function formatPolicyMatch(m: PolicyMatch): string {
  return `ns[${m.namespace}]-policy[${m.name}]-rule[${m.ruleIndex}]`;
}

export interface AuthzDecision {
  allowed: boolean;
  reason: 'denied-by-policy' | 'no-allow-match' | 'allowed-by-policy' | 'no-allow-policies';
  /** The DENY that matched, or the ALLOW that matched. */
  policy: PolicyMatch | undefined;
  /** AUDIT policies that matched (the decision is unaffected). */
  audit: PolicyMatch[];
  /** What the dry-run policies alone would have decided; undefined when there are none. */
  shadow: { allowed: boolean; policy: PolicyMatch | undefined } | undefined;
}

function candidates(c: AuthzClause, a: AuthzAttributes): string[] | undefined {
  switch (c.attribute) {
    case 'source.principal':
      return one(a.source.principal);
    case 'source.namespace':
      return one(a.source.namespace);
    case 'source.serviceAccount':
      return one(a.source.serviceAccount);
    case 'source.trustDomain':
      return one(a.source.trustDomain);
    case 'source.ip':
      return [a.source.ip];
    case 'remote.ip':
      return [a.source.remoteIp];
    case 'destination.ip':
      return one(a.destination.ip);
    case 'destination.port':
      return [String(a.destination.port)];
    case 'request.host': {
      if (!a.request) return undefined;
      const host = a.request.host.toLowerCase();
      const bare = splitHostPort(host).hostname;
      return bare === host ? [host] : [host, bare];
    }
    case 'request.method':
      return a.request ? [a.request.method] : undefined;
    case 'request.path':
      return a.request ? [a.request.path] : undefined;
    case 'request.header':
      return a.request ? one(headerValue(a.request.headers, c.header ?? '')) : undefined;
  }
}

function one(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : [v];
}

function clauseMatches(c: AuthzClause, a: AuthzAttributes, action: AuthzAction): boolean {
  if (a.request === undefined && HTTP_ATTRIBUTES.has(c.attribute)) return action === 'DENY';
  const values = candidates(c, a);
  const hit = values !== undefined && values.some((v) => c.values.some((m) => matchesAuthzValue(m, v)));
  return c.negate ? !hit : hit;
}

function ruleMatches(r: AuthzRule, a: AuthzAttributes, action: AuthzAction): boolean {
  const all = (clauses: readonly AuthzClause[]): boolean => clauses.every((c) => clauseMatches(c, a, action));
  if (r.from && !r.from.some(all)) return false;
  if (r.to && !r.to.some(all)) return false;
  return all(r.when);
}

/** The first matching rule of a policy, or undefined. */
export function findMatchingRule(p: L7Policy, a: AuthzAttributes): PolicyMatch | undefined {
  const i = p.rules.findIndex((r) => ruleMatches(r, a, p.action));
  return i < 0 ? undefined : { namespace: p.namespace, name: p.name, ruleIndex: i };
}

function decide(policies: readonly L7Policy[], a: AuthzAttributes): Omit<AuthzDecision, 'audit' | 'shadow'> {
  for (const p of policies) {
    if (p.action !== 'DENY') continue;
    const m = findMatchingRule(p, a);
    if (m) return { allowed: false, reason: 'denied-by-policy', policy: m };
  }
  const allows = policies.filter((p) => p.action === 'ALLOW');
  if (allows.length === 0) return { allowed: true, reason: 'no-allow-policies', policy: undefined };
  for (const p of allows) {
    const m = findMatchingRule(p, a);
    if (m) return { allowed: true, reason: 'allowed-by-policy', policy: m };
  }
  return { allowed: false, reason: 'no-allow-match', policy: undefined };
}

export function evaluateL7Authorization(
  policies: readonly L7Policy[],
  attrs: AuthzAttributes,
): AuthzDecision {
  const enforced = policies.filter((p) => !p.dryRun);
  const dryRun = policies.filter((p) => p.dryRun);
  const audit: PolicyMatch[] = [];
  for (const p of enforced) {
    if (p.action !== 'AUDIT') continue;
    const m = findMatchingRule(p, attrs);
    if (m) audit.push(m);
  }
  const shadow = dryRun.some((p) => p.action !== 'AUDIT') ? decide(dryRun, attrs) : undefined;
  return {
    ...decide(enforced, attrs),
    audit,
    shadow: shadow ? { allowed: shadow.allowed, policy: shadow.policy } : undefined,
  };
}
