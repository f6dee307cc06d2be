/**
 * L4 authorization, evaluated the way Istio's ztunnel evaluates it at the destination:
 *
 * 1. the applicable policies are the destination workload's namespace policies, the global ones
 *    and its selector-scoped references (MeshState.findPolicies);
 * 2. a matching enforced DENY rejects ("explicitly denied by: ns/name");
 * 3. with no enforced ALLOW policy the connection is allowed;
 * 4. otherwise an enforced ALLOW must match ("allow policies exist, but none allowed").
 * Dry-run policies never change the decision; their outcome is reported in `dryRun` for logging.
 *
 * Matching: a policy with no rules never matches; a rule matches when all its clauses match (no
 * clauses = match); a clause matches when any of its non-empty matches matches (no matches at
 * all = match; all-empty matches = no match); within a match every populated field must hold.
 * Principals are compared without the spiffe:// prefix, and with no peer identity every
 * principal, namespace-presence and service-account matcher is false, so
 * `notPrincipals: [presence]` matches plaintext traffic.
 */
import { cidrContains, type IpCidr } from './ip.js';
import {
  isEmptyMatch,
  policyKey,
  stringMatches,
  type Authorization,
  type AuthorizationAction,
  type RbacMatch,
  type ServiceAccountMatch,
  type StringMatch,
  type Workload,
} from './model.js';
import type { MeshState } from './store.js';

export interface ConnectionAttributes {
  /** The destination workload (local to the enforcing ztunnel). */
  workload: Workload;
  /** Peer identity as a SPIFFE URI; undefined for plaintext (15006) traffic. */
  sourceIdentity: string | undefined;
  sourceIp: string;
  /** The local pod IP. */
  destinationIp: string;
  /** The resolved target port (not 15008, not the service port). */
  destinationPort: number;
}

export interface DryRunResult {
  policy: string;
  action: AuthorizationAction;
  matched: boolean;
}

export type AuthzDecision =
  | { allow: true; dryRun?: DryRunResult[] }
  | { allow: false; reason: string; policy?: string; dryRun?: DryRunResult[] };

export const NOT_ALLOWED_REASON = 'allow policies exist, but none allowed';

interface PeerIdentity {
  /** The identity without spiffe://, "" if none or not a SPIFFE URI. */
  principal: string;
  namespace: string;
  serviceAccount: string;
  present: boolean;
}

function peerOf(identity: string | undefined): PeerIdentity {
  const none = { principal: '', namespace: '', serviceAccount: '', present: false };
  if (identity === undefined || !identity.startsWith('spiffe://')) return none;
  const principal = identity.slice('spiffe://'.length);
  const parts = principal.split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') {
    return { ...none, principal, present: true };
  }
  return { principal, namespace: parts[2] as string, serviceAccount: parts[4] as string, present: true };
}

function field<T>(positive: readonly T[], negative: readonly T[], pred: (t: T) => boolean): boolean {
  if (positive.length > 0 && !positive.some(pred)) return false;
  if (negative.length > 0 && negative.some(pred)) return false;
  return true;
}

function matchOne(m: RbacMatch, conn: ConnectionAttributes, peer: PeerIdentity): boolean {
  const inCidr = (ip: string) => (c: IpCidr) => cidrContains(c, ip);
  const principal = (s: StringMatch) => peer.present && stringMatches(s, peer.principal);
  const sa = (s: ServiceAccountMatch) =>
    peer.present && s.namespace === peer.namespace && s.serviceAccount === peer.serviceAccount;
  return (
    field(m.destinationIps, m.notDestinationIps, inCidr(conn.destinationIp)) &&
    field(m.sourceIps, m.notSourceIps, inCidr(conn.sourceIp)) &&
    field(m.destinationPorts, m.notDestinationPorts, (p) => p === conn.destinationPort) &&
    field(m.serviceAccounts, m.notServiceAccounts, sa) &&
    field(m.principals, m.notPrincipals, principal) &&
    field(m.namespaces, m.notNamespaces, (s) => stringMatches(s, peer.namespace))
  );
}

/** Does the policy match the connection? (Its action is not considered here.) */
export function policyMatches(policy: Authorization, conn: ConnectionAttributes): boolean {
  return policyMatchesPeer(policy, conn, peerOf(conn.sourceIdentity));
}

function policyMatchesPeer(policy: Authorization, conn: ConnectionAttributes, peer: PeerIdentity): boolean {
  if (policy.rules.length === 0) return false;
  return policy.rules.some((rule) =>
    rule.clauses.every(
      (clause) =>
        clause.matches.length === 0 ||
        clause.matches.some((m) => !isEmptyMatch(m) && matchOne(m, conn, peer)),
    ),
  );
}

/** Evaluate a given set of policies (already selected for the destination workload). */
export function evaluatePolicies(
  policies: readonly Authorization[],
  conn: ConnectionAttributes,
): AuthzDecision {
  const peer = peerOf(conn.sourceIdentity);
  const dryRun: DryRunResult[] = [];
  const withDryRun = <D extends AuthzDecision>(d: D): D => (dryRun.length > 0 ? { ...d, dryRun } : d);

  for (const p of policies) {
    if (!p.dryRun) continue;
    dryRun.push({ policy: policyKey(p), action: p.action, matched: policyMatchesPeer(p, conn, peer) });
  }
  for (const p of policies) {
    if (p.dryRun || p.action !== 'Deny') continue;
    if (policyMatchesPeer(p, conn, peer)) {
      const key = policyKey(p);
      return withDryRun({ allow: false, reason: `explicitly denied by: ${key}`, policy: key });
    }
  }
  const allows = policies.filter((p) => !p.dryRun && p.action === 'Allow');
  if (allows.length === 0) return withDryRun({ allow: true });
  if (allows.some((p) => policyMatchesPeer(p, conn, peer))) return withDryRun({ allow: true });
  return withDryRun({ allow: false, reason: NOT_ALLOWED_REASON });
}

/** The decision for a connection to `conn.workload`, with the policies that apply to it. */
export function buildAuthzDecision(state: MeshState, conn: ConnectionAttributes): AuthzDecision {
  return evaluatePolicies(state.findPolicies(conn.workload), conn);
}
