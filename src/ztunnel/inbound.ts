/**
 * Inbound HBONE for one local workload: the policy the HBONE server consults for each CONNECT
 * stream that passed the protocol checks (method, authority, authority IP = the workload's IP).
 * In DESIGN's order:
 *   - the local workload is unknown (removed from config) or the port does not resolve → 503;
 *   - authorization denies → 401;
 *   - otherwise the server dials the workload itself (never anywhere else) and answers 200.
 * Every stream that got this far is reported once: Istio TCP metrics (reporter=destination) and
 * one access-log line; live tunnels are tracked so that a policy change can close them.
 */
import type { InboundDecision, InboundPolicy, InboundRequest, TunnelRecord } from '../hbone/index.js';
import {
  buildAuthzDecision,
  identityOf,
  serviceKey,
  type ConnectionAttributes,
  type MeshState,
  type Service,
  type Workload,
} from '../state/index.js';
import { writeAccessLog } from './access-log.js';
import type { ProxyInputs } from './inputs.js';
import type { ResponseFlags, TrafficLabelsInput } from './metrics.js';

type PortResolution = { ok: true; port: number; service?: Service } | { ok: false; reason: string };

/** The app port for this stream: the authority's port, or a service port mapped for a hostname authority. */
export function buildInboundPort(
  state: MeshState,
  workload: Workload,
  request: InboundRequest,
  illegalPorts: readonly number[],
): PortResolution {
  const a = request.authority;
  let port: number;
  let service: Service | undefined;
  if (a.kind === 'ip') {
    port = a.port;
  } else {
    service = state.findServiceByHostname(a.host, workload.namespace);
    if (!service) return { ok: false, reason: `unknown service hostname ${a.host}` };
    const mapped = workload.services[serviceKey(service)]?.[a.port] ?? service.ports[a.port];
    if (!mapped)
      return {
        ok: false,
        reason: `port ${a.port} of ${service.hostname} does not resolve to a port of ${workload.name}`,
      };
    port = mapped;
  }
  if (illegalPorts.includes(port)) return { ok: false, reason: `port ${port} is reserved for the mesh` };
  return { ok: true, port, ...(service ? { service } : {}) };
}

/**
 * The destination service for telemetry, as ztunnel guesses it: the `forwarded` header's host=
 * if that is one of the workload's services, else the first service whose port maps to `port`.
 */
export function findInboundService(
  state: MeshState,
  workload: Workload,
  forwarded: string | undefined,
  port: number,
): Service | undefined {
  const host = /(?:^|[;,\s])host=("?)([^";,\s]+)\1/.exec(forwarded ?? '')?.[2];
  const keys = Object.keys(workload.services);
  if (host) {
    const byHost = keys.map((k) => state.findServiceByKey(k)).find((s) => s?.hostname === host);
    if (byHost) return byHost;
  }
  for (const k of keys) {
    const svc = state.findServiceByKey(k);
    const ports = workload.services[k] ?? {};
    if (svc && Object.entries(svc.ports).some(([sp, tp]) => (ports[Number(sp)] ?? tp) === port)) return svc;
  }
  return undefined;
}

const addr = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

export function buildInboundPolicy(inputs: ProxyInputs, workloadUid: string): InboundPolicy {
  return (request): InboundDecision => {
    const state = inputs.state();
    const workload = state.findWorkloadByUid(workloadUid);
    const source = state.findWorkloadByIp(request.peerAddress.ip);
    const started = Date.now();
    const base = {
      direction: 'inbound' as const,
      id: request.connectionId,
      srcAddr: addr(request.peerAddress.ip, request.peerAddress.port),
      srcWorkload: source,
      srcIdentity: request.peer.uri,
      dstAddr: addr(request.localAddress.ip, request.localAddress.port),
      dstHboneAddr:
        request.authority.kind === 'ip'
          ? addr(request.authority.ip, request.authority.port)
          : `${request.authority.host}:${request.authority.port}`,
    };
    const fail = (
      status: 401 | 503,
      reason: string,
      flags: ResponseFlags,
      labels?: TrafficLabelsInput,
    ): InboundDecision => {
      if (labels)
        inputs.metrics.recordOpen(labels).close({ bytesReceived: 0, bytesSent: 0, responseFlags: flags });
      writeAccessLog(inputs.accessLog, {
        ...base,
        dstWorkload: workload,
        bytesUp: 0,
        bytesDown: 0,
        durationMs: Date.now() - started,
        error: reason,
        responseFlags: flags,
        status,
      });
      return { ok: false, status, reason };
    };
    if (!workload) return fail(503, `unknown local workload ${workloadUid}`, 'CONNECT');
    if (inputs.draining()) return fail(503, 'destination proxy is shutting down', 'CONNECT');
    const resolved = buildInboundPort(state, workload, request, inputs.illegalPorts);
    const destinationPrincipal = identityOf(workload);
    const labels = (service: Service | undefined): TrafficLabelsInput => ({
      reporter: 'destination',
      source,
      sourcePrincipal: request.peer.uri,
      destination: workload,
      destinationPrincipal,
      destinationService: service,
      mtls: true,
    });
    if (!resolved.ok) return fail(503, resolved.reason, 'CONNECT', labels(undefined));
    const service =
      resolved.service ?? findInboundService(state, workload, request.headers.forwarded, resolved.port);
    const attrs: ConnectionAttributes = {
      workload,
      sourceIdentity: request.peer.uri,
      sourceIp: request.peerAddress.ip,
      destinationIp: request.localAddress.ip,
      destinationPort: resolved.port,
    };
    const decision = buildAuthzDecision(state, attrs);
    if (!decision.allow) {
      return fail(
        401,
        `connection closed due to policy rejection: ${decision.reason}`,
        'DENY',
        labels(service),
      );
    }
    const record = inputs.metrics.recordOpen(labels(service));
    let unregister: (() => void) | undefined;
    let policyClosed = false;
    const target = {
      host: request.localAddress.ip,
      port: resolved.port,
      ...(inputs.preserveSourceIp ? { localAddress: request.peerAddress.ip } : {}),
    };
    return {
      ok: true,
      target,
      observer: {
        established: (tunnel) => {
          unregister = inputs.connections.register({
            attrs,
            src: base.srcAddr,
            originalDst: base.dstHboneAddr,
            actualDst: addr(target.host, target.port),
            protocol: 'HBONE',
            close: (reason) => {
              policyClosed = true;
              tunnel.close(reason);
            },
          });
        },
        closed: (r: TunnelRecord) => {
          unregister?.();
          const flags: ResponseFlags = r.status === 503 ? 'CONNECT' : policyClosed ? 'DENY' : '-';
          record.close({ bytesReceived: r.bytesUp, bytesSent: r.bytesDown, responseFlags: flags });
          writeAccessLog(inputs.accessLog, {
            ...base,
            dstService: service,
            dstWorkload: workload,
            dstIdentity: destinationPrincipal,
            bytesUp: r.bytesUp,
            bytesDown: r.bytesDown,
            durationMs: r.durationMs,
            status: r.status,
            ...(flags !== '-' ? { responseFlags: flags } : {}),
            ...(r.error ? { error: r.error } : {}),
          });
        },
      },
    };
  };
}
