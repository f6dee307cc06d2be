/**
 * compileWaypointConfig: Kubernetes objects (from the local YAML file or the API server) → the
 * immutable configuration the waypoint's decision logic runs on, plus warnings. Invalid input
 * throws a ConfigValidationError naming the file, document, object, field and fix.
 *
 * Objects read: Service (to know which exist), HTTPRoute, DestinationRule, VirtualService
 * (faults only), AuthorizationPolicy. Anything else is ignored. The config covers every Service
 * in the input; the runtime asks only about the Services whose traffic reaches this waypoint.
 */
import type { ConfigWarning, LocatedObject } from '../config-source/kube.js';
import { apiGroupOf, ObjectContext, serviceOfHost } from './config-reader.js';
import type { L7Policy } from './authz-types.js';
import { compileAuthorizationPolicy } from './config-authz.js';
import type { CompiledDestinationRule } from './config-destination-rule.js';
import {
  compileDestinationRule,
  hostSpecificity,
  resolveDestinationPolicy,
} from './config-destination-rule.js';
import { compileHttpRoute, parseCreationTimestamp } from './config-httproute.js';
import type { CompiledVirtualService } from './config-virtual-service.js';
import { compileVirtualService } from './config-virtual-service.js';
import type { DestinationPolicy } from './destination-policy.js';
import type { FaultRoute } from './fault.js';
import type { BackendService, DestinationService } from './http-types.js';
import { sortRouteEntries } from './route-select.js';
import type { RouteEntry } from './route-types.js';

export interface WaypointCompileOptions {
  waypointName: string;
  waypointNamespace: string;
  /** Istio's root namespace (mesh-wide DestinationRules, GatewayClass policies). */
  rootNamespace?: string;
  clusterDomain?: string;
  /**
   * Which Services send their traffic through this waypoint (from the workload model). When
   * given, config for other Services is skipped without validation, so another team's mistake in
   * a shared file cannot stop this waypoint. Default: every Service.
   */
  serves?: (service: ServiceName) => boolean;
}

export interface ServiceName {
  namespace: string;
  name: string;
  /** Workload-addressed traffic: no Service's config applies (see DestinationService). */
  workload?: unknown;
}

export interface WaypointConfig {
  readonly waypoint: { readonly name: string; readonly namespace: string };
  readonly rootNamespace: string;
  readonly clusterDomain: string;
  /** Keyed by serviceKey(); entries in precedence order. */
  readonly routes: ReadonlyMap<string, readonly RouteEntry[]>;
  readonly destinationRules: readonly CompiledDestinationRule[];
  /** VirtualService fault routes per serviceKey(), in http[] order. */
  readonly faults: ReadonlyMap<string, readonly FaultRoute[]>;
  readonly authorization: {
    /** Policies that target the waypoint itself (all traffic through it). */
    readonly waypoint: readonly L7Policy[];
    readonly services: ReadonlyMap<string, readonly L7Policy[]>;
  };
}

export function serviceKey(s: ServiceName): string {
  return `${s.namespace}/${s.name}`;
}

export function serviceHostname(s: ServiceName, clusterDomain: string): string {
  return `${s.name}.${s.namespace}.svc.${clusterDomain}`;
}

/** Where traffic goes when no route says otherwise: the Service port, or the pod itself. */
export function buildDefaultBackend(d: DestinationService, clusterDomain: string): BackendService {
  if (d.workload)
    return {
      namespace: d.namespace,
      name: d.name,
      hostname: d.workload.ip,
      port: d.port,
      workloadIp: d.workload.ip,
    };
  return { namespace: d.namespace, name: d.name, hostname: serviceHostname(d, clusterDomain), port: d.port };
}

const ISTIO_NETWORKING_VERSIONS = [
  'networking.istio.io/v1',
  'networking.istio.io/v1beta1',
  'networking.istio.io/v1alpha3',
];
const ISTIO_SECURITY_VERSIONS = ['security.istio.io/v1', 'security.istio.io/v1beta1'];
const GATEWAY_ROUTE_VERSIONS = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'];

