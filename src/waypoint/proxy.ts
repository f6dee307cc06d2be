/**
 * proxyRequest: one HTTP request through the waypoint, the loop documented in index.ts, on real
 * streams: plan → fault delay → local reply, or forward with retries (least-request endpoint,
 * per-try and route timeouts, retry budget, circuit breaker, outlier detection) → stream the
 * response → metrics and one access-log line.
 *
 * Invariants:
 * - the request body is read only as fast as the current attempt takes it, and kept for a retry
 *   only while it fits in the retry buffer (request-body.ts);
 * - every cluster grant (request slot, active-request count, retry slot) is released exactly
 *   once, whatever way the request ends;
 * - once response headers went to the client there is no retry; a later failure resets the
 *   client's stream instead of completing a truncated body;
 * - telemetry is recorded exactly once per request.
 */
import type { Logger } from '../telemetry/index.js';
import type { DownstreamExchange } from './downstream.js';
import type { DestinationService, RequestClient } from './http-types.js';
import { headerValue } from './http-types.js';
import type { WaypointRequestMetrics } from './metrics.js';
import type { Clock, Random } from './random.js';
import { RequestBody } from './request-body.js';
import type { RequestPlan } from './request-plan.js';
import { buildRequestPlan } from './request-plan.js';
import type { RequestRecord } from './request-log.js';
import { recordRequestEnd } from './request-log.js';
import type { ResponseFlag, SyntheticResponse } from './response.js';
import { buildLocalReply } from './response.js';
import { proxyToDownstream, sendSyntheticResponse } from './proxy-response.js';
import type { AttemptOutcome } from './retry-policy.js';
import type { RetryDecision } from './retry-state.js';
import { RetryState } from './retry-state.js';
import type { UpstreamCluster, UpstreamClusterSet } from './upstream-cluster.js';
import { findBackendCluster } from './backend-endpoints.js';
import { buildDefaultBackend } from './config.js';
import { proxyToMirrors } from './mirror.js';
import type { UpstreamConnections } from './upstream-pool.js';
import type { AttemptResult, UpstreamEndpoint } from './upstream-types.js';
import type { WaypointView } from './view.js';

export interface ProxyDeps {
  view(): WaypointView;
  clusters: UpstreamClusterSet;
  connections: UpstreamConnections;
  metrics: WaypointRequestMetrics;
  /** Access log (one line per request). */
  accessLog: Logger;
  random: Random;
  clock: Clock;
}

/** What the tunnel told us about the connection a request arrived on. */
export interface InboundContext {
  connectionId: string;
  service: DestinationService;
  client: RequestClient;
}

export type ForwardPlan = Extract<RequestPlan, { kind: 'forward' }>;

export interface Outcome {
  status: number;
  grpcStatus: number | undefined;
  flags: ResponseFlag[];
  details: string;
  bytesSent: number;
  upstream: UpstreamEndpoint | undefined;
  attempts: number;
}

export function proxyRequest(deps: ProxyDeps, conn: InboundContext, ex: DownstreamExchange): Promise<void> {
  const body = new RequestBody(ex.body);
  return runRequest(deps, conn, ex, {
    forward: (view, plan, started) => forward(deps, view, plan, ex, body, started),
    skipBody: () => body.discard(),
    bytesReceived: () => body.bytes,
  });
}

/** How one kind of request is forwarded (the rest of its life is runRequest's). */
export interface RequestHandler {
  forward(view: WaypointView, plan: ForwardPlan, started: number): Promise<Outcome>;
  /** The request is answered without forwarding: stop reading its body. */
  skipBody(): void;
  /** Request bytes received, for telemetry (read once the request ended). */
  bytesReceived(): number;
}

/**
 * The life of every request: the plan, an injected delay, then a local answer or the handler's
 * forward, then metrics and the access log (once).
 */
export async function runRequest(
  deps: ProxyDeps,
  conn: InboundContext,
  ex: DownstreamExchange,
  handler: RequestHandler,
): Promise<void> {
  const started = deps.clock();
  const view = deps.view();
  const plan = buildRequestPlan({
    config: view.config,
    service: conn.service,
    client: conn.client,
    request: { method: ex.method, path: ex.target, host: ex.authority, headers: ex.headers, scheme: 'http' },
    random: deps.random,
  });
  let outcome: Outcome;
  if (plan.delayMs > 0) await waitOrClientGone(plan.delayMs, ex);
  if (ex.aborted) {
    handler.skipBody();
    outcome = local(
      0,
      ['DC', ...(plan.delayMs > 0 ? (['DI'] as const) : [])],
      'downstream_remote_disconnect',
    );
  } else if (plan.kind === 'respond') {
    handler.skipBody();
    outcome = reply(ex, plan.response);
  } else {
    outcome = await handler.forward(view, plan, started);
  }
  finishRequest(deps, view, conn, ex, plan, outcome, handler.bytesReceived(), started);
}

