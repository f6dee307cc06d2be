/**
 * The compiled form of AuthorizationPolicies that apply at the waypoint (targetRefs to this
 * waypoint's Gateway, its GatewayClass, or a Service). One generic shape covers sources,
 * operations and `when` conditions: a clause names an attribute and lists values (ORed), and may
 * be negated (the not* forms and notValues). Clauses in a list are ANDed.
 */
import type { BlockList } from 'node:net';

export type AuthzAction = 'ALLOW' | 'DENY' | 'AUDIT';

export type StringPattern =
  | { kind: 'exact'; value: string }
  /** `abc*` */
  | { kind: 'prefix'; value: string }
  /** `*abc` */
  | { kind: 'suffix'; value: string }
  /** `*`: any non-empty value. */
  | { kind: 'presence' };

export type AuthzValue =
  | { kind: 'string'; pattern: StringPattern }
  /** A path with `{*}` / `{**}` operators, compiled to an anchored RegExp. */
  | { kind: 'path-template'; template: string; re: RegExp }
  /** All CIDRs of one clause in one list. */
  | { kind: 'cidrs'; list: BlockList; text: readonly string[] };

export type AuthzAttribute =
  | 'source.principal'
  | 'source.namespace'
  | 'source.serviceAccount'
  | 'source.trustDomain'
  | 'source.ip'
  | 'remote.ip'
  | 'destination.ip'
  | 'destination.port'
  | 'request.host'
  | 'request.method'
  | 'request.path'
  | 'request.header';

/** Attributes that exist only for HTTP requests (matter for TCP traffic through the waypoint). */
export const HTTP_ATTRIBUTES: ReadonlySet<AuthzAttribute> = new Set([
  'request.host',
  'request.method',
  'request.path',
  'request.header',
]);

export interface AuthzClause {
  attribute: AuthzAttribute;
  /** Lower-case header name for request.header. */
  header?: string;
  values: readonly AuthzValue[];
  negate: boolean;
}

export interface AuthzRule {
  /** Undefined: any source. Otherwise at least one source (an AND of clauses) must match. */
  from: ReadonlyArray<readonly AuthzClause[]> | undefined;
  /** Undefined: any operation. */
  to: ReadonlyArray<readonly AuthzClause[]> | undefined;
  /** Every condition must match. */
  when: readonly AuthzClause[];
}

export interface L7Policy {
  namespace: string;
  name: string;
  action: AuthzAction;
  /** Empty: the policy never matches (an ALLOW with no rules allows nothing). */
  rules: readonly AuthzRule[];
  /** `istio.io/dry-run: "true"`: evaluated and reported, never enforced. */
  dryRun: boolean;
}
