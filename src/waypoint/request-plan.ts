/**
 * buildRequestPlan: everything the waypoint decides about one HTTP request before it touches the
 * network, as one pure function. The order is Envoy's filter chain in an Istio waypoint:
 *   1. path normalization (a malformed path → 400);
 *   2. L7 authorization (deny → 403 "RBAC: access denied");
 *   3. route selection (routes attached but none matches → 404 NR; none attached → the Service);
 *   4. fault injection (delay DI, abort FI);
 *   5. the route's action: direct response (500 when no backend has weight), redirect, or a
 *      weighted backend (an invalid one → 500) with the request filters applied, plus the
 *      RequestMirror copies sampled for this request.
 * Header modifiers of a backendRef apply before the rule's own filters, so the rule's `set` wins
 * on a conflict (Envoy's default, most_specific_header_mutations_wins = false).
 */
import type { AuthzDecision } from './authz.js';
import { buildAuthzAttributes, evaluateL7Authorization, formatPolicyMatch } from './authz.js';
import type { WaypointConfig } from './config.js';
import {
  buildDefaultBackend,
  findAuthorizationPolicies,
  findFaultRoutes,
  findRouteEntries,
} from './config.js';
import type { FaultDecision } from './fault.js';
import { buildFaultDecision } from './fault.js';
import { applyHeaderModifier, applyUrlRewrite, buildRedirectLocation } from './filters.js';
import type {
  BackendService,
  DestinationService,
  HeaderMap,
  RequestClient,
  WaypointRequest,
} from './http-types.js';
import { normalizeRequestPath, parseQuery, splitPathAndQuery } from './path.js';
import type { Random, RandomBytes } from './random.js';
import { defaultRandomBytes } from './random.js';
import type { ResponseFlag, SyntheticResponse } from './response.js';
import { buildLocalReply } from './response.js';
import type { RetryPolicy } from './retry-policy.js';
import { ISTIO_DEFAULT_RETRY_POLICY } from './retry-policy.js';
import type { RouteSelection } from './route-select.js';
import { buildRouteSelection, chooseWeightedBackend } from './route-select.js';
import type { HeaderModifier, RouteRule, RouteTimeouts } from './route-types.js';
import type { OutgoingTrace } from './trace.js';
import { buildOutgoingTrace, buildRequestId } from './trace.js';

export interface RequestPlanInput {
  config: WaypointConfig;
  service: DestinationService;
  client: RequestClient;
  request: WaypointRequest;
  random: Random;
  randomBytes?: RandomBytes;
  newRequestId?: () => string;
}

export type { BackendService };

interface PlanCommon {
  authz: AuthzDecision | undefined;
  route: RouteSelection | undefined;
  fault: FaultDecision | undefined;
  /** Delay to apply before acting (fault injection); 0 when none. */
  delayMs: number;
  requestId: string;
  trace: OutgoingTrace;
}

export type RequestPlan =
  | (PlanCommon & { kind: 'respond'; response: SyntheticResponse })
  | (PlanCommon & {
      kind: 'forward';
      backend: BackendService;
      /** The request to send upstream: normalized, filtered, with x-request-id and trace headers. */
      upstreamRequest: { method: string; path: string; host: string; headers: HeaderMap };
      /** Apply to the upstream response headers, in order. */
      responseHeaderModifiers: readonly HeaderModifier[];
      /** Services that get a fire-and-forget copy of this request (RequestMirror, already sampled). */
      mirrors: BackendService[];
      retryPolicy: RetryPolicy;
      timeouts: RouteTimeouts;
      /** DI when a delay was injected; the runtime adds its own upstream flags. */
      responseFlags: ResponseFlag[];
    });

const NO_TIMEOUTS: RouteTimeouts = { requestMs: undefined, perTryMs: undefined };

