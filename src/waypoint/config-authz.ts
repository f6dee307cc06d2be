/**
 * AuthorizationPolicy (security.istio.io v1/v1beta1) → L7 policies for this waypoint.
 *
 * Which policies apply: targetRefs (or the legacy targetRef) to this waypoint's Gateway (same
 * namespace), to the `istio-waypoint` GatewayClass from the root namespace, or to a Service in
 * the policy's namespace. Policies with a selector, or with neither selector nor targetRefs, are
 * ztunnel's and ignored here, as Istio's waypoints ignore them. Policies that do not apply to this
 * waypoint are not validated here either.
 *
 * meshd rejects, with an error, what it cannot enforce faithfully: CUSTOM (no ext-authz),
 * requestPrincipals and request.auth.* conditions (no JWT), connection.sni and experimental keys.
 */
import type { ObjectContext } from './config-reader.js';
import {
  readEnum,
  readList,
  readObject,
  readString,
  requireString,
  suggest,
  warnUnknownFields,
} from './config-reader.js';
import { buildCidrList, buildPathTemplate, buildStringPattern } from './authz-match.js';
import type { AuthzAttribute, AuthzClause, AuthzRule, AuthzValue, L7Policy } from './authz-types.js';

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';
export const WAYPOINT_GATEWAY_CLASS = 'istio-waypoint';

export type AuthzTarget = { kind: 'waypoint' } | { kind: 'service'; namespace: string; name: string };

export interface AuthzEnv {
  waypoint: { name: string; namespace: string };
  rootNamespace: string;
  serves: (service: { namespace: string; name: string }) => boolean;
}

const GATEWAY_GROUP = 'gateway.networking.k8s.io';

export const VALID_CONDITION_KEYS = [
  'request.headers[<name>]',
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'source.trustDomain',
  'destination.ip',
  'destination.port',
];

function readTargets(
  ctx: ObjectContext,
  spec: Record<string, unknown>,
  env: AuthzEnv,
): AuthzTarget[] | undefined {
  const refs: Array<[unknown, string]> = [];
  if (spec.targetRef !== undefined) refs.push([spec.targetRef, 'spec.targetRef']);
  readList(ctx, spec.targetRefs, 'spec.targetRefs', 16).forEach((r, i) =>
    refs.push([r, `spec.targetRefs[${i}]`]),
  );
  if (spec.selector !== undefined && refs.length > 0) {
    ctx.fail(
      'spec.selector',
      'selector cannot be combined with targetRef/targetRefs',
      'use either a selector (ztunnel) or targetRefs (waypoint)',
    );
  }
  if (spec.targetRef !== undefined && spec.targetRefs !== undefined) {
    ctx.fail(
      'spec.targetRef',
      'targetRef and targetRefs cannot both be set',
      'move the reference into targetRefs',
    );
  }
  if (refs.length === 0) return undefined;
  const targets: AuthzTarget[] = [];
  for (const [raw, f] of refs) {
    const r = readObject(ctx, raw, f) ?? {};
    warnUnknownFields(ctx, r, f, ['group', 'kind', 'name', 'namespace']);
    const group = readString(ctx, r.group, `${f}.group`) ?? '';
    const kind = requireString(ctx, r.kind, `${f}.kind`);
    const name = requireString(ctx, r.name, `${f}.name`, { nonEmpty: true });
    const ns = readString(ctx, r.namespace, `${f}.namespace`);
    if (ns !== undefined && ns !== ctx.namespace) {
      ctx.fail(
        `${f}.namespace`,
        'cross-namespace targetRefs are not supported',
        `put the policy in namespace ${ns}, or remove namespace`,
      );
    }
    if (kind === 'Gateway' && group === GATEWAY_GROUP) {
      if (name === env.waypoint.name && ctx.namespace === env.waypoint.namespace)
        targets.push({ kind: 'waypoint' });
    } else if (kind === 'GatewayClass' && group === GATEWAY_GROUP) {
      if (name === WAYPOINT_GATEWAY_CLASS && ctx.namespace === env.rootNamespace)
        targets.push({ kind: 'waypoint' });
    } else if (kind === 'Service' && (group === '' || group === 'core')) {
      if (env.serves({ namespace: ctx.namespace, name }))
        targets.push({ kind: 'service', namespace: ctx.namespace, name });
    } else if (kind === 'ServiceEntry' && group === 'networking.istio.io') {
      ctx.warn(f, 'ServiceEntry targets are not supported by meshd; this reference is ignored');
    } else {
      ctx.fail(
        `${f}.kind`,
        `cannot target ${kind} (group "${group}")`,
        'target a Gateway or GatewayClass (group gateway.networking.k8s.io) or a Service (group "")',
      );
    }
  }
  return targets;
}

