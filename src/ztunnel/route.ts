/**
 * The outbound route decision: a pure function from (mesh state, source workload, original
 * destination) to where and how to connect. Mirrors ztunnel's build_request:
 *
 * 1. Loop protection (see isLoop below).
 * 2. An IP target is looked up as a workload first, then as a service VIP; a hostname target
 *    (SOCKS5 domain) as a Kubernetes service name from the source's namespace.
 * 3. Service with a waypoint, source not that waypoint → HBONE to a waypoint instance on its HBONE
 *    port, :authority = the original, untranslated target (VIP:servicePort). No instance → fail
 *    closed (never bypass the waypoint's policy).
 * 4. Service without a waypoint → a healthy endpoint (locality preference, then weighted random
 *    by capacity). Unknown service port or no healthy endpoint → error, not passthrough.
 * 5. Workload target with a workload waypoint, source not that waypoint → HBONE to the
 *    waypoint, :authority = the original pod IP:port.
 * 6. Destination workload: HBONE → `<ip>:15008`, :authority `<ip>:<target port>`; TCP → plain TCP
 *    to `<ip>:<target port>`. Unknown IP → plain TCP passthrough to the original destination.
 * Same-node and self traffic take the same path (no fast path, as in ztunnel).
 *
 * What counts as a loop (local-mode pod IPs are themselves 127.x addresses, so "loopback" alone
 * cannot tell a pod from the node): a connection is refused as a loop when its port is one of
 * the illegal ports (meshd's own listener ports 15001/15006/15008/15080) and
 *   a. the original IP is a loopback address (ztunnel's rule), or
 *   b. the original IP belongs to a workload this mesh captures (its illegal ports are ztunnel
 *      listeners, in capture mode on the pod IP, in local mode on its 127.x IP), or
 *   c. the resolved destination is a captured workload and the resolved target port is illegal
 *      (e.g. a Service whose targetPort is 15008).
 * So `<pod ip>:15008` as a target is refused while `<pod ip>:8080` routes normally. The HBONE next
 * hop `<pod ip>:15008` chosen by this function is never subject to the check.
 */
import {
  formatHostPort,
  identityOf,
  isCaptured,
  isIp,
  isLoopbackIp,
  canonicalIp,
  pickEndpoint,
  selectWorkloadIp,
  servicePorts,
  type GatewayAddress,
  type MeshState,
  type Service,
  type ServiceEndpoint,
  type Workload,
} from '../state/index.js';

export const DEFAULT_HBONE_PORT = 15008;
/** meshd's own listener ports: outbound 15001, inbound plaintext 15006, HBONE 15008, SOCKS5 15080. */
export const DEFAULT_ILLEGAL_PORTS: readonly number[] = Object.freeze([15001, 15006, 15008, 15080]);

export type RouteTarget = { ip: string; port: number } | { hostname: string; port: number };

export interface BuildRequestInput {
  state: MeshState;
  /** The local workload owning the entry listener. */
  source: Workload;
  /** The downstream client's IP (for the "source is the waypoint" check). */
  sourceIp: string;
  /** The original destination: SO_ORIGINAL_DST or the SOCKS5 target. */
  target: RouteTarget;
  hbonePort?: number;
  illegalPorts?: Iterable<number>;
  /** Uniform in [0, 1); injected for tests. Default Math.random. */
  random?: () => number;
}

export interface SocketAddress {
  ip: string;
  port: number;
}

export interface HboneRoute {
  ok: true;
  protocol: 'HBONE';
  nextHop: SocketAddress;
  /** CONNECT :authority, "ip:port" with IPv6 bracketed. */
  authority: string;
  /** SPIFFE URIs the server certificate may carry. */
  expectedIdentities: string[];
  /** The workload dialed: the destination pod, or the waypoint instance. */
  destinationWorkload: Workload;
  /** The service addressed, when the target was a service. */
  destinationService?: Service;
  viaWaypoint: boolean;
}

export interface TcpRoute {
  ok: true;
  protocol: 'TCP';
  nextHop: SocketAddress;
  destinationWorkload?: Workload;
  destinationService?: Service;
  /** The destination is unknown to the mesh: forwarded as is, without mTLS. */
  passthrough: boolean;
}

export type RouteFailureReason =
  | 'loop'
  | 'invalid_target'
  | 'unknown_host'
  | 'unknown_service_port'
  | 'no_healthy_upstream'
  | 'no_waypoint_instance';

