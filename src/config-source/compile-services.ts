/**
 * v1 Service → Service, and the per-workload `services` maps that make pods its endpoints.
 *
 * - Endpoints are the pods of the service's namespace that match spec.selector and have an IP
 *   (as the Kubernetes endpoints controller builds them). A Service without a selector has no
 *   endpoints here (manual Endpoints/EndpointSlices are not read): warned.
 * - targetPort: absent = port; a number is used as is (ports map: servicePort → number); a name
 *   is resolved per pod against its containers' ports (ports map: servicePort → 0). A pod that
 *   lacks the named port is not an endpoint for that service port (warned), as in Kubernetes.
 * - clusterIP "None" = headless (no VIP); an absent clusterIP is treated as headless with a
 *   warning, since only the API server would assign one.
 * - Only TCP ports carry mesh traffic; UDP/SCTP ports are skipped with a warning.
 * - Load balancing from spec.trafficDistribution or the networking.istio.io/traffic-distribution
 *   annotation (PreferClose/PreferSameZone/PreferSameNode), as istiod maps them.
 */
import type { AppProtocol, LoadBalancing, NetworkAddress, Service } from '../state/index.js';
import { serviceKey } from '../state/index.js';
import type { Compilation } from './compile-types.js';
import { claimIp } from './compile-workloads.js';
import { resolveWaypoint, WAYPOINT_CLASS } from './compile-waypoints.js';
import { selects, type ObjectContext } from './fields.js';

const APP_PROTOCOLS: Readonly<Record<string, AppProtocol>> = {
  http: 'HTTP11',
  'http-web': 'HTTP11',
  http2: 'HTTP2',
  'kubernetes.io/h2c': 'HTTP2',
  h2c: 'HTTP2',
  grpc: 'GRPC',
  'grpc-web': 'HTTP11',
  tcp: 'TCP',
  tls: 'TLS',
  https: 'TLS',
  'kubernetes.io/wss': 'TLS',
  'kubernetes.io/ws': 'HTTP11',
};

/** appProtocol first, else Istio's port-name convention (`http-foo`, `grpc`, ...). */
export function appProtocolOf(appProtocol: string | undefined, portName: string | undefined): AppProtocol {
  if (appProtocol) return APP_PROTOCOLS[appProtocol.toLowerCase()] ?? 'UNKNOWN';
  const prefix = (portName ?? '').toLowerCase().split('-')[0] ?? '';
  return APP_PROTOCOLS[prefix] ?? 'UNKNOWN';
}

const PREFER_CLOSE: LoadBalancing = {
  routingPreferences: ['Network', 'Region', 'Zone'],
  mode: 'Failover',
  healthPolicy: 'OnlyHealthy',
};

function loadBalancingOf(ctx: ObjectContext, spec: Record<string, unknown>): LoadBalancing | undefined {
  const fromSpec = ctx.str(spec.trafficDistribution, 'spec.trafficDistribution');
  const annotation = ctx.annotations['networking.istio.io/traffic-distribution'];
  const value = annotation ?? fromSpec;
  const field =
    annotation !== undefined
      ? 'metadata.annotations.networking.istio.io/traffic-distribution'
      : 'spec.trafficDistribution';
  const allowAll = ctx.bool(spec.publishNotReadyAddresses, 'spec.publishNotReadyAddresses') === true;
  let lb: LoadBalancing | undefined;
  switch (value) {
    case undefined:
      break;
    case 'PreferClose':
    case 'PreferSameZone':
      lb = PREFER_CLOSE;
      break;
    case 'PreferSameNode':
      lb = { ...PREFER_CLOSE, routingPreferences: ['Network', 'Region', 'Zone', 'Subzone', 'Node'] };
      break;
    default:
      ctx.warn(
        field,
        `unknown traffic distribution "${value}"; ignored (use PreferClose, PreferSameZone or PreferSameNode)`,
      );
  }
  if (allowAll) return { ...(lb ?? { routingPreferences: [], mode: 'Standard' }), healthPolicy: 'AllowAll' };
  return lb;
}

interface PortSpec {
  field: string;
  port: number;
  /** A number, or a container port name. */
  target: number | string;
  appProtocol: AppProtocol;
}

function readPorts(ctx: ObjectContext, spec: Record<string, unknown>): PortSpec[] {
  const seen = new Set<number>();
  const out: PortSpec[] = [];
  ctx.list(spec.ports, 'spec.ports').forEach((p, i) => {
    const field = `spec.ports[${i}]`;
    const m = ctx.mapping(p, field) ?? {};
    const port = ctx.port(m.port, `${field}.port`);
    const protocol = ctx.str(m.protocol, `${field}.protocol`) ?? 'TCP';
    if (protocol !== 'TCP') {
      ctx.warn(
        `${field}.protocol`,
        `${protocol} ports are not carried by the mesh (TCP only); port ${port} skipped`,
      );
      return;
    }
    if (seen.has(port))
      ctx.fail(`${field}.port`, `port ${port} is declared twice`, 'declare each service port once');
    seen.add(port);
    let target: number | string = port;
    if (typeof m.targetPort === 'number') target = ctx.port(m.targetPort, `${field}.targetPort`);
    else if (typeof m.targetPort === 'string') {
      if (/^[0-9]+$/.test(m.targetPort)) {
        ctx.fail(
          `${field}.targetPort`,
          `"${m.targetPort}" is a quoted number`,
          `write it unquoted (targetPort: ${m.targetPort}) or use a container port name`,
        );
      }
      target = m.targetPort;
    } else if (m.targetPort !== undefined && m.targetPort !== null) {
      ctx.port(m.targetPort, `${field}.targetPort`);
    }
    const name = ctx.str(m.name, `${field}.name`);
    out.push({
      field,
      port,
      target,
      appProtocol: appProtocolOf(ctx.str(m.appProtocol, `${field}.appProtocol`), name),
    });
  });
  return out;
}

