/**
 * What a caller asks the pool for, its validation, and the pool key: pure functions.
 */
import { isIP } from 'node:net';
import { MeshError } from '../errors.js';
import type { WorkloadCertificate } from '../identity/index.js';
import { canonicalIp, formatAuthority } from './headers.js';
import type { DialFailureReason } from './metrics.js';
import type { HboneRequestHeaders, SocketAddress, SocketConnector } from './types.js';

export interface HboneConnectRequest {
  source: {
    /** SPIFFE URI of the source workload; must be `cert.uri`. */
    identity: string;
    cert: WorkloadCertificate;
  };
  /** Acceptable server identities (workload identity plus service SANs), in a stable order. */
  expectedIdentities: readonly string[];
  /** The TCP next hop, for example podIP:15008. */
  dst: SocketAddress;
  /** Local address to bind (local mode: the source pod's loopback IP). */
  sourceIp?: string;
  /** The CONNECT `:authority`. */
  authority: string;
  headers: HboneRequestHeaders;
  /**
   * Opens the TCP connection when this request needs a new session (net.connect by default).
   * Requests that share a pool key share sessions, so their connectors must be equivalent (in
   * capture mode they are: the source IP in the key names one pod, hence one network namespace).
   */
  connectSocket?: SocketConnector;
}

/** The pool key, ztunnel's WorkloadKey: (source identity, expected identities, dst, source IP). */
export function poolKey(
  req: Pick<HboneConnectRequest, 'source' | 'expectedIdentities' | 'dst' | 'sourceIp'>,
): string {
  return [
    req.source.identity,
    req.expectedIdentities.join(','),
    formatAuthority(canonicalIp(req.dst.ip), req.dst.port),
    req.sourceIp ? canonicalIp(req.sourceIp) : '',
  ].join('|');
}

export function validateRequest(req: HboneConnectRequest): void {
  const bad = (what: string, hint: string): MeshError =>
    new MeshError('MESH_ERR_INVALID_ARGUMENT', `HBONE connect: ${what}`, { hint });
  if (req.source.identity !== req.source.cert.uri)
    throw bad(
      `source identity ${req.source.identity} is not the certificate's (${req.source.cert.uri})`,
      'pass the certificate of the source workload',
    );
  if (req.expectedIdentities.length === 0)
    throw bad('no expected server identity', 'pass the destination workload identity (and service SANs)');
  if (isIP(req.dst.ip) === 0)
    throw bad(`next hop "${req.dst.ip}" is not an IP address`, 'dial HBONE peers by IP');
  if (!Number.isInteger(req.dst.port) || req.dst.port < 1 || req.dst.port > 65535)
    throw bad(`next hop port ${req.dst.port} is invalid`, 'use the peer HBONE port, normally 15008');
  if (req.sourceIp !== undefined && isIP(req.sourceIp) === 0)
    throw bad(`source IP "${req.sourceIp}" is not an IP address`, 'pass the source pod IP or nothing');
}

export function dialFailureReason(err: unknown): DialFailureReason {
  if (!(err instanceof MeshError)) return 'session';
  switch (err.code) {
    case 'MESH_ERR_HBONE_CONNECT_TIMEOUT':
      return 'connect_timeout';
    case 'MESH_ERR_HBONE_CONNECT':
      return 'connect';
    case 'MESH_ERR_HBONE_IDENTITY':
      return 'identity';
    case 'MESH_ERR_HBONE_TLS':
      return 'tls';
    default:
      return 'session';
  }
}
