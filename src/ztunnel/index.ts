/** ztunnel/: the per-node L4 daemon: listeners, outbound routing, inbound HBONE, L4 authorization, telemetry. */
export {
  Reply,
  encodeClientConnect,
  encodeMethodSelection,
  encodeReply,
  parseGreeting,
  parseRequest,
  type ParseResult,
  type ReplyCode,
  type Socks5Target,
} from './socks5.js';
export {
  buildRequest,
  DEFAULT_HBONE_PORT,
  DEFAULT_ILLEGAL_PORTS,
  type BuildRequestInput,
  type HboneRoute,
  type RouteDecision,
  type RouteFailure,
  type RouteFailureReason,
  type RouteTarget,
  type SocketAddress,
  type TcpRoute,
} from './route.js';
export { ConnectionManager, POLICY_CHANGE_REASON, type TrackedConnection } from './connection-manager.js';
export {
  LoopbackSocketFactory,
  fetchTcpConnection,
  type DialOptions,
  type ListenScope,
  type ListenTarget,
  type OriginalDestination,
  type SocketFactory,
  type WorkloadSockets,
} from './socket-factory.js';
export {
  NetnsSocketFactory,
  type CaptureNative,
  type NetnsSocketFactoryOptions,
} from './socket-factory-netns.js';
export { ProxyManager, PROXY_RETRY_MS, type WorkloadStateDump } from './proxy-manager.js';
export type { WorkloadPorts } from './workload-proxy.js';
export {
  TrafficMetrics,
  buildTrafficLabels,
  type ResponseFlags,
  type TrafficLabelsInput,
} from './metrics.js';
export { proxyToOutbound, socksReplyFor, type OutboundFailure, type OutboundRequest } from './outbound.js';
export { buildInboundPolicy, buildInboundPort, findInboundService } from './inbound.js';
export { proxyToInboundPlaintext } from './inbound-plaintext.js';
export type { ProxyInputs } from './inputs.js';