export function compileWaypointConfig(
  objects: readonly LocatedObject[],
  opts: WaypointCompileOptions,
): { config: WaypointConfig; warnings: ConfigWarning[] } {
  const rootNamespace = opts.rootNamespace ?? 'istio-system';
  const clusterDomain = opts.clusterDomain ?? 'cluster.local';
  const waypoint = { name: opts.waypointName, namespace: opts.waypointNamespace };
  const warnings: ConfigWarning[] = [];
  const serves = opts.serves ?? (() => true);

  const services = new Set<string>();
  for (const o of objects) {
    if (o.obj.kind === 'Service' && apiGroupOf(o.obj.apiVersion) === '') {
      services.add(
        serviceKey({ namespace: o.obj.metadata.namespace ?? 'default', name: o.obj.metadata.name }),
      );
    }
  }
  const serviceExists =
    services.size > 0 ? (namespace: string, name: string) => services.has(`${namespace}/${name}`) : undefined;

  const routeEntries = new Map<string, RouteEntry[]>();
  const destinationRules: CompiledDestinationRule[] = [];
  const virtualServices: Array<{ ctx: ObjectContext; vs: CompiledVirtualService }> = [];
  const waypointPolicies: L7Policy[] = [];
  const servicePolicies = new Map<string, L7Policy[]>();

  for (const located of objects) {
    const { obj } = located;
    const ctx = new ObjectContext(located, warnings);
    if (obj.kind === 'HTTPRoute' && GATEWAY_ROUTE_VERSIONS.includes(obj.apiVersion)) {
      const createdAt = parseCreationTimestamp(ctx, obj);
      const route = compileHttpRoute(ctx, obj, createdAt, { clusterDomain, waypoint, serviceExists, serves });
      for (const parent of route.parents) {
        const list = routeEntries.get(serviceKey(parent)) ?? [];
        for (const rule of route.rules) {
          rule.matches.forEach((match, matchIndex) =>
            list.push({ port: parent.port, rule, match, matchIndex }),
          );
        }
        routeEntries.set(serviceKey(parent), list);
      }
    } else if (
      ['GRPCRoute', 'TCPRoute', 'TLSRoute'].includes(obj.kind) &&
      apiGroupOf(obj.apiVersion) === 'gateway.networking.k8s.io'
    ) {
      ctx.warn('spec', `${obj.kind} is not supported by meshd's waypoint yet; ignored`);
    } else if (obj.kind === 'DestinationRule' && ISTIO_NETWORKING_VERSIONS.includes(obj.apiVersion)) {
      const dr = compileDestinationRule(ctx, obj.spec, parseCreationTimestamp(ctx, obj), {
        clusterDomain,
        serves,
      });
      if (dr) destinationRules.push(dr);
    } else if (obj.kind === 'VirtualService' && ISTIO_NETWORKING_VERSIONS.includes(obj.apiVersion)) {
      const vs = compileVirtualService(ctx, obj.spec, parseCreationTimestamp(ctx, obj), {
        clusterDomain,
        serves,
      });
      if (vs) virtualServices.push({ ctx, vs });
    } else if (obj.kind === 'AuthorizationPolicy' && ISTIO_SECURITY_VERSIONS.includes(obj.apiVersion)) {
      const r = compileAuthorizationPolicy(ctx, obj.spec, obj.metadata.annotations, {
        waypoint,
        rootNamespace,
        serves,
      });
      if (!r) continue;
      for (const t of r.targets) {
        if (t.kind === 'waypoint') {
          if (!waypointPolicies.includes(r.policy)) waypointPolicies.push(r.policy);
        } else {
          const list = servicePolicies.get(serviceKey(t)) ?? [];
          if (!list.includes(r.policy)) list.push(r.policy);
          servicePolicies.set(serviceKey(t), list);
        }
      }
    }
  }

  const routes = new Map<string, readonly RouteEntry[]>();
  for (const [key, list] of routeEntries) routes.set(key, sortRouteEntries(list));

  return {
    config: Object.freeze({
      waypoint,
      rootNamespace,
      clusterDomain,
      routes,
      destinationRules,
      faults: assignFaults(virtualServices, clusterDomain, serves),
      authorization: { waypoint: waypointPolicies, services: servicePolicies },
    }),
    warnings,
  };
}

