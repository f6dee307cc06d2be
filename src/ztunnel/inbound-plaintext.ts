/**
 * Captured plaintext inbound (15006, capture mode only): a connection to a local workload from a
 * client outside the mesh, redirected here by the pod's iptables rules. ztunnel's "inbound
 * passthrough", in its order:
 *   - the original destination (SO_ORIGINAL_DST) is read; its port must not be one of the mesh's
 *     own ports (a call to pod:15006 would loop) and its IP must be the workload's own: early
 *     deny, logged as "connection failed", no metrics;
 *   - L4 authorization with NO peer identity (so PeerAuthentication STRICT, a DENY of
 *     notPrincipals presence, rejects it): metrics with response_flags DENY and an access-log line;
 *   - dial the app inside the pod (marked, from the client's own IP when preserveSourceIp), then
 *     copy both ways. Metrics: reporter=destination, connection_security_policy unknown.
 * The connection never goes anywhere but the local workload's own IP and the original port.
 */
import type net from 'node:net';
import { errorMessage } from '../errors.js';
import { buildTraceparent, copyBidirectional } from '../hbone/index.js';
import { canonicalIp, type ConnectionAttributes } from '../state/index.js';
import { writeEarlyDeny } from './access-log.js';
import { findInboundService } from './inbound.js';
import { InboundConnection } from './inbound-connection.js';
import type { ProxyInputs } from './inputs.js';
import { fetchTcpConnection, type WorkloadSockets } from './socket-factory.js';

const addr = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

export async function proxyToInboundPlaintext(
  inputs: ProxyInputs,
  workloadUid: string,
  sockets: WorkloadSockets,
  downstream: net.Socket,
): Promise<void> {
  const state = inputs.state();
  const srcIp = canonicalIp(downstream.remoteAddress ?? '') ?? downstream.remoteAddress ?? '';
  const srcAddr = addr(srcIp, downstream.remotePort ?? 0);
  const earlyDeny = (dstAddr: string, error: string) => {
    writeEarlyDeny(inputs.accessLog, { direction: 'inbound', srcAddr, dstAddr, error });
    downstream.resetAndDestroy();
  };
  const original = inputs.sockets.originalDestination(downstream);
  if (!original.ok) return earlyDeny('unknown', original.reason);
  const dstAddr = addr(original.ip, original.port);
  if (inputs.illegalPorts.includes(original.port))
    return earlyDeny(dstAddr, `attempted recursive call to ourselves (port ${original.port})`);
  const workload = state.findWorkloadByUid(workloadUid);
  if (!workload) return earlyDeny(dstAddr, `unknown local workload ${workloadUid}`);
  if (!workload.workloadIps.includes(original.ip))
    return earlyDeny(dstAddr, `ip mismatch: ${original.ip} is not an address of ${workload.name}`);
  if (inputs.draining()) return earlyDeny(dstAddr, 'destination proxy is shutting down');

  const conn = new InboundConnection(inputs, {
    id: buildTraceparent(),
    protocol: 'TCP',
    workload,
    source: state.findWorkloadByIp(srcIp),
    sourceIdentity: undefined,
    srcAddr,
    dstAddr,
  });
  const service = findInboundService(state, workload, undefined, original.port);
  const attrs: ConnectionAttributes = {
    workload,
    sourceIdentity: undefined,
    sourceIp: srcIp,
    destinationIp: original.ip,
    destinationPort: original.port,
  };
  if (!conn.authorize(state, attrs, service).allow) {
    downstream.resetAndDestroy();
    return;
  }
  conn.open(service);
  const dial = await fetchTcpConnection(
    sockets,
    {
      host: original.ip,
      port: original.port,
      ...(inputs.preserveSourceIp ? { localAddress: srcIp } : {}),
    },
    inputs.config.connectTimeoutMs,
  );
  if (!dial.ok) {
    conn.finish({ bytesUp: 0, bytesDown: 0, error: dial.reason, dialFailed: true });
    downstream.resetAndDestroy();
    return;
  }
  if (downstream.destroyed) {
    dial.socket.destroy();
    conn.finish({ bytesUp: 0, bytesDown: 0, error: 'the client closed the connection during the dial' });
    return;
  }
  const copy = copyBidirectional(downstream, dial.socket);
  conn.track(attrs, dstAddr, (reason) => copy.abort(new Error(reason)));
  const result = await copy.done;
  conn.finish({
    bytesUp: result.bytesUp,
    bytesDown: result.bytesDown,
    ...(result.error ? { error: errorMessage(result.error) } : {}),
  });
}