export function buildRequestPlan(input: RequestPlanInput): RequestPlan {
  const { config, service, client, request, random } = input;
  const requestId = buildRequestId(request.headers, input.newRequestId);
  const trace = buildOutgoingTrace(request.headers, input.randomBytes ?? defaultRandomBytes);
  const common = { requestId, trace };
  const respond = (response: SyntheticResponse, extra: Partial<PlanCommon> = {}): RequestPlan => ({
    kind: 'respond',
    response,
    authz: undefined,
    route: undefined,
    fault: undefined,
    delayMs: 0,
    ...common,
    ...extra,
  });

  const norm = normalizeRequestPath(request.path);
  if (!norm.ok) return respond(buildLocalReply({ kind: 'bad-request', reason: norm.reason }));
  const { path, query } = splitPathAndQuery(norm.path);

  const attrs = buildAuthzAttributes(client, service, {
    host: request.host,
    method: request.method,
    path,
    headers: request.headers,
  });
  const authz = evaluateL7Authorization(findAuthorizationPolicies(config, service), attrs);
  if (!authz.allowed) {
    const matched = authz.policy ? formatPolicyMatch(authz.policy) : undefined;
    return respond(buildLocalReply({ kind: 'rbac-denied', matchedPolicy: matched }), { authz });
  }

  const parsedQuery = parseQuery(query);
  const matchable = { method: request.method, path, query: parsedQuery, headers: request.headers };
  const route = buildRouteSelection(findRouteEntries(config, service), service.port, matchable);
  if (route.kind === 'no-route') return respond(buildLocalReply({ kind: 'no-route' }), { authz, route });

  const fault = buildFaultDecision(
    findFaultRoutes(config, service),
    { ...matchable, host: request.host, port: service.port, sourceNamespace: attrs.source.namespace },
    random,
  );
  const delayMs = fault?.delayMs ?? 0;
  const ctx = { authz, route, fault, delayMs };
  if (fault?.abort) {
    const reply = buildLocalReply({
      kind: 'fault-abort',
      status: fault.abort.httpStatus,
      grpcStatus: fault.abort.grpcStatus,
      delayed: delayMs > 0,
    });
    return respond(reply, ctx);
  }
  const faultFlags = fault?.responseFlags ?? [];
  const withFaultFlags = (r: SyntheticResponse): SyntheticResponse => ({
    ...r,
    responseFlags: [...faultFlags, ...r.responseFlags],
  });

  const rule: RouteRule | undefined = route.kind === 'rule' ? route.rule : undefined;
  const headers: HeaderMap = {
    ...request.headers,
    'x-request-id': requestId,
    traceparent: trace.traceparent,
  };
  if (trace.tracestate !== undefined) headers.tracestate = trace.tracestate;
  else delete headers.tracestate;

  if (!rule) {
    return {
      kind: 'forward',
      ...ctx,
      ...common,
      backend: buildDefaultBackend(service, config.clusterDomain),
      upstreamRequest: { method: request.method, path: norm.path, host: request.host, headers },
      responseHeaderModifiers: [],
      mirrors: [],
      retryPolicy: ISTIO_DEFAULT_RETRY_POLICY,
      timeouts: NO_TIMEOUTS,
      responseFlags: [...faultFlags],
    };
  }

  const responseMods = rule.filters.flatMap((f) => (f.type === 'ResponseHeaderModifier' ? [f.modifier] : []));
  if (rule.directResponse)
    return respond(
      withFaultFlags(buildLocalReply({ kind: 'direct-response', status: rule.directResponse.status })),
      ctx,
    );

  const match = route.kind === 'rule' ? route.match.path : undefined;
  const redirect = rule.filters.find((f) => f.type === 'RequestRedirect');
  if (redirect) {
    const location = buildRedirectLocation(redirect.redirect, {
      path: norm.path,
      host: request.host,
      scheme: request.scheme ?? 'http',
      servicePort: service.port,
      match,
    });
    let outHeaders: HeaderMap = { location };
    for (const m of responseMods) outHeaders = applyHeaderModifier(outHeaders, m);
    const response: SyntheticResponse = {
      status: redirect.redirect.statusCode,
      headers: flattenHeaders(outHeaders),
      body: '',
      responseFlags: [...faultFlags],
      details: 'direct_response', // Envoy serves redirects as direct-response entries
    };
    return respond(response, ctx);
  }

  const backend = chooseWeightedBackend(rule.backends, random);
  if (!backend || backend.target.kind === 'Invalid') {
    const reason = backend?.target.kind === 'Invalid' ? backend.target.reason : 'no backend';
    return respond(withFaultFlags(buildLocalReply({ kind: 'invalid-backend', reason })), ctx);
  }

  let upstream = { path: norm.path, host: request.host };
  let upstreamHeaders = backend.requestHeaders
    ? applyHeaderModifier(headers, backend.requestHeaders)
    : headers;
  for (const f of rule.filters) {
    if (f.type === 'RequestHeaderModifier')
      upstreamHeaders = applyHeaderModifier(upstreamHeaders, f.modifier);
    else if (f.type === 'URLRewrite') upstream = applyUrlRewrite(f.rewrite, upstream, match);
  }
  const { target } = backend;
  return {
    kind: 'forward',
    ...ctx,
    ...common,
    backend: { namespace: target.namespace, name: target.name, hostname: target.hostname, port: target.port },
    upstreamRequest: {
      method: request.method,
      path: upstream.path,
      host: upstream.host,
      headers: upstreamHeaders,
    },
    responseHeaderModifiers: backend.responseHeaders
      ? [backend.responseHeaders, ...responseMods]
      : responseMods,
    mirrors: rule.filters.flatMap((f) =>
      f.type === 'RequestMirror' && f.mirror.target.kind === 'Service' && random() * 100 < f.mirror.percent
        ? [
            {
              namespace: f.mirror.target.namespace,
              name: f.mirror.target.name,
              hostname: f.mirror.target.hostname,
              port: f.mirror.target.port,
            },
          ]
        : [],
    ),
    retryPolicy: rule.retry ?? ISTIO_DEFAULT_RETRY_POLICY,
    timeouts: rule.timeouts,
    responseFlags: [...faultFlags],
  };
}

/** Repeated headers joined with ", " for a synthetic response. */
function flattenHeaders(h: HeaderMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (v !== undefined) out[k] = typeof v === 'string' ? v : v.join(', ');
  return out;
}
