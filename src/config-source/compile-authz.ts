/**
 * security.istio.io AuthorizationPolicy → istio.security Authorization, converted the way istiod
 * converts it for ztunnel:
 * - scope: selector → WorkloadSelector (pods of the policy's namespace, or of every namespace
 *   when the policy is in the root namespace); no selector → Namespace; no selector in the root
 *   namespace → Global. targetRef(s) policies belong to the waypoint: not compiled here.
 * - actions ALLOW and DENY; AUDIT and CUSTOM are not enforced by ztunnel (skipped, warned).
 * - each rule becomes clauses: one for `to` (its operations' ports), one for `from` (its
 *   sources' L4 fields), one per `when` condition.
 * - L7 attributes (hosts, methods, paths, requestPrincipals, remoteIpBlocks, trustDomains, L7
 *   `when` keys): in an ALLOW rule the whole rule is dropped (fail closed); in a DENY they are
 *   removed and the L4 rest kept, so a sub-clause left empty never matches. Both are warned.
 * - unknown keys anywhere in the spec are errors: a silently ignored typo changes security.
 */
import { parseCidr, parseStringMatch, policyKey, rbacMatch } from '../state/index.js';
import type {
  Authorization,
  AuthorizationClause,
  AuthorizationRule,
  IpCidr,
  RbacMatch,
  ServiceAccountMatch,
} from '../state/index.js';
import { isEmptyMatch } from '../state/index.js';
import type { Compilation } from './compile-types.js';
import { selects, type ObjectContext } from './fields.js';

const SPEC_KEYS = ['selector', 'targetRef', 'targetRefs', 'action', 'provider', 'rules'];
const RULE_KEYS = ['from', 'to', 'when'];
const SOURCE_KEYS = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'trustDomains',
  'notTrustDomains',
];
const SOURCE_L7 = [
  'requestPrincipals',
  'notRequestPrincipals',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'trustDomains',
  'notTrustDomains',
];
const OPERATION_KEYS = [
  'hosts',
  'notHosts',
  'ports',
  'notPorts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
];
const OPERATION_L7 = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'];
const CONDITION_KEYS = ['key', 'values', 'notValues'];
const L4_WHEN_KEYS = [
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
];
const L7_WHEN_KEYS = [
  'remote.ip',
  'source.serviceAccount',
  'source.trustDomain',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'connection.sni',
];
const L7_WHEN_PATTERNS = [
  /^request\.headers\[.+\]$/,
  /^request\.auth\.claims\[.+\]$/,
  /^experimental\.envoy\.filters\./,
];
const ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'];

interface ConvertedRule {
  clauses: AuthorizationClause[];
  /** The L7 attributes found, by name. */
  l7: string[];
}

function cidrs(ctx: ObjectContext, v: unknown, field: string): IpCidr[] {
  return ctx.strList(v, field).map((s, i) => {
    const c = parseCidr(s);
    if (!c)
      ctx.fail(
        `${field}[${i}]`,
        `"${s}" is not an IP address or CIDR block`,
        'write e.g. 10.0.0.0/8, 10.1.2.3 or fd00::/8',
      );
    return c;
  });
}

function ports(ctx: ObjectContext, v: unknown, field: string): number[] {
  return ctx.list(v, field).map((p, i) => ctx.portString(p, `${field}[${i}]`));
}

function principals(ctx: ObjectContext, v: unknown, field: string) {
  const list = ctx.strList(v, field);
  list.forEach((p, i) => {
    if (p.startsWith('spiffe://')) {
      ctx.warn(
        `${field}[${i}]`,
        `"${p}" never matches: principals are written without spiffe:// (e.g. cluster.local/ns/<ns>/sa/<sa>)`,
      );
    }
  });
  return list.map(parseStringMatch);
}

function serviceAccounts(
  ctx: ObjectContext,
  v: unknown,
  field: string,
  policyNs: string,
): ServiceAccountMatch[] {
  return ctx.strList(v, field).map((s, i) => {
    const parts = s.split('/');
    if (parts.length > 2 || parts.some((p) => p === '' || p.includes('*'))) {
      ctx.fail(
        `${field}[${i}]`,
        `"${s}" is not a service account`,
        'write <namespace>/<name> or <name> (the policy namespace), without wildcards',
      );
    }
    return parts.length === 2
      ? { namespace: parts[0] as string, serviceAccount: parts[1] as string }
      : { namespace: policyNs, serviceAccount: s };
  });
}

function present(m: Record<string, unknown>, key: string): boolean {
  const v = m[key];
  return v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);
}

