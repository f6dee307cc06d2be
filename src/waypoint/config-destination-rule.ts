/**
 * DestinationRule (networking.istio.io v1, v1beta1, v1alpha3) → the traffic policy the waypoint
 * applies to a Service: load balancer, outlier detection, connection-pool limits, retry budget,
 * with port-level settings replacing whole components for their port, as Istio merges them.
 * Istio's defaults fill every gap (see destination-policy.ts and outlier.ts).
 *
 * Not applied by waypoints, with a warning: subsets (HTTPRoute cannot select them), workloadSelector
 * rules, consistent-hash and locality load balancing, tls (waypoint→backend is always HBONE mTLS).
 */
import type { ObjectContext } from './config-reader.js';
import {
  serviceOfHost,
  readBool,
  readEnum,
  readInt,
  readList,
  readNumber,
  readObject,
  readString,
  requireString,
  warnUnknownFields,
} from './config-reader.js';
import { UNLIMITED } from './circuit-breaker.js';
import type { DestinationPolicy } from './destination-policy.js';
import { ISTIO_DEFAULT_DESTINATION_POLICY } from './destination-policy.js';
import { parseIstioDuration } from './durations.js';
import type { LoadBalancerKind } from './load-balancer.js';
import type { OutlierDetectionSettings } from './outlier.js';
import { ISTIO_OUTLIER_DEFAULTS } from './outlier.js';
import type { RetryBudgetSettings } from './retry-budget.js';
import { DEFAULT_MIN_RETRY_CONCURRENCY, DEFAULT_RETRY_BUDGET_PERCENT } from './retry-budget.js';

/** The components a DestinationRule (or one of its port-level settings) may set. */
export interface PolicyParts {
  loadBalancer?: LoadBalancerKind;
  outlierDetection?: OutlierDetectionSettings;
  connectionPool?: Pick<
    DestinationPolicy,
    'limits' | 'maxRequestsPerConnection' | 'connectTimeoutMs' | 'idleTimeoutMs'
  >;
  retryBudget?: RetryBudgetSettings;
}

export interface CompiledDestinationRule {
  namespace: string;
  name: string;
  createdAt: number;
  /** Lower-case FQDN, `*.suffix` or `*`. */
  host: string;
  parts: PolicyParts;
  portLevel: ReadonlyMap<number, PolicyParts>;
}

function duration(ctx: ObjectContext, value: unknown, field: string, minMs = 1): number | undefined {
  const s = readString(ctx, value, field);
  if (s === undefined) return undefined;
  const ms = parseIstioDuration(s);
  if (ms === undefined || ms < minMs) {
    ctx.fail(
      field,
      `"${s}" is not a valid duration${ms !== undefined ? ` (minimum ${minMs}ms)` : ''}`,
      'write it like 100ms, 10s, 1m or 1h',
    );
  }
  return ms;
}

function readLoadBalancer(ctx: ObjectContext, value: unknown, f: string): LoadBalancerKind | undefined {
  const o = readObject(ctx, value, f);
  if (!o) return undefined;
  warnUnknownFields(ctx, o, f, [
    'simple',
    'consistentHash',
    'localityLbSetting',
    'warmupDurationSecs',
    'warmup',
  ]);
  for (const k of ['consistentHash', 'localityLbSetting', 'warmupDurationSecs', 'warmup']) {
    if (o[k] !== undefined)
      ctx.warn(`${f}.${k}`, 'not supported by meshd; ignored (LEAST_REQUEST unless simple is set)');
  }
  const simple = readEnum(ctx, o.simple, `${f}.simple`, [
    'UNSPECIFIED',
    'LEAST_CONN',
    'RANDOM',
    'PASSTHROUGH',
    'ROUND_ROBIN',
    'LEAST_REQUEST',
  ]);
  switch (simple) {
    case undefined:
      return undefined;
    case 'RANDOM':
    case 'ROUND_ROBIN':
      return simple;
    case 'PASSTHROUGH':
      ctx.warn(`${f}.simple`, 'PASSTHROUGH is not supported by the waypoint; LEAST_REQUEST is used');
      return 'LEAST_REQUEST';
    default:
      // Istio maps the deprecated LEAST_CONN to LEAST_REQUEST, and UNSPECIFIED to the default.
      return 'LEAST_REQUEST';
  }
}

