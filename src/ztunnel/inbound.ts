/**
 * Inbound HBONE for one local workload: the policy the HBONE server consults for each CONNECT
 * stream that passed the protocol checks (method, authority, authority IP = the workload's IP).
 * In DESIGN's order:
 *   - the local workload is unknown (removed from config) or the port does not resolve → 503;
 *   - authorization denies → 401;
 *   - otherwise the server dials the workload itself (never anywhere else) and answers 200.
 * Every stream that got this far is reported once: Istio TCP metrics (reporter=destination) and
 * one access-log line; live tunnels are tracked so that a policy change can close them. That
 * bookkeeping is shared with the plaintext twin (inbound-plaintext.ts) in InboundConnection.
 */
import type { InboundDecision, InboundPolicy, InboundRequest, TunnelRecord } from '../hbone/index.js';
import {
  serviceKey,
  type ConnectionAttributes,
  type MeshState,
  type Service,
  type Workload,
} from '../state/index.js';
import { InboundConnection } from './inbound-connection.js';
import type { ProxyInputs } from './inputs.js';

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
    const conn = new InboundConnection(inputs, {
      id: request.connectionId,
      protocol: 'HBONE',
      workload,
      source: state.findWorkloadByIp(request.peerAddress.ip),
      sourceIdentity: request.peer.uri,
      srcAddr: addr(request.peerAddress.ip, request.peerAddress.port),
      dstAddr: addr(request.localAddress.ip, request.localAddress.port),
      dstHboneAddr:
        request.authority.kind === 'ip'
          ? addr(request.authority.ip, request.authority.port)
          : `${request.authority.host}:${request.authority.port}`,
    });
    const fail = (status: 401 | 503, reason: string): InboundDecision => ({ ok: false, status, reason });
    if (!workload) {
      const reason = `unknown local workload ${workloadUid}`;
      conn.reject(reason, 'CONNECT', { status: 503 });
      return fail(503, reason);
    }
    if (inputs.draining()) {
      const reason = 'destination proxy is shutting down';
      conn.reject(reason, 'CONNECT', { status: 503 });
      return fail(503, reason);
    }
    const resolved = buildInboundPort(state, workload, request, inputs.illegalPorts);
    if (!resolved.ok) {
      conn.reject(resolved.reason, 'CONNECT', { status: 503, metrics: true });
      return fail(503, resolved.reason);
    }
    const service =
      resolved.service ?? findInboundService(state, workload, request.headers.forwarded, resolved.port);
    const attrs: ConnectionAttributes = {
      workload,
      sourceIdentity: request.peer.uri,
      sourceIp: request.peerAddress.ip,
      destinationIp: request.localAddress.ip,
      destinationPort: resolved.port,
    };
    const decision = conn.authorize(state, attrs, service, 401);
    if (!decision.allow) return fail(401, `connection closed due to policy rejection: ${decision.reason}`);
    conn.open(service);
    const target = {
      host: request.localAddress.ip,
      port: resolved.port,
      ...(inputs.preserveSourceIp ? { localAddress: request.peerAddress.ip } : {}),
    };
    return {
      ok: true,
      target,
      observer: {
        established: (tunnel) =>
          conn.track(attrs, addr(target.host, target.port), (reason) => tunnel.close(reason)),
        closed: (r: TunnelRecord) =>
          conn.finish({
            bytesUp: r.bytesUp,
            bytesDown: r.bytesDown,
            durationMs: r.durationMs,
            status: r.status,
            dialFailed: r.status === 503,
            ...(r.error ? { error: r.error } : {}),
          }),
      },
    };
  };
}