function convertSource(
  ctx: ObjectContext,
  v: unknown,
  field: string,
  policyNs: string,
  l7: string[],
): RbacMatch {
  const entry = ctx.mapping(v, field) ?? {};
  ctx.onlyKeys(entry, field, ['source']);
  const sf = `${field}.source`;
  const s = ctx.mapping(entry.source, sf);
  if (!s || Object.keys(s).length === 0)
    ctx.fail(sf, 'must not be empty', `list at least one of: ${SOURCE_KEYS.join(', ')}`);
  ctx.onlyKeys(s, sf, SOURCE_KEYS);
  if (present(s, 'serviceAccounts') && (present(s, 'principals') || present(s, 'namespaces'))) {
    ctx.fail(
      `${sf}.serviceAccounts`,
      'cannot be combined with principals or namespaces',
      'use either serviceAccounts or principals/namespaces in one source',
    );
  }
  for (const k of SOURCE_L7) {
    ctx.strList(s[k], `${sf}.${k}`);
    if (present(s, k)) l7.push(k);
  }
  return rbacMatch({
    principals: principals(ctx, s.principals, `${sf}.principals`),
    notPrincipals: principals(ctx, s.notPrincipals, `${sf}.notPrincipals`),
    namespaces: ctx.strList(s.namespaces, `${sf}.namespaces`).map(parseStringMatch),
    notNamespaces: ctx.strList(s.notNamespaces, `${sf}.notNamespaces`).map(parseStringMatch),
    serviceAccounts: serviceAccounts(ctx, s.serviceAccounts, `${sf}.serviceAccounts`, policyNs),
    notServiceAccounts: serviceAccounts(ctx, s.notServiceAccounts, `${sf}.notServiceAccounts`, policyNs),
    sourceIps: cidrs(ctx, s.ipBlocks, `${sf}.ipBlocks`),
    notSourceIps: cidrs(ctx, s.notIpBlocks, `${sf}.notIpBlocks`),
  });
}

function convertOperation(ctx: ObjectContext, v: unknown, field: string, l7: string[]): RbacMatch {
  const entry = ctx.mapping(v, field) ?? {};
  ctx.onlyKeys(entry, field, ['operation']);
  const of = `${field}.operation`;
  const op = ctx.mapping(entry.operation, of);
  if (!op || Object.keys(op).length === 0)
    ctx.fail(of, 'must not be empty', `list at least one of: ${OPERATION_KEYS.join(', ')}`);
  ctx.onlyKeys(op, of, OPERATION_KEYS);
  for (const k of OPERATION_L7) {
    ctx.strList(op[k], `${of}.${k}`);
    if (present(op, k)) l7.push(k);
  }
  return rbacMatch({
    destinationPorts: ports(ctx, op.ports, `${of}.ports`),
    notDestinationPorts: ports(ctx, op.notPorts, `${of}.notPorts`),
  });
}

function convertCondition(ctx: ObjectContext, v: unknown, field: string, l7: string[]): RbacMatch {
  const cond = ctx.mapping(v, field) ?? {};
  ctx.onlyKeys(cond, field, CONDITION_KEYS);
  const key = ctx.requiredStr(
    cond.key,
    `${field}.key`,
    `set key to one of ${L4_WHEN_KEYS.join(', ')} (or an L7 key for a waypoint)`,
  );
  if (!present(cond, 'values') && !present(cond, 'notValues')) {
    ctx.fail(field, 'needs values or notValues', 'add values: [...] or notValues: [...]');
  }
  const vf = `${field}.values`;
  const nf = `${field}.notValues`;
  switch (key) {
    case 'source.ip':
      return rbacMatch({
        sourceIps: cidrs(ctx, cond.values, vf),
        notSourceIps: cidrs(ctx, cond.notValues, nf),
      });
    case 'destination.ip':
      return rbacMatch({
        destinationIps: cidrs(ctx, cond.values, vf),
        notDestinationIps: cidrs(ctx, cond.notValues, nf),
      });
    case 'destination.port':
      return rbacMatch({
        destinationPorts: ports(ctx, cond.values, vf),
        notDestinationPorts: ports(ctx, cond.notValues, nf),
      });
    case 'source.namespace':
      return rbacMatch({
        namespaces: ctx.strList(cond.values, vf).map(parseStringMatch),
        notNamespaces: ctx.strList(cond.notValues, nf).map(parseStringMatch),
      });
    case 'source.principal':
      return rbacMatch({
        principals: principals(ctx, cond.values, vf),
        notPrincipals: principals(ctx, cond.notValues, nf),
      });
  }
  if (!L7_WHEN_KEYS.includes(key) && !L7_WHEN_PATTERNS.some((re) => re.test(key))) {
    ctx.fail(
      `${field}.key`,
      `unknown condition key "${key}"`,
      `use one of ${[...L4_WHEN_KEYS, ...L7_WHEN_KEYS].join(', ')}, request.headers[<name>] or request.auth.claims[<claim>]`,
    );
  }
  ctx.strList(cond.values, vf);
  ctx.strList(cond.notValues, nf);
  l7.push(key);
  return rbacMatch({});
}

