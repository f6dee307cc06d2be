// Public face of ztunnel/ (so far: the outbound route decision).
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
