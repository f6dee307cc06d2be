/**
 * hbone/: the HBONE tunnel protocol (HTTP/2 CONNECT over mutual TLS) and nothing mesh-specific.
 * The server takes an InboundPolicy callback for every decision; the pool takes fully resolved
 * requests (next hop, authority, expected identities).
 */
export { HboneServer } from './server.js';
export { poolKey, type HboneConnectRequest } from './pool-request.js';
export { HbonePool, type HbonePoolOptions, type PoolSessionEvent, type PoolStats } from './pool.js';
export { HboneStatusError } from './client.js';
export { BidiCopy, copyBidirectional, isBenignCloseError, type CopyResult } from './copy.js';
export { TCP_KEEPALIVE_MS, dialTcp } from './dial.js';
export {
  authorityToString,
  buildBaggage,
  buildForwarded,
  buildTraceparent,
  canonicalIp,
  formatAuthority,
  isTraceparent,
  parseAuthority,
  parseBaggage,
  parseForwarded,
  sameIp,
  type Authority,
  type AuthorityParse,
  type WorkloadBaggage,
} from './headers.js';
export { buildInboundCheck, type InboundCheck, type InboundCheckInput } from './inbound-check.js';
export { HboneMetrics, type DialFailureReason, type HboneDirection } from './metrics.js';
export type {
  DialResult,
  DialTarget,
  Dialer,
  HboneRequestHeaders,
  HboneServerOptions,
  HboneServerSessionEvent,
  InboundDecision,
  InboundPolicy,
  InboundRequest,
  PeerIdentity,
  RejectedStream,
  SocketAddress,
  SocketConnector,
  TunnelHandle,
  TunnelObserver,
  TunnelRecord,
} from './types.js';
