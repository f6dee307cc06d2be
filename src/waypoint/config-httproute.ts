/**
 * HTTPRoute (gateway.networking.k8s.io) with Service parentRefs (GAMMA mesh routes) → RouteRules,
 * translated as Istio translates them (pilot/pkg/config/kube/gateway/conversion.go).
 *
 * Choices where Istio and Gateway API leave room, and where meshd differs:
 * - only producer routes apply (route namespace = Service namespace). A waypoint is a
 *   destination-side proxy and Istio applies only those there; consumer routes get a warning;
 * - `spec.hostnames` is ignored for Service parents, as Istio does (the Service names the host);
 * - parentRefs to the waypoint's own Gateway, ServiceEntry parents and `sectionName` on a Service
 *   parent are not supported and get a warning (the parentRef is skipped);
 * - cross-namespace backendRefs need no ReferenceGrant in mesh routes (Istio enforces grants only
 *   for Gateway parents);
 * - RequestMirror (rule level, several allowed) sends a fire-and-forget copy as Envoy's request
 *   mirror policy does; CORS, ExtensionRef and ExternalAuth are errors (Istio rejects unsupported
 *   filters with InvalidFilter);
 * - a backendRef to a missing Service or an unsupported kind stays in the split and gets 500, as
 *   in Istio; existence is checked only when the input contains Service objects at all.
 */
import type { KubeObject } from '../config-source/kube.js';
import type { ObjectContext } from './config-reader.js';
import {
  readInt,
  readList,
  readObject,
  readString,
  requireString,
  warnUnknownFields,
} from './config-reader.js';
import { readHeaderModifier, readRedirect, readRewrite, readRouteMatch } from './config-route-parts.js';
import { parseGatewayDuration } from './durations.js';
import { buildHttpRouteRetryPolicy, ISTIO_DEFAULT_RETRY_POLICY } from './retry-policy.js';
import type { RetryPolicy } from './retry-policy.js';
import type {
  BackendTarget,
  HeaderModifier,
  RequestMirror,
  RouteFilter,
  RouteMatch,
  RouteRule,
  RouteTimeouts,
  WeightedBackend,
} from './route-types.js';

/** HTTPRoute annotation that lets retries cover non-idempotent methods (see retry-policy.ts). */
export const RETRY_NON_IDEMPOTENT_ANNOTATION = 'retry.meshd.io/non-idempotent';

export interface RouteEnv {
  clusterDomain: string;
  waypoint: { name: string; namespace: string };
  /** Undefined when the input holds no Service objects (existence cannot be checked). */
  serviceExists: ((namespace: string, name: string) => boolean) | undefined;
  /** Whether this waypoint serves the Service; routes for other Services are skipped unvalidated. */
  serves: (service: { namespace: string; name: string }) => boolean;
}

export interface CompiledHttpRoute {
  parents: Array<{ namespace: string; name: string; port: number | undefined }>;
  rules: RouteRule[];
}

const GATEWAY_GROUP = 'gateway.networking.k8s.io';

function isCoreGroup(g: string | undefined): boolean {
  return g === '' || g === 'core';
}

export function parseCreationTimestamp(ctx: ObjectContext, obj: KubeObject): number {
  const raw: unknown = obj.metadata.creationTimestamp;
  if (raw === undefined || raw === null) return Number.POSITIVE_INFINITY;
  if (raw instanceof Date) return raw.getTime();
  const t = typeof raw === 'string' ? Date.parse(raw) : NaN;
  if (Number.isNaN(t)) {
    ctx.fail(
      'metadata.creationTimestamp',
      `${JSON.stringify(raw)} is not an RFC 3339 time`,
      'write it like 2024-05-01T12:00:00Z or remove it',
    );
  }
  return t;
}