function readOutlier(ctx: ObjectContext, value: unknown, f: string): OutlierDetectionSettings | undefined {
  const o = readObject(ctx, value, f);
  if (!o) return undefined;
  const known = [
    'consecutiveErrors',
    'consecutive5xxErrors',
    'consecutiveGatewayErrors',
    'interval',
    'baseEjectionTime',
    'maxEjectionPercent',
    'minHealthPercent',
    'splitExternalLocalOriginErrors',
    'consecutiveLocalOriginFailures',
    'outlierDetectionHttpErrorCodes',
  ];
  warnUnknownFields(ctx, o, f, known);
  if (o.consecutiveErrors !== undefined)
    ctx.warn(
      `${f}.consecutiveErrors`,
      'deprecated and ignored; use consecutive5xxErrors or consecutiveGatewayErrors',
    );
  if (o.outlierDetectionHttpErrorCodes !== undefined)
    ctx.warn(`${f}.outlierDetectionHttpErrorCodes`, 'not supported by meshd; every 5xx counts as an error');
  const d = ISTIO_OUTLIER_DEFAULTS;
  const base = duration(ctx, o.baseEjectionTime, `${f}.baseEjectionTime`) ?? d.baseEjectionTimeMs;
  const maxPct = readInt(ctx, o.maxEjectionPercent, `${f}.maxEjectionPercent`, { min: 0, max: 100 });
  return {
    consecutive5xxErrors:
      readInt(ctx, o.consecutive5xxErrors, `${f}.consecutive5xxErrors`, { min: 0 }) ?? d.consecutive5xxErrors,
    consecutiveGatewayErrors:
      readInt(ctx, o.consecutiveGatewayErrors, `${f}.consecutiveGatewayErrors`, { min: 0 }) ??
      d.consecutiveGatewayErrors,
    splitExternalLocalOriginErrors:
      readBool(ctx, o.splitExternalLocalOriginErrors, `${f}.splitExternalLocalOriginErrors`) ?? false,
    consecutiveLocalOriginFailures:
      readInt(ctx, o.consecutiveLocalOriginFailures, `${f}.consecutiveLocalOriginFailures`, { min: 0 }) ||
      d.consecutiveLocalOriginFailures,
    intervalMs: duration(ctx, o.interval, `${f}.interval`) ?? d.intervalMs,
    baseEjectionTimeMs: base,
    // Envoy: max_ejection_time defaults to 300 s, or the base ejection time if that is larger.
    maxEjectionTimeMs: Math.max(d.maxEjectionTimeMs, base),
    // Istio passes maxEjectionPercent only when > 0; otherwise Envoy's 10 % applies.
    maxEjectionPercent: maxPct !== undefined && maxPct > 0 ? maxPct : d.maxEjectionPercent,
    minHealthPercent:
      readInt(ctx, o.minHealthPercent, `${f}.minHealthPercent`, { min: 0, max: 100 }) ?? d.minHealthPercent,
    alwaysEjectOneHost: false,
  };
}

