/**
 * waypoint/: the per-namespace L7 proxy.
 *
 * The decision logic: config compilation, authorization, routing, filters, faults, retries and
 * timeouts, load balancing, outlier detection, circuit breaking, trace context and Istio
 * request-metric labels. Pure functions and small stateful classes with injected clock and
 * random sources; no sockets.
 *
 * The network runtime (listener.ts, proxy.ts, upstream-*.ts) runs that logic on real streams:
 * `WaypointListener.serve(stream, ctx)` takes one inbound tunnel (an HBONE CONNECT stream), sniffs
 * HTTP/1.1, HTTP/2 with prior knowledge or plain TCP, and runs `proxyRequest` per request against
 * an `UpstreamConnections` whose connections come from an injected `UpstreamConnector` (in the
 * daemon, an HBONE tunnel from the pool to `<backend pod ip>:15008`). `startWaypointDaemon` (daemon.ts)
 * is the `meshd waypoint` process.
 *
 * How the network runtime uses it:
 * - on config load: `compileWaypointConfig(objects, { waypointName, waypointNamespace, serves })`
 *   (log the warnings; a ConfigValidationError stops the load), and keep one
 *   `UpstreamClusterSet` for the life of the process;
 * - per request, once the HBONE authority gave the destination Service and the mTLS peer the
 *   client identity:
 *   1. `plan = buildRequestPlan({ config, service, client, request, random })`;
 *   2. wait `plan.delayMs` (fault delay) if non-zero;
 *   3. `respond` → send `plan.response` (status, headers, body) and record metrics with its flags;
 *   4. `forward` → `cluster = clusters.clusterFor(config, plan.backend)`, `cluster.setHosts(...)`
 *      with the backend's endpoints, take `cluster.circuitBreaker.tryAcquire('request')` (refused →
 *      `buildLocalReply({ kind: 'overflow' })`), create `new RetryState(plan.retryPolicy, method,
 *      random)`, then loop: `cluster.chooseHost(retry.triedHosts)` (none → `no-healthy-upstream`),
 *      `retry.beginAttempt(host)`, `done = cluster.startRequest(host)`, send
 *      `plan.upstreamRequest` with timeout `buildAttemptTimeoutMs(plan.timeouts, elapsed)` (0 →
 *      `request-timeout`), classify the result as an AttemptOutcome, `cluster.recordOutcome`,
 *      `done()`, then `retry.decide(outcome, cluster.circuitBreaker)`: retry after `backoffMs`
 *      (calling `releaseRetry()` when that attempt ends), or stop and
 *      forward the response (applying `plan.responseHeaderModifiers`) or
 *      `buildLocalReply({ kind: 'upstream-failure', ... })`;
 *   5. record `istio_requests_total` / `istio_request_duration_milliseconds` with
 *      `recordRequest(metrics, buildRequestMetricLabels(...), ms)` (reporter="waypoint").
 */
export type { HeaderMap, WaypointRequest, DestinationService, RequestClient } from './http-types.js';
export { headerValue } from './http-types.js';
export type { Random, Clock, RandomBytes } from './random.js';
export { defaultRandom, defaultClock, defaultRandomBytes, seededRandom } from './random.js';

// Config
export type { WaypointCompileOptions, WaypointConfig, ServiceName } from './config.js';
export {
  compileWaypointConfig,
  serviceKey,
  serviceHostname,
  findRouteEntries,
  findFaultRoutes,
  findAuthorizationPolicies,
  findDestinationRule,
  findDestinationPolicy,
} from './config.js';
export { RETRY_NON_IDEMPOTENT_ANNOTATION } from './config-httproute.js';
export { VS_FAULT_ONLY_MESSAGE } from './config-virtual-service.js';
export { DRY_RUN_ANNOTATION, VALID_CONDITION_KEYS } from './config-authz.js';
export type { CompiledDestinationRule } from './config-destination-rule.js';
export type { DestinationPolicy } from './destination-policy.js';
export { ISTIO_DEFAULT_DESTINATION_POLICY } from './destination-policy.js';

// Per-request plan
export type { RequestPlan, RequestPlanInput, BackendService } from './request-plan.js';
export { buildRequestPlan } from './request-plan.js';

// Routing and filters
export type {
  RouteEntry,
  RouteRule,
  RouteMatch,
  PathMatch,
  ValueMatch,
  HeaderModifier,
  PathModifier,
  RequestRedirect,
  UrlRewrite,
  RouteFilter,
  WeightedBackend,
  BackendTarget,
  RouteTimeouts,
} from './route-types.js';
export type { MatchableRequest } from './route-match.js';
export { matchesRoute, matchesPath } from './route-match.js';
export type { RouteSelection } from './route-select.js';
export {
  buildRouteSelection,
  chooseWeightedBackend,
  sortRouteEntries,
  compareRouteEntries,
} from './route-select.js';
export { applyHeaderModifier, applyUrlRewrite, buildRedirectLocation, splitHostPort } from './filters.js';
export {
  normalizeRequestPath,
  splitPathAndQuery,
  parseQuery,
  pathHasPrefix,
  replacePathPrefix,
} from './path.js';

