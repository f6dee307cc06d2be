/**
 * Outbound: carry one connection from a local workload to its original destination.
 *
 *   entry (SOCKS5 15080, or captured 15001 with SO_ORIGINAL_DST) → buildRequest (pure) → HBONE via the
 *   shared pool, or plain TCP → bidirectional copy → metrics (reporter=source) + access log.
 *
 * Invariants: the route decision is made once per connection from one state snapshot; the entry
 * learns the outcome (established or why not) exactly once, before any byte is copied; every
 * connection that got a route is counted opened and closed once, with its response flags. Every
 * socket is opened through the source workload's sockets (capture mode: in its pod netns, marked).
 */
import type { Duplex } from 'node:stream';
import type net from 'node:net';
import { errorMessage, isMeshError, type MeshError } from '../errors.js';
import { buildBaggage, buildForwarded, buildTraceparent, copyBidirectional } from '../hbone/index.js';
import { identityOf, type Workload } from '../state/index.js';
import { writeAccessLog, type AccessLogEntry } from './access-log.js';
import type { ProxyInputs } from './inputs.js';
import type { ResponseFlags } from './metrics.js';
import { buildRequest, type RouteFailureReason, type RouteTarget } from './route.js';
import { fetchTcpConnection, type DialOptions, type WorkloadSockets } from './socket-factory.js';
import { Reply, type ReplyCode } from './socks5.js';

export type OutboundFailureKind =
  RouteFailureReason | 'denied' | 'refused' | 'timeout' | 'tls' | 'identity' | 'draining';

export interface OutboundFailure {
  kind: OutboundFailureKind;
  message: string;
}

export interface OutboundRequest {
  source: Workload;
  /** The source workload's sockets: every upstream connection is opened through them. */
  sockets: WorkloadSockets;
  /** The downstream client's address. */
  clientIp: string;
  clientPort: number;
  downstream: net.Socket;
  target: RouteTarget;
  /** The upstream is open; the entry may now confirm to the client (SOCKS5 success reply). */
  established?: () => void;
  /** The upstream could not be opened; the entry answers the client and closes. */
  failed?: (f: OutboundFailure) => void;
}

/** RFC 1928 reply code for an outbound failure. */
export function socksReplyFor(kind: OutboundFailureKind): ReplyCode {
  switch (kind) {
    case 'loop':
    case 'denied':
      return Reply.NotAllowed;
    case 'unknown_host':
    case 'no_healthy_upstream':
    case 'no_waypoint_instance':
    case 'timeout':
      return Reply.HostUnreachable;
    case 'refused':
    case 'unknown_service_port':
    case 'draining':
      return Reply.ConnectionRefused;
    case 'invalid_target':
      return Reply.AddressTypeNotSupported;
    case 'tls':
    case 'identity':
      return Reply.GeneralFailure;
  }
}