function strings(ctx: ObjectContext, value: unknown, f: string): string[] | undefined {
  const list = readList(ctx, value, f).map((v, i) => requireString(ctx, v, `${f}[${i}]`, { nonEmpty: true }));
  return list.length === 0 ? undefined : list;
}

function cidrs(ctx: ObjectContext, list: string[], f: string): AuthzValue[] {
  const r = buildCidrList(list);
  if (!r.ok)
    ctx.fail(
      f,
      `"${r.bad}" is not an IP address or CIDR`,
      'write it like 10.0.0.0/8, 192.168.1.7 or fd00::/8',
    );
  return [{ kind: 'cidrs', list: r.list, text: list }];
}

function ports(ctx: ObjectContext, list: string[], f: string): AuthzValue[] {
  for (const p of list) {
    if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535)
      ctx.fail(f, `"${p}" is not a port`, 'write a port number from 1 to 65535, as a string');
  }
  return list.map((p) => ({ kind: 'string', pattern: { kind: 'exact', value: String(Number(p)) } }));
}

function paths(ctx: ObjectContext, list: string[], f: string): AuthzValue[] {
  return list.map((p) => {
    if (!p.includes('{')) return { kind: 'string', pattern: buildStringPattern(p) };
    const t = buildPathTemplate(p);
    if (!t.ok)
      ctx.fail(
        f,
        `invalid path template "${p}": ${t.reason}`,
        'use {*} for one segment and {**} (last) for the rest, e.g. /api/{*}/items/{**}',
      );
    return { kind: 'path-template', template: p, re: t.re };
  });
}

function serviceAccounts(ctx: ObjectContext, list: string[], f: string): AuthzValue[] {
  return list.map((sa) => {
    if (sa.includes('*'))
      ctx.fail(f, `"${sa}" contains a wildcard`, 'name service accounts exactly, as "sa" or "namespace/sa"');
    const parts = sa.split('/');
    if (parts.length > 2 || parts.some((x) => x === ''))
      ctx.fail(f, `"${sa}" is not "sa" or "namespace/sa"`, 'write "sa" or "namespace/sa"');
    const value = parts.length === 1 ? `${ctx.namespace}/${sa}` : sa;
    return { kind: 'string', pattern: { kind: 'exact', value } };
  });
}

type FieldSpec = [
  field: string,
  attribute: AuthzAttribute,
  negate: boolean,
  build: 'string' | 'lower' | 'cidr' | 'port' | 'path' | 'sa',
];

const SOURCE_FIELDS: FieldSpec[] = [
  ['principals', 'source.principal', false, 'string'],
  ['notPrincipals', 'source.principal', true, 'string'],
  ['namespaces', 'source.namespace', false, 'string'],
  ['notNamespaces', 'source.namespace', true, 'string'],
  ['serviceAccounts', 'source.serviceAccount', false, 'sa'],
  ['notServiceAccounts', 'source.serviceAccount', true, 'sa'],
  ['trustDomains', 'source.trustDomain', false, 'string'],
  ['notTrustDomains', 'source.trustDomain', true, 'string'],
  ['ipBlocks', 'source.ip', false, 'cidr'],
  ['notIpBlocks', 'source.ip', true, 'cidr'],
  ['remoteIpBlocks', 'remote.ip', false, 'cidr'],
  ['notRemoteIpBlocks', 'remote.ip', true, 'cidr'],
];

