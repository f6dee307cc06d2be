/**
 * SPIFFE ids in the one shape Istio uses: spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>.
 * Parsing is strict (exactly five path segments, lower-case scheme, no query/fragment/port/userinfo)
 * because identities are compared as strings in TLS verification and authorization.
 */
import { MeshError } from '../errors.js';

export interface SpiffeId {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

// Trust domain: SPIFFE allows lower-case letters, digits, '.', '-', '_'.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
// Kubernetes namespace / service account names (DNS-1123 labels/subdomains) plus '_' tolerated by SPIFFE.
const SEGMENT = /^[a-zA-Z0-9._-]+$/;

export type SpiffeParseResult = { ok: true; id: SpiffeId } | { ok: false; reason: string };

export function tryParseSpiffeId(uri: string): SpiffeParseResult {
  const prefix = 'spiffe://';
  if (!uri.startsWith(prefix)) return { ok: false, reason: 'must start with spiffe://' };
  const rest = uri.slice(prefix.length);
  if (/[?#%@:]/.test(rest))
    return { ok: false, reason: 'must not contain a query, fragment, port, userinfo or escape' };
  const parts = rest.split('/');
  if (parts.length !== 5) {
    return {
      ok: false,
      reason: 'must have the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>',
    };
  }
  const [td, nsKey, ns, saKey, sa] = parts as [string, string, string, string, string];
  if (!td || !TRUST_DOMAIN.test(td))
    return { ok: false, reason: `invalid trust domain "${td}" (lower-case letters, digits, . - _)` };
  if (nsKey !== 'ns') return { ok: false, reason: `expected "ns" as the second segment, got "${nsKey}"` };
  if (!ns || !SEGMENT.test(ns)) return { ok: false, reason: `invalid namespace "${ns}"` };
  if (saKey !== 'sa') return { ok: false, reason: `expected "sa" as the fourth segment, got "${saKey}"` };
  if (!sa || !SEGMENT.test(sa)) return { ok: false, reason: `invalid service account "${sa}"` };
  return { ok: true, id: { trustDomain: td, namespace: ns, serviceAccount: sa } };
}

export function parseSpiffeId(uri: string): SpiffeId {
  const r = tryParseSpiffeId(uri);
  if (!r.ok) {
    throw new MeshError('MESH_ERR_SPIFFE_INVALID', `invalid SPIFFE id "${uri}": ${r.reason}`, {
      hint: 'write it as spiffe://cluster.local/ns/<namespace>/sa/<service-account>',
    });
  }
  return r.id;
}

export function formatSpiffeId(id: SpiffeId): string {
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** The identity as Istio authorization policies name it: without the spiffe:// prefix. */
export function principalOf(id: SpiffeId | string): string {
  const s = typeof id === 'string' ? id : formatSpiffeId(id);
  return s.startsWith('spiffe://') ? s.slice('spiffe://'.length) : s;
}

export function spiffeIdOf(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
  return { trustDomain, namespace, serviceAccount };
}

export function sameSpiffeId(a: SpiffeId, b: SpiffeId): boolean {
  return (
    a.trustDomain === b.trustDomain && a.namespace === b.namespace && a.serviceAccount === b.serviceAccount
  );
}