function readParents(
  ctx: ObjectContext,
  spec: Record<string, unknown>,
  env: RouteEnv,
): CompiledHttpRoute['parents'] {
  const parents: CompiledHttpRoute['parents'] = [];
  readList(ctx, spec.parentRefs, 'spec.parentRefs', 32).forEach((item, i) => {
    const f = `spec.parentRefs[${i}]`;
    const p = readObject(ctx, item, f) ?? {};
    warnUnknownFields(ctx, p, f, ['group', 'kind', 'namespace', 'name', 'sectionName', 'port']);
    const group = readString(ctx, p.group, `${f}.group`) ?? GATEWAY_GROUP;
    const kind = readString(ctx, p.kind, `${f}.kind`) ?? 'Gateway';
    const name = requireString(ctx, p.name, `${f}.name`, { nonEmpty: true });
    const namespace = readString(ctx, p.namespace, `${f}.namespace`) ?? ctx.namespace;
    const port = readInt(ctx, p.port, `${f}.port`, { min: 1, max: 65535 });
    if (kind === 'Service' && isCoreGroup(group)) {
      if (!env.serves({ namespace, name })) {
        // Another waypoint's (or no waypoint's) Service: not ours to apply or to judge.
      } else if (p.sectionName !== undefined) {
        ctx.warn(
          `${f}.sectionName`,
          'sectionName is not supported on a Service parent; this parentRef is skipped (use port)',
        );
      } else if (namespace !== ctx.namespace) {
        ctx.warn(
          f,
          `consumer route (Service in namespace ${namespace}) is not applied by waypoints; put the HTTPRoute in namespace ${namespace}`,
        );
      } else if (env.serviceExists && !env.serviceExists(namespace, name)) {
        ctx.warn(f, `parent Service ${namespace}/${name} not found; this parentRef is skipped`);
      } else if (!parents.some((q) => q.namespace === namespace && q.name === name && q.port === port)) {
        parents.push({ namespace, name, port });
      }
    } else if (
      kind === 'Gateway' &&
      group === GATEWAY_GROUP &&
      name === env.waypoint.name &&
      namespace === env.waypoint.namespace
    ) {
      ctx.warn(
        f,
        'routes attached to the waypoint Gateway are not applied; attach the route to a Service (kind: Service, group: "")',
      );
    } else if (kind !== 'Gateway') {
      ctx.warn(
        f,
        `parent kind ${kind} (group "${group}") is not supported by the waypoint; use kind: Service`,
      );
    }
  });
  return parents;
}

const FILTER_FIELDS: Record<string, string> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  RequestMirror: 'requestMirror',
  CORS: 'cors',
  ExtensionRef: 'extensionRef',
  ExternalAuth: 'externalAuth',
};

function readFilters(
  ctx: ObjectContext,
  value: unknown,
  field: string,
  backendLevel: boolean,
  env: RouteEnv,
): RouteFilter[] {
  const out: RouteFilter[] = [];
  const seen = new Set<string>();
  readList(ctx, value, field, 16).forEach((item, i) => {
    const f = `${field}[${i}]`;
    const o = readObject(ctx, item, f) ?? {};
    warnUnknownFields(ctx, o, f, ['type', ...Object.values(FILTER_FIELDS)]);
    const type = requireString(ctx, o.type, `${f}.type`);
    const own = FILTER_FIELDS[type];
    if (own === undefined)
      ctx.fail(
        `${f}.type`,
        `unknown filter type "${type}"`,
        `use one of ${Object.keys(FILTER_FIELDS).join(', ')}`,
      );
    for (const other of Object.values(FILTER_FIELDS)) {
      if (other !== own && o[other] !== undefined)
        ctx.fail(`${f}.${other}`, `must not be set for type ${type}`, `remove ${other} or change type`);
    }
    if (type !== 'RequestMirror' && type !== 'ExtensionRef') {
      if (seen.has(type))
        ctx.fail(`${f}.type`, `${type} appears more than once`, 'merge them into one filter');
      seen.add(type);
    }
    const supportedHere = backendLevel
      ? ['RequestHeaderModifier', 'ResponseHeaderModifier']
      : ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'RequestMirror'];
    if (!supportedHere.includes(type)) {
      ctx.fail(
        `${f}.type`,
        `filter type ${type} is not supported${backendLevel ? ' on a backendRef' : ''}`,
        `remove the filter; supported here: ${supportedHere.join(', ')}`,
      );
    }
    const body = o[own];
    if (type === 'RequestHeaderModifier' || type === 'ResponseHeaderModifier') {
      out.push({ type, modifier: readHeaderModifier(ctx, body, `${f}.${own}`) });
    } else if (type === 'RequestRedirect') {
      out.push({ type, redirect: readRedirect(ctx, body, `${f}.${own}`) });
    } else if (type === 'RequestMirror') {
      out.push({ type, mirror: readMirror(ctx, body, `${f}.${own}`, env) });
    } else {
      out.push({ type: 'URLRewrite', rewrite: readRewrite(ctx, body, `${f}.${own}`) });
    }
  });
  return out;
}