/** Metrics and the access-log line of one finished request (exactly once per request). */
function finishRequest(
  deps: ProxyDeps,
  view: WaypointView,
  conn: InboundContext,
  ex: DownstreamExchange,
  plan: RequestPlan,
  outcome: Outcome,
  bytesReceived: number,
  started: number,
): void {
  // Workload-addressed traffic has no destination Service: Istio's labels say `unknown`.
  const backend = plan.kind === 'forward' && plan.backend.workloadIp === undefined ? plan.backend : undefined;
  const record: RequestRecord = {
    connectionId: conn.connectionId,
    requestId: plan.requestId,
    traceId: plan.trace.traceId,
    protocol: ex.protocol,
    method: ex.method,
    path: ex.target,
    authority: ex.authority,
    client: conn.client,
    service:
      backend ??
      (conn.service.workload ? undefined : buildDefaultBackend(conn.service, view.config.clusterDomain)),
    grpc: (headerValue(ex.headers, 'content-type') ?? '').startsWith('application/grpc'),
    responseCode: outcome.status,
    grpcStatus: outcome.grpcStatus,
    responseFlags: outcome.flags,
    details: outcome.details,
    route: plan.route?.kind === 'rule' ? describeRoute(plan.route.rule) : undefined,
    upstreamHost: outcome.upstream?.key,
    upstreamWorkload: outcome.upstream?.workload,
    attempts: outcome.attempts,
    bytesReceived,
    bytesSent: outcome.bytesSent,
    durationMs: deps.clock() - started,
  };
  recordRequestEnd(view.state, deps.metrics, deps.accessLog, record);
}

function describeRoute(rule: { route: { namespace: string; name: string }; ruleIndex: number }): string {
  return `${rule.route.namespace}/${rule.route.name}[${rule.ruleIndex}]`;
}

export function local(status: number, flags: readonly ResponseFlag[], details: string): Outcome {
  return {
    status,
    grpcStatus: undefined,
    flags: [...flags],
    details,
    bytesSent: 0,
    upstream: undefined,
    attempts: 0,
  };
}

export function reply(ex: DownstreamExchange, r: SyntheticResponse, extra: Partial<Outcome> = {}): Outcome {
  const bytesSent = sendSyntheticResponse(ex, r);
  const grpc = r.headers['grpc-status'];
  return {
    status: r.status,
    grpcStatus: grpc === undefined ? undefined : Number(grpc),
    flags: [...r.responseFlags],
    details: r.details,
    bytesSent,
    upstream: undefined,
    attempts: 0,
    ...extra,
    ...(extra.flags ? { flags: [...extra.flags, ...r.responseFlags] } : {}),
  };
}