/** VirtualService hosts → Services; for a Service named by several, the oldest wins (as Istio). */
function assignFaults(
  list: Array<{ ctx: ObjectContext; vs: CompiledVirtualService }>,
  clusterDomain: string,
  serves: (service: ServiceName) => boolean,
): Map<string, readonly FaultRoute[]> {
  const sorted = [...list].sort(
    (a, b) =>
      a.vs.createdAt - b.vs.createdAt ||
      `${a.vs.namespace}/${a.vs.name}`.localeCompare(`${b.vs.namespace}/${b.vs.name}`),
  );
  const owners = new Map<string, string>();
  const faults = new Map<string, readonly FaultRoute[]>();
  for (const { ctx, vs } of sorted) {
    vs.hosts.forEach((host, i) => {
      const svc = serviceOfHost(host, clusterDomain);
      if (!svc) {
        ctx.warn(
          `spec.hosts[${i}]`,
          `"${host}" is not a Service of cluster domain ${clusterDomain}; ignored`,
        );
        return;
      }
      if (!serves(svc)) return;
      const key = serviceKey(svc);
      const owner = owners.get(key);
      if (owner !== undefined) {
        ctx.warn(
          `spec.hosts[${i}]`,
          `VirtualService ${owner} already applies to ${host}; this one is ignored for it`,
        );
        return;
      }
      owners.set(key, `${vs.namespace}/${vs.name}`);
      faults.set(key, vs.faults);
    });
  }
  return faults;
}

export function findRouteEntries(config: WaypointConfig, service: ServiceName): readonly RouteEntry[] {
  if (service.workload) return [];
  return config.routes.get(serviceKey(service)) ?? [];
}

export function findFaultRoutes(config: WaypointConfig, service: ServiceName): readonly FaultRoute[] {
  if (service.workload) return [];
  return config.faults.get(serviceKey(service)) ?? [];
}

/**
 * Policies enforced for traffic to `service`: the waypoint-wide ones, then the Service's own
 * (workload-addressed traffic: the waypoint-wide ones only).
 */
export function findAuthorizationPolicies(config: WaypointConfig, service: ServiceName): readonly L7Policy[] {
  if (service.workload) return config.authorization.waypoint;
  const own = config.authorization.services.get(serviceKey(service)) ?? [];
  return own.length === 0 ? config.authorization.waypoint : [...config.authorization.waypoint, ...own];
}

/**
 * The DestinationRule for a Service as Istio picks it for a waypoint: the waypoint's namespace
 * first, then the Service's, then the root namespace; within one namespace the most specific
 * host wins (exact, then the longest wildcard), then the oldest rule.
 */
export function findDestinationRule(
  config: WaypointConfig,
  service: ServiceName,
): CompiledDestinationRule | undefined {
  const fqdn = serviceHostname(service, config.clusterDomain);
  const order = [...new Set([config.waypoint.namespace, service.namespace, config.rootNamespace])];
  for (const ns of order) {
    let best: { dr: CompiledDestinationRule; score: number } | undefined;
    for (const dr of config.destinationRules) {
      if (dr.namespace !== ns) continue;
      const score = hostSpecificity(dr.host, fqdn);
      if (score === undefined) continue;
      if (!best || score > best.score || (score === best.score && dr.createdAt < best.dr.createdAt))
        best = { dr, score };
    }
    if (best) return best.dr;
  }
  return undefined;
}

export function findDestinationPolicy(
  config: WaypointConfig,
  service: ServiceName,
  port: number,
): DestinationPolicy {
  return resolveDestinationPolicy(findDestinationRule(config, service), port);
}