/** requestMirror: {backendRef, percent | fraction}. */
function readMirror(ctx: ObjectContext, value: unknown, f: string, env: RouteEnv): RequestMirror {
  const o = readObject(ctx, value, f) ?? {};
  warnUnknownFields(ctx, o, f, ['backendRef', 'percent', 'fraction']);
  if (o.backendRef === undefined)
    ctx.fail(
      `${f}.backendRef`,
      'is required',
      'name the Service to mirror to, e.g. {name: reviews-v2, port: 9080}',
    );
  const backend = readBackend(ctx, o.backendRef, `${f}.backendRef`, env, 'mirror');
  const percent = readInt(ctx, o.percent, `${f}.percent`, { min: 0, max: 100 });
  let share = percent ?? 100;
  if (o.fraction !== undefined) {
    if (percent !== undefined)
      ctx.fail(`${f}.fraction`, 'must not be set together with percent', 'keep one of percent and fraction');
    const fr = readObject(ctx, o.fraction, `${f}.fraction`) ?? {};
    warnUnknownFields(ctx, fr, `${f}.fraction`, ['numerator', 'denominator']);
    const numerator = readInt(ctx, fr.numerator, `${f}.fraction.numerator`, { min: 0 }) ?? 0;
    const denominator = readInt(ctx, fr.denominator, `${f}.fraction.denominator`, { min: 1 }) ?? 100;
    if (numerator > denominator)
      ctx.fail(
        `${f}.fraction`,
        `${numerator}/${denominator} is more than 1`,
        'use a numerator no larger than the denominator',
      );
    share = (100 * numerator) / denominator;
  }
  return {
    target: backend?.target ?? { kind: 'Invalid', reason: 'mirror backendRef has weight 0' },
    percent: share,
  };
}

function readBackend(
  ctx: ObjectContext,
  item: unknown,
  f: string,
  env: RouteEnv,
  role: 'backend' | 'mirror' = 'backend',
): WeightedBackend | undefined {
  const lost = role === 'mirror' ? 'nothing is mirrored to it' : 'its share of requests gets 500';
  const o = readObject(ctx, item, f) ?? {};
  warnUnknownFields(ctx, o, f, ['group', 'kind', 'name', 'namespace', 'port', 'weight', 'filters']);
  const group = readString(ctx, o.group, `${f}.group`) ?? '';
  const kind = readString(ctx, o.kind, `${f}.kind`) ?? 'Service';
  const name = requireString(ctx, o.name, `${f}.name`, { nonEmpty: true, maxLength: 253 });
  const namespace = readString(ctx, o.namespace, `${f}.namespace`) ?? ctx.namespace;
  const port = readInt(ctx, o.port, `${f}.port`, { min: 1, max: 65535 });
  const weight = readInt(ctx, o.weight, `${f}.weight`, { min: 0, max: 1_000_000 }) ?? 1;
  const filters = readFilters(ctx, o.filters, `${f}.filters`, true, env);
  if (weight === 0) return undefined;
  let target: BackendTarget;
  if (kind === 'Service' && isCoreGroup(group)) {
    if (name.includes('.'))
      ctx.fail(
        `${f}.name`,
        `"${name}" looks like a hostname`,
        'use the name of the Service, not its DNS name',
      );
    if (port === undefined)
      ctx.fail(
        `${f}.port`,
        'is required when the backend is a Service',
        'add the Service port, e.g. port: 8080',
      );
    const hostname = `${name}.${namespace}.svc.${env.clusterDomain}`;
    if (env.serviceExists && !env.serviceExists(namespace, name)) {
      ctx.warn(f, `backend Service ${namespace}/${name} not found; ${lost}`);
      target = { kind: 'Invalid', reason: `backend(${hostname}) not found` };
    } else {
      target = { kind: 'Service', namespace, name, hostname, port };
    }
  } else {
    ctx.warn(f, `backendRef kind ${kind} (group "${group}") is not supported; ${lost}`);
    target = { kind: 'Invalid', reason: `unsupported backendRef group "${group}" kind "${kind}"` };
  }
  const modifier = (t: RouteFilter['type']): HeaderModifier | undefined => {
    const flt = filters.find((x) => x.type === t);
    return flt && 'modifier' in flt ? flt.modifier : undefined;
  };
  return {
    target,
    weight,
    requestHeaders: modifier('RequestHeaderModifier'),
    responseHeaders: modifier('ResponseHeaderModifier'),
  };
}