function classify(err: unknown): { kind: OutboundFailureKind; flags: ResponseFlags } {
  if (isMeshError(err)) {
    switch (err.code) {
      case 'MESH_ERR_HBONE_STATUS': {
        const status = (err as MeshError & { status?: number }).status;
        return status === 401 || status === 403
          ? { kind: 'denied', flags: 'CONNECT' }
          : { kind: 'refused', flags: 'CONNECT' };
      }
      case 'MESH_ERR_HBONE_CONNECT_TIMEOUT':
        return { kind: 'timeout', flags: 'NETWORK_POLICY' };
      case 'MESH_ERR_HBONE_TLS':
        return { kind: 'tls', flags: 'TLS_FAILURE' };
      case 'MESH_ERR_HBONE_IDENTITY':
        return { kind: 'identity', flags: 'TLS_FAILURE' };
      case 'MESH_ERR_CERT_UNAVAILABLE':
        return { kind: 'identity', flags: 'IDENTITY_ERROR' };
      default:
        return { kind: 'refused', flags: 'CONNECT' };
    }
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ETIMEDOUT') return { kind: 'timeout', flags: 'CONNECT' };
  return { kind: 'refused', flags: 'CONNECT' };
}

const addr = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/** Dial plain TCP on the source workload's behalf, with the connect timeout. */
async function dialTcp(inputs: ProxyInputs, sockets: WorkloadSockets, target: DialOptions): Promise<Duplex> {
  const dial = await fetchTcpConnection(sockets, target, inputs.config.connectTimeoutMs);
  if (dial.ok) return dial.socket;
  const err = new Error(dial.reason) as NodeJS.ErrnoException;
  if (dial.timedOut) err.code = 'ETIMEDOUT';
  throw err;
}

export async function proxyToOutbound(inputs: ProxyInputs, req: OutboundRequest): Promise<void> {
  const started = Date.now();
  const state = inputs.state();
  const connectionId = buildTraceparent();
  const targetText =
    'ip' in req.target ? addr(req.target.ip, req.target.port) : `${req.target.hostname}:${req.target.port}`;
  const base: Pick<AccessLogEntry, 'direction' | 'id' | 'srcAddr' | 'srcWorkload' | 'srcIdentity'> = {
    direction: 'outbound',
    id: connectionId,
    srcAddr: addr(req.clientIp, req.clientPort),
    srcWorkload: req.source,
  };
  const fail = (kind: OutboundFailureKind, message: string) => {
    if (req.failed) req.failed({ kind, message });
    else req.downstream.destroy();
  };
  if (inputs.draining()) {
    writeAccessLog(inputs.accessLog, {
      ...base,
      dstAddr: targetText,
      bytesUp: 0,
      bytesDown: 0,
      durationMs: 0,
      error: 'proxy is shutting down',
    });
    return fail('draining', 'proxy is shutting down');
  }
  const route = buildRequest({
    state,
    source: req.source,
    sourceIp: req.clientIp,
    target: req.target,
    hbonePort: inputs.config.ports.hbone,
    illegalPorts: inputs.illegalPorts,
  });
  if (!route.ok) {
    inputs.logger.warn(
      { 'src.addr': base.srcAddr, 'dst.addr': targetText, direction: 'outbound', error: route.message },
      'connection failed',
    );
    writeAccessLog(inputs.accessLog, {
      ...base,
      dstAddr: targetText,
      bytesUp: 0,
      bytesDown: 0,
      durationMs: Date.now() - started,
      error: route.message,
    });
    return fail(route.reason, route.message);
  }
  const hbone = route.protocol === 'HBONE';
  const sourcePrincipal = hbone ? identityOf(req.source) : undefined;
  const destinationPrincipal = hbone ? identityOf(route.destinationWorkload) : undefined;
  const record = inputs.metrics.recordOpen({
    reporter: 'source',
    source: req.source,
    sourcePrincipal,
    destination: route.destinationWorkload,
    destinationPrincipal,
    destinationService: route.destinationService,
    mtls: hbone,
  });
  const entry: AccessLogEntry = {
    ...base,
    srcIdentity: sourcePrincipal,
    dstAddr: addr(route.nextHop.ip, route.nextHop.port),
    dstService: route.destinationService,
    dstWorkload: route.destinationWorkload,
    dstIdentity: destinationPrincipal,
    bytesUp: 0,
    bytesDown: 0,
    durationMs: 0,
  };
  if (route.protocol === 'HBONE') entry.dstHboneAddr = route.authority;

  let upstream: Duplex;
  try {
    if (route.protocol === 'HBONE') {
      const cert = await inputs.certs.fetchCertificate({
        trustDomain: req.source.trustDomain,
        namespace: req.source.namespace,
        serviceAccount: req.source.serviceAccount,
      });
      upstream = await inputs.pool.connect({
        source: { identity: cert.uri, cert },
        expectedIdentities: route.expectedIdentities,
        dst: route.nextHop,
        sourceIp: req.clientIp,
        connectSocket: (t) => req.sockets.connect(t),
        authority: route.authority,
        headers: {
          forwarded: buildForwarded(req.clientIp, req.clientPort, route.destinationService?.hostname),
          traceparent: connectionId,
          baggage: buildBaggage({
            cluster: req.source.clusterId,
            namespace: req.source.namespace,
            workloadKind: req.source.workloadType,
            workloadName: req.source.workloadName,
            serviceName: req.source.canonicalName,
            serviceVersion: req.source.canonicalRevision,
            region: req.source.locality.region,
            zone: req.source.locality.zone,
          }),
        },
      });
    } else {
      upstream = await dialTcp(inputs, req.sockets, {
        host: route.nextHop.ip,
        port: route.nextHop.port,
        localAddress: req.clientIp,
      });
    }
  } catch (err) {
    const { kind, flags } = classify(err);
    const message = errorMessage(err);
    record.close({ bytesReceived: 0, bytesSent: 0, responseFlags: flags });
    writeAccessLog(inputs.accessLog, {
      ...entry,
      durationMs: Date.now() - started,
      error: message,
      responseFlags: flags,
    });
    return fail(kind, message);
  }
  req.established?.();
  const copy = copyBidirectional(req.downstream, upstream);
  const result = await copy.done;
  record.close({ bytesReceived: result.bytesUp, bytesSent: result.bytesDown, responseFlags: '-' });
  writeAccessLog(inputs.accessLog, {
    ...entry,
    bytesUp: result.bytesUp,
    bytesDown: result.bytesDown,
    durationMs: Date.now() - started,
    ...(result.error ? { error: errorMessage(result.error) } : {}),
  });
}