const OPERATION_FIELDS: FieldSpec[] = [
  ['hosts', 'request.host', false, 'lower'],
  ['notHosts', 'request.host', true, 'lower'],
  ['ports', 'destination.port', false, 'port'],
  ['notPorts', 'destination.port', true, 'port'],
  ['methods', 'request.method', false, 'string'],
  ['notMethods', 'request.method', true, 'string'],
  ['paths', 'request.path', false, 'path'],
  ['notPaths', 'request.path', true, 'path'],
];

function buildValues(ctx: ObjectContext, list: string[], f: string, build: FieldSpec[3]): AuthzValue[] {
  switch (build) {
    case 'string':
      return list.map((v) => ({ kind: 'string', pattern: buildStringPattern(v) }));
    case 'lower':
      return list.map((v) => ({ kind: 'string', pattern: buildStringPattern(v, true) }));
    case 'cidr':
      return cidrs(ctx, list, f);
    case 'port':
      return ports(ctx, list, f);
    case 'path':
      return paths(ctx, list, f);
    case 'sa':
      return serviceAccounts(ctx, list, f);
  }
}

function readClauses(
  ctx: ObjectContext,
  o: Record<string, unknown>,
  f: string,
  specs: FieldSpec[],
  extra: string[],
): AuthzClause[] {
  warnUnknownFields(ctx, o, f, [...specs.map((s) => s[0]), ...extra]);
  const clauses: AuthzClause[] = [];
  for (const [field, attribute, negate, build] of specs) {
    const list = strings(ctx, o[field], `${f}.${field}`);
    if (list) clauses.push({ attribute, negate, values: buildValues(ctx, list, `${f}.${field}`, build) });
  }
  return clauses;
}

function readSource(ctx: ObjectContext, value: unknown, f: string): AuthzClause[] {
  const o = readObject(ctx, value, f);
  if (!o) ctx.fail(f, 'is required', 'add source: {principals: [...]} or remove this from entry');
  for (const k of ['requestPrincipals', 'notRequestPrincipals']) {
    if (o[k] !== undefined)
      ctx.fail(
        `${f}.${k}`,
        'JWT request principals are not supported by meshd',
        `remove ${k}; meshd has no RequestAuthentication/JWT support`,
      );
  }
  if (o.serviceAccounts !== undefined && (o.principals !== undefined || o.namespaces !== undefined)) {
    ctx.fail(
      `${f}.serviceAccounts`,
      'cannot be combined with principals or namespaces',
      'use serviceAccounts alone, or principals/namespaces',
    );
  }
  const clauses = readClauses(ctx, o, f, SOURCE_FIELDS, ['requestPrincipals', 'notRequestPrincipals']);
  if (clauses.length === 0)
    ctx.fail(
      f,
      'is empty',
      'set at least one field (principals, namespaces, ipBlocks, …) or remove the entry',
    );
  return clauses;
}

function readOperation(ctx: ObjectContext, value: unknown, f: string): AuthzClause[] {
  const o = readObject(ctx, value, f);
  if (!o) ctx.fail(f, 'is required', 'add operation: {methods: [...]} or remove this to entry');
  const clauses = readClauses(ctx, o, f, OPERATION_FIELDS, []);
  if (clauses.length === 0)
    ctx.fail(f, 'is empty', 'set at least one field (hosts, ports, methods, paths, …) or remove the entry');
  return clauses;
}

function conditionTarget(
  ctx: ObjectContext,
  key: string,
  f: string,
): { attribute: AuthzAttribute; header?: string; build: FieldSpec[3] } {
  const header = /^request\.headers\[(.+)\]$/.exec(key);
  if (header)
    return { attribute: 'request.header', header: (header[1] ?? '').toLowerCase(), build: 'string' };
  const fixed: Record<string, [AuthzAttribute, FieldSpec[3]]> = {
    'source.ip': ['source.ip', 'cidr'],
    'remote.ip': ['remote.ip', 'cidr'],
    'source.namespace': ['source.namespace', 'string'],
    'source.principal': ['source.principal', 'string'],
    'source.serviceAccount': ['source.serviceAccount', 'sa'],
    'source.trustDomain': ['source.trustDomain', 'string'],
    'destination.ip': ['destination.ip', 'cidr'],
    'destination.port': ['destination.port', 'port'],
  };
  const hit = fixed[key];
  if (hit) return { attribute: hit[0], build: hit[1] };
  if (key.startsWith('request.auth.'))
    ctx.fail(f, `"${key}" needs JWT authentication, which meshd does not support`, 'remove this condition');
  if (key === 'connection.sni' || key.startsWith('experimental.'))
    ctx.fail(f, `"${key}" is not supported by meshd's waypoint`, 'remove this condition');
  ctx.fail(
    f,
    `unknown condition key "${key}"${suggest(key, Object.keys(fixed))}`,
    `use one of: ${VALID_CONDITION_KEYS.join(', ')}`,
  );
}