// Retries, timeouts, budgets
export type { RetryPolicy, RetryCondition, AttemptOutcome, UpstreamFailure } from './retry-policy.js';
export {
  ISTIO_DEFAULT_RETRY_POLICY,
  NO_RETRY_POLICY,
  buildHttpRouteRetryPolicy,
  isRetriable,
  isIdempotentMethod,
  buildRetryBackoffMs,
} from './retry-policy.js';
export type { RetryDecision } from './retry-state.js';
export { RetryState, buildAttemptTimeoutMs } from './retry-state.js';
export type { RetryBudgetSettings } from './retry-budget.js';
export { RetryBudget } from './retry-budget.js';

// Upstream: load balancing, outlier detection, circuit breaking
export type { LoadBalancer, LoadBalancerKind } from './load-balancer.js';
export {
  createLoadBalancer,
  LeastRequestBalancer,
  RoundRobinBalancer,
  RandomBalancer,
} from './load-balancer.js';
export type { OutlierDetectionSettings, EjectionReason } from './outlier.js';
export { OutlierDetector, ISTIO_OUTLIER_DEFAULTS } from './outlier.js';
export type { CircuitBreakerLimits, CircuitResource, CircuitGrant } from './circuit-breaker.js';
export { CircuitBreaker, ISTIO_DEFAULT_LIMITS, UNLIMITED } from './circuit-breaker.js';
export type { HostChoice } from './upstream-cluster.js';
export { UpstreamCluster, UpstreamClusterSet } from './upstream-cluster.js';

// Faults
export type { FaultRoute, FaultInjection, FaultDecision, FaultRequest, VsMatch } from './fault.js';
export { buildFaultDecision } from './fault.js';

// Authorization
export type { L7Policy, AuthzAction, AuthzRule, AuthzClause } from './authz-types.js';
export type { AuthzAttributes, AuthzDecision, PolicyMatch } from './authz.js';
export { evaluateL7Authorization, buildAuthzAttributes, formatPolicyMatch } from './authz.js';

// Responses, flags, telemetry, tracing
export type { ResponseFlag, SyntheticResponse, LocalReplyReason } from './response.js';
export {
  buildLocalReply,
  formatResponseFlags,
  RBAC_DENIED_STATUS,
  RBAC_DENIED_BODY,
  NO_ROUTE_STATUS,
  FAULT_ABORT_BODY,
  NO_HEALTHY_UPSTREAM_BODY,
  UPSTREAM_TIMEOUT_BODY,
} from './response.js';
export type {
  IstioRequestLabels,
  RequestMetricInput,
  WorkloadLabels,
  WaypointRequestMetrics,
} from './metrics.js';
export {
  WAYPOINT_REPORTER,
  ISTIO_REQUEST_LABEL_NAMES,
  ISTIO_DURATION_BUCKETS_MS,
  buildRequestMetricLabels,
  createWaypointRequestMetrics,
  recordRequest,
} from './metrics.js';
export type { TraceParent, OutgoingTrace } from './trace.js';
export { parseTraceParent, formatTraceParent, buildOutgoingTrace, buildRequestId } from './trace.js';

// Network runtime
export type { WaypointView } from './view.js';
export type { InboundContext, ProxyDeps } from './proxy.js';
export { proxyRequest } from './proxy.js';
export type { ListenerDeps } from './listener.js';
export { WaypointListener, DOWNSTREAM_IDLE_TIMEOUT_MS, MAX_HEADER_BYTES } from './listener.js';
export type { PassthroughDeps } from './passthrough.js';
export type { SniffedProtocol, SniffResult } from './sniff.js';
export { buildProtocolGuess, sniffProtocol, HTTP2_PREFACE } from './sniff.js';
export type { DownstreamExchange, DownstreamProtocol } from './downstream.js';
export { Http1Exchange, Http2Exchange, HOP_BY_HOP } from './downstream.js';
export { RequestBody, DEFAULT_RETRY_BUFFER_BYTES } from './request-body.js';
export type {
  UpstreamEndpoint,
  UpstreamConnector,
  UpstreamProtocol,
  UpstreamRequestSpec,
  UpstreamResponse,
  UpstreamLimits,
  UpstreamTransport,
  Attempt,
  AttemptResult,
} from './upstream-types.js';
export { UpstreamConnectError } from './upstream-types.js';
export { UpstreamConnections, buildUpstreamLimits } from './upstream-pool.js';
export type { InboundAuthority, InboundTarget, WaypointSelf } from './inbound.js';
export { buildInboundTarget, buildRequestClient, isServedBy } from './inbound.js';
export type { WaypointInstance, InstanceResult } from './instance.js';
export { buildWaypointInstance } from './instance.js';
export type { RequestRecord } from './request-log.js';
export { buildWaypointConfigDump } from './config-dump.js';
export { DEFAULT_RETRY_BUDGET } from './destination-policy.js';

// The `meshd waypoint` process
export type { WaypointDaemon, WaypointDaemonOptions } from './daemon.js';
export { startWaypointDaemon } from './daemon.js';