export interface RouteFailure {
  ok: false;
  reason: RouteFailureReason;
  /** What went wrong and what to fix. */
  message: string;
}

export type RouteDecision = HboneRoute | TcpRoute | RouteFailure;

interface Ctx {
  input: BuildRequestInput;
  state: MeshState;
  hbonePort: number;
  illegal: ReadonlySet<number>;
  random: () => number;
}

const fail = (reason: RouteFailureReason, message: string): RouteFailure => ({ ok: false, reason, message });
const svcName = (s: Service) => `${s.namespace}/${s.name}`;
const dedupe = (xs: string[]) => [...new Set(xs)];

function describeWaypoint(gw: GatewayAddress): string {
  const d = gw.destination;
  return d.kind === 'hostname' ? `${d.namespace}/${d.hostname}` : `${d.network}/${d.ip}`;
}

/** Is the source itself an instance of this waypoint? Identity and IP must both match. */
function sourceIsWaypoint(c: Ctx, gw: GatewayAddress): boolean {
  const instances = c.state.findWaypoint(gw)?.instances ?? [];
  const id = identityOf(c.input.source);
  const ip = canonicalIp(c.input.sourceIp);
  return instances.some((w) => identityOf(w) === id && ip !== undefined && w.workloadIps.includes(ip));
}

function loopFailure(c: Ctx, ip: string, port: number, why: string): RouteFailure {
  return fail(
    'loop',
    `refusing ${formatHostPort(ip, port)}: port ${port} is one of meshd's own listener ports (${[...c.illegal].join(', ')}) on ${why}, so the connection would loop back into the mesh; connect to the application's port instead`,
  );
}

function viaWaypoint(
  c: Ctx,
  gw: GatewayAddress,
  authority: string,
  preferIp: string | undefined,
  what: string,
  service?: Service,
): RouteDecision {
  const resolved = c.state.findWaypoint(gw);
  const ep = resolved
    ? pickEndpoint({
        endpoints: resolved.endpoints,
        source: c.input.source,
        loadBalancing: resolved.service?.loadBalancing,
        random: c.random,
      })
    : undefined;
  const ip = ep ? selectWorkloadIp(ep.workload, preferIp) : undefined;
  if (!ep || ip === undefined) {
    return fail(
      'no_waypoint_instance',
      `${what} uses waypoint ${describeWaypoint(gw)}, which has no ready instance; the connection is refused rather than bypassing the waypoint's policy. Start the waypoint's pods (label gateway.networking.k8s.io/gateway-name) or remove the istio.io/use-waypoint label`,
    );
  }
  const route: HboneRoute = {
    ok: true,
    protocol: 'HBONE',
    nextHop: { ip, port: ep.targetPort },
    authority,
    expectedIdentities: dedupe([...(resolved?.service?.subjectAltNames ?? []), identityOf(ep.workload)]),
    destinationWorkload: ep.workload,
    viaWaypoint: true,
  };
  if (service) route.destinationService = service;
  return route;
}

function direct(
  c: Ctx,
  w: Workload,
  targetPort: number,
  preferIp: string | undefined,
  service?: Service,
): RouteDecision {
  const ip = selectWorkloadIp(w, preferIp);
  if (ip === undefined) {
    return fail(
      'no_healthy_upstream',
      `workload ${w.namespace}/${w.name} has no IP address; it cannot be reached yet`,
    );
  }
  if (c.illegal.has(targetPort) && isCaptured(w)) {
    return loopFailure(
      c,
      ip,
      targetPort,
      `mesh workload ${w.namespace}/${w.name}${service ? ` (target port of Service ${svcName(service)})` : ''}`,
    );
  }
  if (w.protocol === 'HBONE') {
    const route: HboneRoute = {
      ok: true,
      protocol: 'HBONE',
      nextHop: { ip, port: c.hbonePort },
      authority: formatHostPort(ip, targetPort),
      expectedIdentities: dedupe([...(service?.subjectAltNames ?? []), identityOf(w)]),
      destinationWorkload: w,
      viaWaypoint: false,
    };
    if (service) route.destinationService = service;
    return route;
  }
  const route: TcpRoute = {
    ok: true,
    protocol: 'TCP',
    nextHop: { ip, port: targetPort },
    destinationWorkload: w,
    passthrough: false,
  };
  if (service) route.destinationService = service;
  return route;
}

