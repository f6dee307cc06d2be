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