function readConnectionPool(ctx: ObjectContext, value: unknown, f: string): PolicyParts['connectionPool'] {
  const o = readObject(ctx, value, f);
  if (!o) return undefined;
  warnUnknownFields(ctx, o, f, ['tcp', 'http']);
  const tcp = readObject(ctx, o.tcp, `${f}.tcp`) ?? {};
  const http = readObject(ctx, o.http, `${f}.http`) ?? {};
  warnUnknownFields(ctx, tcp, `${f}.tcp`, [
    'maxConnections',
    'connectTimeout',
    'tcpKeepalive',
    'maxConnectionDuration',
    'idleTimeout',
  ]);
  warnUnknownFields(ctx, http, `${f}.http`, [
    'http1MaxPendingRequests',
    'http2MaxRequests',
    'maxRequestsPerConnection',
    'maxRetries',
    'idleTimeout',
    'h2UpgradePolicy',
    'useClientProtocol',
    'maxConcurrentStreams',
    'http2KeepAlive',
  ]);
  const d = ISTIO_DEFAULT_DESTINATION_POLICY;
  // Istio treats 0 as "use the default" for every threshold (2^32−1).
  const limit = (v: unknown, field: string, dflt: number): number =>
    readInt(ctx, v, field, { min: 0, max: 2_147_483_647 }) || dflt;
  return {
    limits: {
      maxConnections: limit(tcp.maxConnections, `${f}.tcp.maxConnections`, d.limits.maxConnections),
      maxPendingRequests: limit(
        http.http1MaxPendingRequests,
        `${f}.http.http1MaxPendingRequests`,
        d.limits.maxPendingRequests,
      ),
      maxRequests: limit(http.http2MaxRequests, `${f}.http.http2MaxRequests`, d.limits.maxRequests),
      maxRetries: limit(http.maxRetries, `${f}.http.maxRetries`, d.limits.maxRetries),
    },
    maxRequestsPerConnection:
      readInt(ctx, http.maxRequestsPerConnection, `${f}.http.maxRequestsPerConnection`, { min: 0 }) ?? 0,
    connectTimeoutMs: duration(ctx, tcp.connectTimeout, `${f}.tcp.connectTimeout`) ?? d.connectTimeoutMs,
    // HTTP idle timeout wins over the TCP one, as in Istio; 0s disables.
    idleTimeoutMs:
      duration(ctx, http.idleTimeout, `${f}.http.idleTimeout`, 0) ??
      duration(ctx, tcp.idleTimeout, `${f}.tcp.idleTimeout`, 0) ??
      d.idleTimeoutMs,
  };
}

function readRetryBudget(ctx: ObjectContext, value: unknown, f: string): RetryBudgetSettings | undefined {
  const o = readObject(ctx, value, f);
  if (!o) return undefined;
  warnUnknownFields(ctx, o, f, ['percent', 'minRetryConcurrency', 'budgetInterval']);
  if (o.budgetInterval !== undefined)
    ctx.warn(`${f}.budgetInterval`, 'not supported; only in-flight requests count towards the budget');
  const pctField = readObject(ctx, typeof o.percent === 'object' ? o.percent : undefined, `${f}.percent`);
  const percent = readNumber(ctx, pctField ? pctField.value : o.percent, `${f}.percent`, {
    min: 0,
    max: 100,
  });
  return {
    percent: percent ?? DEFAULT_RETRY_BUDGET_PERCENT,
    minRetryConcurrency:
      readInt(ctx, o.minRetryConcurrency, `${f}.minRetryConcurrency`, { min: 0 }) ||
      DEFAULT_MIN_RETRY_CONCURRENCY,
  };
}

function readParts(ctx: ObjectContext, o: Record<string, unknown>, f: string): PolicyParts {
  if (o.tls !== undefined)
    ctx.warn(`${f}.tls`, 'ignored: the waypoint always reaches backends over HBONE mutual TLS');
  const parts: PolicyParts = {};
  const lb = readLoadBalancer(ctx, o.loadBalancer, `${f}.loadBalancer`);
  if (lb) parts.loadBalancer = lb;
  const od = readOutlier(ctx, o.outlierDetection, `${f}.outlierDetection`);
  if (od) parts.outlierDetection = od;
  const cp = readConnectionPool(ctx, o.connectionPool, `${f}.connectionPool`);
  if (cp) parts.connectionPool = cp;
  return parts;
}

