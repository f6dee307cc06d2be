/**
 * One access-log line per connection, written when it closes, with ztunnel's field names:
 * "connection complete" at info on success, at error with `error` on failure. Byte fields are
 * from the reporter's point of view (ztunnel's convention): outbound bytes_sent = client→server,
 * inbound bytes_sent = server→client.
 */
import type { Logger } from '../telemetry/index.js';
import type { TelemetryService, TelemetryWorkload } from './metrics.js';

export interface AccessLogEntry {
  direction: 'outbound' | 'inbound';
  /** Connection id: the HBONE traceparent, or a generated one for plain TCP. */
  id: string;
  srcAddr: string;
  srcWorkload?: TelemetryWorkload;
  srcIdentity?: string;
  /** The actual TCP destination (for HBONE, <ip>:15008). */
  dstAddr: string;
  /** The CONNECT authority, when HBONE. */
  dstHboneAddr?: string;
  dstService?: TelemetryService;
  dstWorkload?: TelemetryWorkload;
  dstIdentity?: string;
  /** Bytes client→server. */
  bytesUp: number;
  /** Bytes server→client. */
  bytesDown: number;
  durationMs: number;
  error?: string;
  responseFlags?: string;
  /** HBONE response status, when one was exchanged. */
  status?: number;
}

export function writeAccessLog(log: Logger, e: AccessLogEntry): void {
  const outbound = e.direction === 'outbound';
  const fields: Record<string, unknown> = {
    scope: 'access',
    'conn.id': e.id,
    'src.addr': e.srcAddr,
    'src.workload': e.srcWorkload?.name,
    'src.namespace': e.srcWorkload?.namespace,
    'src.identity': e.srcIdentity,
    'dst.addr': e.dstAddr,
    'dst.hbone_addr': e.dstHboneAddr,
    'dst.service': e.dstService?.hostname,
    'dst.workload': e.dstWorkload?.name,
    'dst.namespace': e.dstWorkload?.namespace,
    'dst.identity': e.dstIdentity,
    direction: e.direction,
    bytes_sent: outbound ? e.bytesUp : e.bytesDown,
    bytes_recv: outbound ? e.bytesDown : e.bytesUp,
    duration: `${Math.round(e.durationMs)}ms`,
    response_flags: e.responseFlags,
    status: e.status,
  };
  for (const k of Object.keys(fields)) if (fields[k] === undefined) delete fields[k];
  if (e.error) log.error({ ...fields, error: e.error }, 'connection complete');
  else log.info(fields, 'connection complete');
}

/**
 * A connection refused before there was enough to report it as a connection (no metrics):
 * ztunnel's "connection failed" at warn, with only the addresses, the direction and the error.
 */
export function writeEarlyDeny(
  log: Logger,
  e: { direction: 'outbound' | 'inbound'; srcAddr: string; dstAddr: string; error: string },
): void {
  log.warn(
    { scope: 'access', 'src.addr': e.srcAddr, 'dst.addr': e.dstAddr, direction: e.direction, error: e.error },
    'connection failed',
  );
}