function convertRule(ctx: ObjectContext, v: unknown, field: string, policyNs: string): ConvertedRule {
  const rule = ctx.mapping(v, field) ?? {};
  ctx.onlyKeys(rule, field, RULE_KEYS);
  for (const k of ['from', 'to'] as const) {
    if (Array.isArray(rule[k]) && rule[k].length === 0)
      ctx.fail(`${field}.${k}`, 'must not be an empty list', `remove ${k} or add an entry`);
  }
  const l7: string[] = [];
  const to = ctx
    .list(rule.to, `${field}.to`)
    .map((o, i) => convertOperation(ctx, o, `${field}.to[${i}]`, l7));
  const from = ctx
    .list(rule.from, `${field}.from`)
    .map((s, i) => convertSource(ctx, s, `${field}.from[${i}]`, policyNs, l7));
  const when = ctx
    .list(rule.when, `${field}.when`)
    .map((w, i) => convertCondition(ctx, w, `${field}.when[${i}]`, l7));
  const clauses: AuthorizationClause[] = [];
  if (to.length > 0) clauses.push({ matches: to });
  if (from.length > 0) clauses.push({ matches: from });
  for (const m of when) clauses.push({ matches: [m] });
  return { clauses, l7: [...new Set(l7)].sort() };
}

/** A rule that can still fire at ztunnel: every clause keeps a non-empty match. */
function ruleIsEffective(r: AuthorizationRule): boolean {
  return r.clauses.every((c) => c.matches.length === 0 || c.matches.some((m) => !isEmptyMatch(m)));
}

function dryRunOf(ctx: ObjectContext): boolean {
  const v = ctx.annotations['istio.io/dry-run'];
  if (v === undefined) return false;
  if (['true', 'True', 'TRUE', '1', 't', 'T'].includes(v)) return true;
  if (['false', 'False', 'FALSE', '0', 'f', 'F'].includes(v)) return false;
  return ctx.fail(
    'metadata.annotations.istio.io/dry-run',
    `"${v}" is not a boolean`,
    'write "true" or "false"',
  );
}

export function compileAuthorizationPolicy(c: Compilation, ctx: ObjectContext): void {
  const spec = ctx.spec;
  ctx.onlyKeys(spec, 'spec', SPEC_KEYS);
  const dryRun = dryRunOf(ctx);
  const hasTargets = present(spec, 'targetRef') || present(spec, 'targetRefs');
  if (hasTargets && present(spec, 'selector')) {
    ctx.fail(
      'spec.selector',
      'cannot be combined with targetRef/targetRefs',
      'use either a selector (enforced by ztunnel) or targetRefs (enforced by the waypoint)',
    );
  }
  const action = ctx.str(spec.action, 'spec.action') ?? 'ALLOW';
  if (!ACTIONS.includes(action))
    ctx.fail('spec.action', `unknown action "${action}"`, `use one of ${ACTIONS.join(', ')}`);
  if (present(spec, 'provider') && action !== 'CUSTOM')
    ctx.fail('spec.provider', 'is only valid with action CUSTOM', 'remove provider or set action: CUSTOM');
  const rulesRaw = ctx.list(spec.rules, 'spec.rules');
  if (hasTargets) {
    ctx.note('targetRefs policy: enforced by the waypoint, not compiled for ztunnel');
    return;
  }
  if (action === 'AUDIT' || action === 'CUSTOM') {
    ctx.warn(
      'spec.action',
      `ztunnel does not support the ${action} action; this policy is not enforced at L4`,
    );
    return;
  }
  const selector = ctx.matchLabels(spec.selector, 'spec.selector');
  const isRoot = ctx.namespace === c.opts.rootNamespace;
  const policy: Authorization = {
    name: ctx.name,
    namespace: ctx.namespace,
    scope: selector ? 'WorkloadSelector' : isRoot ? 'Global' : 'Namespace',
    action: action === 'DENY' ? 'Deny' : 'Allow',
    rules: [],
    dryRun,
  };
  const rules: AuthorizationRule[] = [];
  rulesRaw.forEach((r, i) => {
    const field = `spec.rules[${i}]`;
    const converted = convertRule(ctx, r, field, ctx.namespace);
    const found = converted.l7.join(', ');
    if (converted.l7.length > 0 && policy.action === 'Allow') {
      ctx.warn(
        field,
        `ztunnel cannot enforce HTTP attributes (${found}); this ALLOW rule is dropped, which is more restrictive than requested (fail closed). Use a waypoint and targetRefs for L7 rules`,
      );
      return;
    }
    const rule = { clauses: converted.clauses };
    if (converted.l7.length > 0) {
      ctx.warn(
        field,
        ruleIsEffective(rule)
          ? `ztunnel cannot enforce HTTP attributes (${found}); this DENY rule is enforced without them, which is more restrictive than requested`
          : `ztunnel cannot enforce HTTP attributes (${found}); without them this DENY rule has no L4 condition left and never matches at ztunnel. Use a waypoint and targetRefs to enforce it`,
      );
    }
    rules.push(rule);
  });
  c.policies.push({ ...policy, rules });
  if (!selector) return;
  const key = policyKey(policy);
  for (const pod of c.pods) {
    if ((isRoot || pod.namespace === ctx.namespace) && selects(selector, pod.labels)) pod.policies.push(key);
  }
}
