/**
 * Inbound admission: which Service (and port) an HBONE tunnel to the waypoint is for, and who is
 * calling. The authority is the client's ORIGINAL destination: `<VIP>:<service port>`,
 * `<hostname>:<port>` for a Service without a VIP, or `<pod IP>:<port>` for a workload that uses
 * this waypoint itself. Only Services and workloads whose waypoint is this one are served;
 * anything else is refused, so the waypoint never becomes a relay to arbitrary destinations.
 * Pure functions over one MeshState, tested as tables.
 */
import { isIP } from 'node:net';
import type { MeshState, Service, Workload } from '../state/index.js';
import type { DestinationService, RequestClient } from './http-types.js';

/** The HBONE `:authority`, as the HBONE server parsed it. */
export type InboundAuthority =
  { kind: 'ip'; ip: string; port: number } | { kind: 'host'; host: string; port: number };

/** This waypoint as Services name it: `<name>.<ns>.svc.<domain>` in namespace `<ns>`. */
export interface WaypointSelf {
  name: string;
  namespace: string;
  hostname: string;
}

export type InboundTarget =
  | {
      ok: true;
      destination: DestinationService;
      /** The port is declared TCP (or TLS): pass bytes through without parsing HTTP. */
      tcp: boolean;
    }
  | { ok: false; status: 503; reason: string };

/** Whether `svc`'s traffic is sent to this waypoint (its istio.io/use-waypoint resolution). */
export function isServedBy(
  svc: Pick<Service, 'waypoint'> | Pick<Workload, 'waypoint'>,
  self: WaypointSelf,
): boolean {
  const d = svc.waypoint?.destination;
  return d?.kind === 'hostname' && d.namespace === self.namespace && d.hostname === self.hostname;
}

export function buildInboundTarget(
  state: MeshState,
  self: WaypointSelf,
  authority: InboundAuthority,
  clientNamespace: string | undefined,
): InboundTarget {
  const where =
    authority.kind === 'ip' ? `${authority.ip}:${authority.port}` : `${authority.host}:${authority.port}`;
  let svc: Service | undefined;
  if (authority.kind === 'ip') {
    const candidates = state.findServicesByVip(authority.ip, clientNamespace);
    svc = candidates.find((s) => isServedBy(s, self)) ?? candidates[0];
    if (!svc) {
      const w = state.findWorkloadByIp(authority.ip);
      if (!w) return refuse(`${where} is not the address of any known Service or workload`);
      if (!isServedBy(w, self))
        return refuse(
          `${where} is workload ${w.namespace}/${w.name}, which does not use waypoint ${self.namespace}/${self.name} (istio.io/use-waypoint on the Pod or its Namespace, with a waypoint for workload or all traffic)`,
        );
      // Workload-addressed traffic: only the waypoint's own policies apply; the port is the pod's.
      return {
        ok: true,
        destination: {
          namespace: w.namespace,
          name: w.name,
          port: authority.port,
          vip: authority.ip,
          workload: { ip: authority.ip },
        },
        tcp: false,
      };
    }
  } else {
    svc = state.findServiceByHostname(`${authority.host}.`, clientNamespace);
    if (!svc) return refuse(`${authority.host} is not the hostname of any known Service`);
  }
  if (!isServedBy(svc, self)) {
    return refuse(
      `Service ${svc.namespace}/${svc.name} does not use waypoint ${self.namespace}/${self.name} (its istio.io/use-waypoint label names ${describeWaypoint(svc)})`,
    );
  }
  if (svc.ports[authority.port] === undefined) {
    const ports = Object.keys(svc.ports).join(', ') || 'none';
    return refuse(`Service ${svc.namespace}/${svc.name} has no port ${authority.port} (its ports: ${ports})`);
  }
  const proto = svc.appProtocols[authority.port];
  return {
    ok: true,
    destination: {
      namespace: svc.namespace,
      name: svc.name,
      port: authority.port,
      ...(authority.kind === 'ip' ? { vip: authority.ip } : {}),
    },
    tcp: proto === 'TCP' || proto === 'TLS',
  };
}

function describeWaypoint(svc: Service): string {
  const d = svc.waypoint?.destination;
  if (!d) return 'no waypoint';
  return d.kind === 'hostname' ? `${d.namespace}/${d.hostname}` : d.ip;
}

function refuse(reason: string): InboundTarget {
  return { ok: false, status: 503, reason };
}

/**
 * The client as the waypoint sees it: the tunnel's verified peer identity (the original client
 * pod's, since ztunnel connects with the pod's certificate), and its IP from the `for` parameter
 * of the CONNECT's `forwarded` header (`ip:port`, `[v6]:port` or a bare IP), else the tunnel's
 * peer address.
 */
export function buildRequestClient(
  peerIdentity: string | undefined,
  peerIp: string,
  forwardedFor: string | undefined,
): RequestClient {
  let ip = peerIp;
  if (forwardedFor !== undefined) {
    const f = forwardedFor.trim();
    const candidate = f.startsWith('[')
      ? f.slice(1, f.indexOf(']') < 0 ? f.length : f.indexOf(']'))
      : f.split(':').length === 2
        ? (f.split(':')[0] ?? '')
        : f;
    if (isIP(candidate) !== 0) ip = candidate;
  }
  return peerIdentity === undefined ? { ip } : { identity: peerIdentity, ip };
}