function readDuration(ctx: ObjectContext, value: unknown, field: string): number | undefined {
  const s = readString(ctx, value, field);
  if (s === undefined) return undefined;
  const ms = parseGatewayDuration(s);
  if (ms === undefined)
    ctx.fail(
      field,
      `"${s}" is not a Gateway API duration`,
      'write it like 500ms, 10s, 1m or 1h30m (units h, m, s, ms)',
    );
  return ms;
}

function readRetryAndTimeouts(
  ctx: ObjectContext,
  rule: Record<string, unknown>,
  f: string,
  nonIdempotent: boolean,
): { retry: RetryPolicy | undefined; timeouts: RouteTimeouts } {
  const t = readObject(ctx, rule.timeouts, `${f}.timeouts`) ?? {};
  warnUnknownFields(ctx, t, `${f}.timeouts`, ['request', 'backendRequest']);
  const request = readDuration(ctx, t.request, `${f}.timeouts.request`);
  const backend = readDuration(ctx, t.backendRequest, `${f}.timeouts.backendRequest`);
  if (request !== undefined && request !== 0 && backend !== undefined && backend > request) {
    ctx.fail(
      `${f}.timeouts.backendRequest`,
      'is longer than timeouts.request',
      'make backendRequest at most the request timeout',
    );
  }
  const r = readObject(ctx, rule.retry, `${f}.retry`);
  // Without a stanza the waypoint default applies; the annotation still lifts the method guard.
  let retry: RetryPolicy | undefined = nonIdempotent
    ? Object.freeze({ ...ISTIO_DEFAULT_RETRY_POLICY, retryNonIdempotent: true })
    : undefined;
  if (r) {
    warnUnknownFields(ctx, r, `${f}.retry`, ['attempts', 'codes', 'backoff']);
    const codes = readList(ctx, r.codes, `${f}.retry.codes`).map(
      (c, i) => readInt(ctx, c, `${f}.retry.codes[${i}]`, { min: 400, max: 599 }) ?? 0,
    );
    retry = buildHttpRouteRetryPolicy({
      attempts: readInt(ctx, r.attempts, `${f}.retry.attempts`, { min: 0 }),
      codes,
      backoffMs: readDuration(ctx, r.backoff, `${f}.retry.backoff`),
      perTryTimeoutMs: backend === 0 ? undefined : backend,
      retryNonIdempotent: nonIdempotent,
    });
  }
  // Istio: request → route timeout (0 = none); backendRequest → per-try timeout when a retry
  // stanza exists, otherwise it *becomes* the route timeout (overriding request).
  let requestMs = request === 0 ? undefined : request;
  if (!r && backend !== undefined && backend !== 0) requestMs = backend;
  return { retry, timeouts: { requestMs, perTryMs: r ? retry?.perTryTimeoutMs : undefined } };
}

function usesPrefixRewrite(filters: readonly RouteFilter[]): boolean {
  return filters.some(
    (x) =>
      (x.type === 'RequestRedirect' && x.redirect.path?.kind === 'ReplacePrefixMatch') ||
      (x.type === 'URLRewrite' && x.rewrite.path?.kind === 'ReplacePrefixMatch'),
  );
}