function readVips(c: Compilation, ctx: ObjectContext, spec: Record<string, unknown>): NetworkAddress[] {
  const ips: string[] = [];
  const clusterIP = ctx.str(spec.clusterIP, 'spec.clusterIP');
  const clusterIPs = ctx.strList(spec.clusterIPs, 'spec.clusterIPs');
  if (clusterIP === undefined && clusterIPs.length === 0) {
    ctx.warn(
      'spec.clusterIP',
      'no clusterIP: the service has no VIP and is reachable by name only (set an IP, e.g. 127.10.0.x in local mode, or None for headless)',
    );
    return [];
  }
  if (clusterIP === 'None' || clusterIPs[0] === 'None') return [];
  if (clusterIP !== undefined && clusterIP !== '') ips.push(ctx.ip(clusterIP, 'spec.clusterIP'));
  clusterIPs.forEach((ip, i) => {
    const c2 = ctx.ip(ip, `spec.clusterIPs[${i}]`);
    if (!ips.includes(c2)) ips.push(c2);
  });
  ips.forEach((ip) => claimIp(c, ctx, 'spec.clusterIP', ip));
  return ips.map((address) => ({ network: '', address }));
}

function visibilityOf(ctx: ObjectContext): Service['visibility'] {
  const exportTo = ctx.annotations['networking.istio.io/exportTo'];
  if (exportTo === undefined || exportTo.trim() === '*') return 'Public';
  if (exportTo.trim() === '.') return 'Namespace';
  ctx.warn(
    'metadata.annotations.networking.istio.io/exportTo',
    `only "." and "*" are supported; "${exportTo}" treated as "*"`,
  );
  return 'Public';
}

export function compileService(c: Compilation, ctx: ObjectContext): void {
  const spec = ctx.spec;
  const type = ctx.str(spec.type, 'spec.type') ?? 'ClusterIP';
  if (type === 'ExternalName') {
    ctx.warn('spec.type', 'ExternalName services are not part of the mesh; ignored');
    return;
  }
  const vips = readVips(c, ctx, spec);
  const ports = readPorts(ctx, spec);
  const selector = ctx.mapping(spec.selector, 'spec.selector');
  for (const [k, v] of Object.entries(selector ?? {})) {
    if (typeof v !== 'string')
      ctx.fail(
        `spec.selector.${k}`,
        `must be a string, got ${JSON.stringify(v)}`,
        `quote it: ${k}: "${String(v)}"`,
      );
  }
  const isWaypointService =
    c.waypoints.has(`${ctx.namespace}/${ctx.name}`) ||
    ctx.labels['gateway.istio.io/managed'] === 'istio.io-mesh-controller';
  const svc: Service = {
    name: ctx.name,
    namespace: ctx.namespace,
    hostname: `${ctx.name}.${ctx.namespace}.svc.${c.opts.clusterDomain}`,
    vips,
    ports: Object.fromEntries(ports.map((p) => [p.port, typeof p.target === 'number' ? p.target : 0])),
    appProtocols: Object.fromEntries(ports.map((p) => [p.port, p.appProtocol])),
    subjectAltNames: [],
    visibility: visibilityOf(ctx),
    canonical: false,
  };
  const lb = loadBalancingOf(ctx, spec);
  if (lb) svc.loadBalancing = lb;
  if (!isWaypointService) {
    const wp = resolveWaypoint(c, ctx, ctx.namespace, 'service');
    if (wp) svc.waypoint = wp;
  } else if (
    ctx.labels['istio.io/use-waypoint'] !== undefined &&
    ctx.labels['istio.io/use-waypoint'] !== 'none'
  ) {
    ctx.warn(
      'metadata.labels.istio.io/use-waypoint',
      `a waypoint's own Service (${WAYPOINT_CLASS}) never uses a waypoint; label ignored`,
    );
  }
  c.services.push(svc);

  const sel = selector as Record<string, string> | undefined;
  if (!sel || Object.keys(sel).length === 0) {
    if (!isWaypointService) {
      ctx.warn(
        'spec.selector',
        'no selector: meshd builds endpoints from selectors only, so this service has no endpoints',
      );
    }
    return;
  }
  const key = serviceKey(svc);
  for (const pod of c.pods) {
    if (pod.namespace !== ctx.namespace || !selects(sel, pod.labels)) continue;
    const mapping: Record<number, number> = {};
    for (const p of ports) {
      if (typeof p.target === 'number') {
        mapping[p.port] = p.target;
        continue;
      }
      const resolved = pod.namedPorts.get(p.target);
      if (resolved === undefined) {
        ctx.warn(
          `${p.field}.targetPort`,
          `"${p.target}" is not a container port of Pod ${pod.namespace}/${pod.name}; that pod is not an endpoint for port ${p.port} (name a containerPort of the pods, or use a number)`,
        );
        continue;
      }
      mapping[p.port] = resolved;
    }
    if (Object.keys(mapping).length > 0 || ports.length === 0) pod.services[key] = mapping;
  }
}