function waitOrClientGone(ms: number, ex: DownstreamExchange): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    ex.onClose(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function forward(
  deps: ProxyDeps,
  view: WaypointView,
  plan: ForwardPlan,
  ex: DownstreamExchange,
  body: RequestBody,
  started: number,
): Promise<Outcome> {
  const planFlags = plan.responseFlags;
  const { cluster, endpoints } = findBackendCluster(deps.clusters, view, plan.backend);
  const slot = cluster.circuitBreaker.tryAcquire('request');
  if (!slot.ok) {
    body.discard();
    return reply(ex, buildLocalReply({ kind: 'overflow' }), { flags: planFlags });
  }
  if (plan.mirrors.length > 0)
    proxyToMirrors(
      deps,
      view,
      plan.mirrors,
      {
        protocol: ex.protocol,
        ...plan.upstreamRequest,
        headers: withForwardedProto(plan.upstreamRequest.headers),
      },
      ex.body,
      plan.timeouts.requestMs,
    );
  try {
    return await attemptLoop(deps, plan, ex, body, started, cluster, endpoints.byKey);
  } finally {
    slot.release();
  }
}

async function attemptLoop(
  deps: ProxyDeps,
  plan: ForwardPlan,
  ex: DownstreamExchange,
  body: RequestBody,
  started: number,
  cluster: UpstreamCluster,
  byKey: ReadonlyMap<string, UpstreamEndpoint>,
): Promise<Outcome> {
  const retry = new RetryState(plan.retryPolicy, ex.method, deps.random);
  const flags: ResponseFlag[] = [...plan.responseFlags];
  const { requestMs, perTryMs } = plan.timeouts;
  const remaining = (): number | undefined =>
    requestMs === undefined ? undefined : Math.max(0, requestMs - (deps.clock() - started));
  const fail = (r: SyntheticResponse, upstream?: UpstreamEndpoint): Outcome => {
    body.discard();
    return reply(ex, r, { flags, upstream, attempts: retry.attempts });
  };
  let releaseRetry: (() => void) | undefined;
  const endRetry = (): void => {
    releaseRetry?.();
    releaseRetry = undefined;
  };
  try {
    for (;;) {
      if (ex.aborted)
        return { ...local(0, [...flags, 'DC'], 'downstream_remote_disconnect'), attempts: retry.attempts };
      const choice = cluster.chooseHost(retry.triedHosts, plan.retryPolicy.hostSelectionMaxAttempts);
      const endpoint = choice.ok ? byKey.get(choice.host) : undefined;
      if (!endpoint) return fail(buildLocalReply({ kind: 'no-healthy-upstream' }));
      const left = remaining();
      if (left === 0) return fail(buildLocalReply({ kind: 'request-timeout' }), endpoint);
      const tryMs = perTryMs === undefined ? left : left === undefined ? perTryMs : Math.min(perTryMs, left);
      const routeBound = left !== undefined && (perTryMs === undefined || left <= perTryMs);
      retry.beginAttempt(endpoint.key);
      const done = cluster.startRequest(endpoint.key);
      const attempt = deps.connections.send(
        endpoint,
        {
          protocol: ex.protocol,
          ...plan.upstreamRequest,
          headers: withForwardedProto(plan.upstreamRequest.headers),
        },
        body,
        cluster.policy,
      );
      const timer =
        tryMs === undefined
          ? undefined
          : setTimeout(() => attempt.abort('timeout', `no response headers within ${tryMs} ms`), tryMs);
      const onGone = (): void => {
        if (ex.aborted) attempt.abort('reset', 'the client went away');
      };
      ex.onClose(onGone);
      const result: AttemptResult = await attempt.result;
      clearTimeout(timer);
      if (ex.aborted) {
        if (result.ok) result.response.abort();
        done();
        return {
          ...local(0, [...flags, 'DC'], 'downstream_remote_disconnect'),
          upstream: endpoint,
          attempts: retry.attempts,
        };
      }
      const outcome: AttemptOutcome = result.ok
        ? { kind: 'response', status: result.response.status, grpcStatus: result.response.grpcStatus }
        : { kind: 'failure', failure: result.failure };
      cluster.recordOutcome(endpoint.key, outcome);
      if (!result.ok && result.failure === 'timeout' && routeBound) {
        done();
        return fail(buildLocalReply({ kind: 'request-timeout' }), endpoint);
      }
      endRetry();
      const decision: RetryDecision = body.replayable
        ? retry.decide(outcome, cluster.circuitBreaker)
        : { retry: false, reason: 'not-retriable', responseFlags: [] };
      if (decision.retry) {
        if (result.ok) result.response.discard();
        done();
        releaseRetry = decision.releaseRetry;
        const budget = remaining();
        if (budget !== undefined && decision.backoffMs >= budget) {
          await sleep(budget);
          return fail(buildLocalReply({ kind: 'request-timeout' }), endpoint);
        }
        await sleep(decision.backoffMs);
        continue;
      }
      if (!result.ok) {
        done();
        const r = buildLocalReply({
          kind: 'upstream-failure',
          failure: result.failure,
          retryLimitExceeded: decision.responseFlags.includes('URX'),
        });
        return fail(r, endpoint);
      }
      flags.push(...decision.responseFlags);
      body.release();
      const stream = proxyToDownstream(ex, result.response, plan.responseHeaderModifiers);
      const left2 = remaining();
      const deadline = left2 === undefined ? undefined : setTimeout(() => stream.expire(), left2);
      const streamed = await stream.done;
      clearTimeout(deadline);
      done();
      if (streamed.flag) flags.push(streamed.flag);
      return {
        status: result.response.status,
        grpcStatus: streamed.grpcStatus,
        flags,
        details: streamed.flag ? detailsOf(streamed.flag) : 'via_upstream',
        bytesSent: streamed.bytes,
        upstream: endpoint,
        attempts: retry.attempts,
      };
    }
  } finally {
    endRetry();
  }
}

function detailsOf(flag: ResponseFlag): string {
  switch (flag) {
    case 'DC':
      return 'downstream_remote_disconnect';
    case 'UT':
      return 'response_timeout';
    default:
      return 'upstream_reset_after_response_started';
  }
}

export function withForwardedProto<T extends Record<string, unknown>>(headers: T): T {
  return headers['x-forwarded-proto'] === undefined ? { ...headers, 'x-forwarded-proto': 'http' } : headers;
}