export function compileHttpRoute(
  ctx: ObjectContext,
  obj: KubeObject,
  createdAt: number,
  env: RouteEnv,
): CompiledHttpRoute {
  const spec = readObject(ctx, obj.spec, 'spec') ?? {};
  warnUnknownFields(ctx, spec, 'spec', ['parentRefs', 'hostnames', 'rules']);
  const parents = readParents(ctx, spec, env);
  if (readList(ctx, spec.hostnames, 'spec.hostnames', 16).length > 0 && parents.length > 0) {
    ctx.warn('spec.hostnames', 'hostnames are ignored for Service parents; the Service is the host');
  }
  // A route attached to nothing this waypoint serves (an ingress Gateway, another waypoint's
  // Service) is not validated further: its problems are not this waypoint's to report.
  if (parents.length === 0) return { parents, rules: [] };
  const nonIdempotent = obj.metadata.annotations?.[RETRY_NON_IDEMPOTENT_ANNOTATION] === 'true';
  const rawRules = spec.rules === undefined ? [{}] : readList(ctx, spec.rules, 'spec.rules', 16);
  const rules = rawRules.map((item, ruleIndex): RouteRule => {
    const f = `spec.rules[${ruleIndex}]`;
    const rule = readObject(ctx, item, f) ?? {};
    warnUnknownFields(ctx, rule, f, [
      'name',
      'matches',
      'filters',
      'backendRefs',
      'timeouts',
      'retry',
      'sessionPersistence',
    ]);
    if (rule.sessionPersistence !== undefined)
      ctx.warn(`${f}.sessionPersistence`, 'session persistence is not supported; ignored');
    const rawMatches = rule.matches === undefined ? [{}] : readList(ctx, rule.matches, `${f}.matches`, 64);
    const matches: RouteMatch[] = rawMatches.map((m, i) => readRouteMatch(ctx, m, `${f}.matches[${i}]`));
    const filters = readFilters(ctx, rule.filters, `${f}.filters`, false, env);
    const rawBackends = readList(ctx, rule.backendRefs, `${f}.backendRefs`, 16);
    const hasRedirect = filters.some((x) => x.type === 'RequestRedirect');
    if (hasRedirect && filters.some((x) => x.type === 'URLRewrite')) {
      ctx.fail(
        `${f}.filters`,
        'RequestRedirect and URLRewrite cannot be used together',
        'keep only one of them',
      );
    }
    if (hasRedirect && rawBackends.length > 0) {
      ctx.fail(
        `${f}.backendRefs`,
        'a rule with a RequestRedirect filter cannot have backendRefs',
        'remove backendRefs or the redirect',
      );
    }
    if (usesPrefixRewrite(filters) && (matches.length !== 1 || matches[0]?.path.kind !== 'PathPrefix')) {
      ctx.fail(
        `${f}.matches`,
        'ReplacePrefixMatch needs exactly one match, of type PathPrefix',
        'use a single PathPrefix match in this rule, or ReplaceFullPath',
      );
    }
    if (rawBackends.length === 0 && !hasRedirect) {
      ctx.warn(
        f,
        'rule has no backendRefs and no RequestRedirect: requests it matches get 500 (as in Istio)',
      );
    }
    const backends = rawBackends
      .map((b, i) => readBackend(ctx, b, `${f}.backendRefs[${i}]`, env))
      .filter((b): b is WeightedBackend => b !== undefined);
    const { retry, timeouts } = readRetryAndTimeouts(ctx, rule, f, nonIdempotent);
    return {
      route: { namespace: ctx.namespace, name: ctx.name, createdAt },
      ruleIndex,
      ruleName: readString(ctx, rule.name, `${f}.name`, { maxLength: 253 }),
      matches,
      filters,
      backends,
      directResponse: backends.length === 0 && !hasRedirect ? { status: 500 } : undefined,
      retry,
      timeouts,
    };
  });
  return { parents, rules };
}