function noEndpoint(c: Ctx, svc: Service, port: number): RouteFailure {
  const all = c.state.findEndpoints(svc, port, { includeUnhealthy: true });
  const healthy = c.state.findEndpoints(svc, port);
  const detail =
    all.length === 0
      ? 'no pod matching its selector has an IP and that port; check the Service selector, the pods, and a named targetPort'
      : healthy.length === 0
        ? `all ${all.length} endpoint(s) are unhealthy; check the pods' readiness`
        : `none of its ${healthy.length} healthy endpoint(s) is in the client's locality (load balancing mode Strict)`;
  return fail(
    'no_healthy_upstream',
    `Service ${svcName(svc)} port ${port} has no usable endpoint: ${detail}`,
  );
}

function routeService(c: Ctx, svc: Service, port: number, vip: string | undefined): RouteDecision {
  const authority = formatHostPort(vip ?? svc.hostname, port);
  if (svc.waypoint && !sourceIsWaypoint(c, svc.waypoint)) {
    return viaWaypoint(c, svc.waypoint, authority, vip, `Service ${svcName(svc)}`, svc);
  }
  if (svc.loadBalancing?.mode === 'Passthrough' && vip !== undefined) {
    return {
      ok: true,
      protocol: 'TCP',
      nextHop: { ip: vip, port },
      destinationService: svc,
      passthrough: true,
    };
  }
  if (svc.ports[port] === undefined) {
    const ports = servicePorts(svc).map((p) => p.servicePort);
    return fail(
      'unknown_service_port',
      `Service ${svcName(svc)} has no port ${port} (its ports: ${ports.join(', ') || 'none'}); connect to one of them or add the port to the Service`,
    );
  }
  const endpoints: ServiceEndpoint[] = c.state.findEndpoints(svc, port);
  const ep = pickEndpoint({
    endpoints,
    source: c.input.source,
    loadBalancing: svc.loadBalancing,
    random: c.random,
  });
  if (!ep) return noEndpoint(c, svc, port);
  return direct(c, ep.workload, ep.targetPort, vip, svc);
}

function routeWorkload(c: Ctx, w: Workload, ip: string, port: number): RouteDecision {
  if (w.waypoint && !sourceIsWaypoint(c, w.waypoint)) {
    return viaWaypoint(c, w.waypoint, formatHostPort(ip, port), ip, `workload ${w.namespace}/${w.name}`);
  }
  return direct(c, w, port, ip);
}

/** Decide how to reach the original destination. Never throws; failures are values. */
export function buildRequest(input: BuildRequestInput): RouteDecision {
  const c: Ctx = {
    input,
    state: input.state,
    hbonePort: input.hbonePort ?? DEFAULT_HBONE_PORT,
    illegal: new Set(input.illegalPorts ?? DEFAULT_ILLEGAL_PORTS),
    random: input.random ?? Math.random,
  };
  const { target, source } = input;
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    return fail('invalid_target', `destination port ${target.port} is not a valid TCP port (1-65535)`);
  }

  if ('hostname' in target) {
    if (isIp(target.hostname))
      return buildRequest({ ...input, target: { ip: target.hostname, port: target.port } });
    const svc = c.state.findServiceByHostname(target.hostname, source.namespace);
    if (!svc) {
      return fail(
        'unknown_host',
        `no Service named "${target.hostname}" is visible from namespace ${source.namespace} (tried <name>, <name>.<ns>, <name>.<ns>.svc and the FQDN, namespace ${source.namespace} first); check the name, or connect by IP to reach destinations outside the mesh`,
      );
    }
    const vip = svc.vips.find((v) => v.network === '')?.address ?? svc.vips[0]?.address;
    return routeService(c, svc, target.port, vip);
  }

  const ip = canonicalIp(target.ip);
  if (ip === undefined) return fail('invalid_target', `destination "${target.ip}" is not an IP address`);
  if (c.illegal.has(target.port)) {
    if (isLoopbackIp(ip)) return loopFailure(c, ip, target.port, 'a loopback address');
    const owner = c.state.findWorkloadByIp(ip);
    if (owner && isCaptured(owner))
      return loopFailure(c, ip, target.port, `mesh workload ${owner.namespace}/${owner.name}`);
  }
  const workload = c.state.findWorkloadByIp(ip);
  if (workload) return routeWorkload(c, workload, ip, target.port);
  const svc = c.state.findServiceByVip(ip, source.namespace);
  if (svc) return routeService(c, svc, target.port, ip);
  return { ok: true, protocol: 'TCP', nextHop: { ip, port: target.port }, passthrough: true };
}