export function compileDestinationRule(
  ctx: ObjectContext,
  spec: unknown,
  createdAt: number,
  env: { clusterDomain: string; serves: (service: { namespace: string; name: string }) => boolean },
): CompiledDestinationRule | undefined {
  const clusterDomain = env.clusterDomain;
  const s = readObject(ctx, spec, 'spec') ?? {};
  warnUnknownFields(ctx, s, 'spec', ['host', 'trafficPolicy', 'subsets', 'exportTo', 'workloadSelector']);
  const rawHost = requireString(ctx, s.host, 'spec.host', { nonEmpty: true }).toLowerCase();
  const host =
    rawHost === '*' || rawHost.includes('.') ? rawHost : `${rawHost}.${ctx.namespace}.svc.${clusterDomain}`;
  const svc = serviceOfHost(host, clusterDomain);
  // A rule for one specific Service this waypoint does not serve is not validated here.
  if (svc && !env.serves(svc)) return undefined;
  if (s.workloadSelector !== undefined) {
    ctx.warn(
      'spec.workloadSelector',
      'DestinationRules with a workloadSelector are not applied by waypoints; ignored',
    );
    return undefined;
  }
  if (s.subsets !== undefined)
    ctx.warn('spec.subsets', 'subsets are not used by waypoints (HTTPRoute cannot select them); ignored');
  const tp = readObject(ctx, s.trafficPolicy, 'spec.trafficPolicy') ?? {};
  warnUnknownFields(ctx, tp, 'spec.trafficPolicy', [
    'loadBalancer',
    'connectionPool',
    'outlierDetection',
    'tls',
    'portLevelSettings',
    'tunnel',
    'proxyProtocol',
    'retryBudget',
  ]);
  const parts = readParts(ctx, tp, 'spec.trafficPolicy');
  const rb = readRetryBudget(ctx, tp.retryBudget, 'spec.trafficPolicy.retryBudget');
  if (rb) parts.retryBudget = rb;
  const portLevel = new Map<number, PolicyParts>();
  readList(ctx, tp.portLevelSettings, 'spec.trafficPolicy.portLevelSettings').forEach((item, i) => {
    const f = `spec.trafficPolicy.portLevelSettings[${i}]`;
    const o = readObject(ctx, item, f) ?? {};
    warnUnknownFields(ctx, o, f, ['port', 'loadBalancer', 'connectionPool', 'outlierDetection', 'tls']);
    const port = readObject(ctx, o.port, `${f}.port`);
    const number = readInt(ctx, port?.number, `${f}.port.number`, { min: 1, max: 65535 });
    if (number === undefined)
      ctx.fail(`${f}.port.number`, 'is required', 'add port: {number: <service port>}');
    portLevel.set(number, readParts(ctx, o, f));
  });
  return { namespace: ctx.namespace, name: ctx.name, createdAt, host, parts, portLevel };
}

/** Istio's merge: a port-level component replaces the top-level one; defaults fill the rest. */
export function resolveDestinationPolicy(
  dr: CompiledDestinationRule | undefined,
  port: number,
): DestinationPolicy {
  if (!dr) return ISTIO_DEFAULT_DESTINATION_POLICY;
  const merged: PolicyParts = { ...dr.parts, ...dr.portLevel.get(port) };
  const d = ISTIO_DEFAULT_DESTINATION_POLICY;
  return Object.freeze({
    loadBalancer: merged.loadBalancer ?? d.loadBalancer,
    outlierDetection: merged.outlierDetection,
    limits: merged.connectionPool?.limits ?? d.limits,
    maxRequestsPerConnection: merged.connectionPool?.maxRequestsPerConnection ?? d.maxRequestsPerConnection,
    connectTimeoutMs: merged.connectionPool?.connectTimeoutMs ?? d.connectTimeoutMs,
    idleTimeoutMs: merged.connectionPool?.idleTimeoutMs ?? d.idleTimeoutMs,
    retryBudget:
      merged.retryBudget ??
      (merged.connectionPool?.limits.maxRetries === undefined ||
      merged.connectionPool.limits.maxRetries >= UNLIMITED
        ? d.retryBudget
        : undefined),
    source: { namespace: dr.namespace, name: dr.name },
  });
}

/** Whether a DestinationRule host (FQDN, `*.suffix` or `*`) covers a Service FQDN; higher = more specific. */
export function hostSpecificity(drHost: string, fqdn: string): number | undefined {
  if (drHost === fqdn) return Number.MAX_SAFE_INTEGER;
  if (drHost === '*') return 0;
  if (drHost.startsWith('*.') && fqdn.endsWith(drHost.slice(1))) return drHost.length;
  return undefined;
}