function readCondition(ctx: ObjectContext, value: unknown, f: string): AuthzClause[] {
  const o = readObject(ctx, value, f) ?? {};
  warnUnknownFields(ctx, o, f, ['key', 'values', 'notValues']);
  const key = requireString(ctx, o.key, `${f}.key`, { nonEmpty: true });
  const t = conditionTarget(ctx, key, `${f}.key`);
  const values = strings(ctx, o.values, `${f}.values`);
  const notValues = strings(ctx, o.notValues, `${f}.notValues`);
  if (!values && !notValues)
    ctx.fail(f, 'has neither values nor notValues', 'add values: [...] or notValues: [...]');
  const clauses: AuthzClause[] = [];
  if (values)
    clauses.push({
      attribute: t.attribute,
      header: t.header,
      negate: false,
      values: buildValues(ctx, values, `${f}.values`, t.build),
    });
  if (notValues)
    clauses.push({
      attribute: t.attribute,
      header: t.header,
      negate: true,
      values: buildValues(ctx, notValues, `${f}.notValues`, t.build),
    });
  return clauses;
}

function readRule(ctx: ObjectContext, value: unknown, f: string): AuthzRule {
  const o = readObject(ctx, value, f) ?? {};
  warnUnknownFields(ctx, o, f, ['from', 'to', 'when']);
  const from = readList(ctx, o.from, `${f}.from`, 512).map((x, i) => {
    const e = readObject(ctx, x, `${f}.from[${i}]`) ?? {};
    return readSource(ctx, e.source, `${f}.from[${i}].source`);
  });
  const to = readList(ctx, o.to, `${f}.to`, 512).map((x, i) => {
    const e = readObject(ctx, x, `${f}.to[${i}]`) ?? {};
    return readOperation(ctx, e.operation, `${f}.to[${i}].operation`);
  });
  const when = readList(ctx, o.when, `${f}.when`).flatMap((x, i) => readCondition(ctx, x, `${f}.when[${i}]`));
  return { from: from.length > 0 ? from : undefined, to: to.length > 0 ? to : undefined, when };
}

/** Undefined when the policy does not apply to this waypoint. */
export function compileAuthorizationPolicy(
  ctx: ObjectContext,
  spec: unknown,
  annotations: Record<string, string> | undefined,
  env: AuthzEnv,
): { targets: AuthzTarget[]; policy: L7Policy } | undefined {
  const s = readObject(ctx, spec, 'spec') ?? {};
  const targets = readTargets(ctx, s, env);
  if (!targets || targets.length === 0) return undefined;
  warnUnknownFields(ctx, s, 'spec', ['selector', 'rules', 'action', 'provider', 'targetRef', 'targetRefs']);
  const action = readEnum(ctx, s.action, 'spec.action', ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']) ?? 'ALLOW';
  if (action === 'CUSTOM') {
    ctx.fail(
      'spec.action',
      'CUSTOM (external authorization) is not supported by meshd',
      'use ALLOW, DENY or AUDIT; meshd has no ext-authz provider',
    );
  }
  if (s.provider !== undefined)
    ctx.fail('spec.provider', 'is only valid with action CUSTOM', 'remove provider');
  const rules = readList(ctx, s.rules, 'spec.rules', 512).map((r, i) => readRule(ctx, r, `spec.rules[${i}]`));
  const policy: L7Policy = {
    namespace: ctx.namespace,
    name: ctx.name,
    action,
    rules,
    dryRun: annotations?.[DRY_RUN_ANNOTATION] === 'true',
  };
  return { targets, policy };
}
