/**
 * W3C trace context and x-request-id, per hop:
 * - a valid incoming `traceparent` keeps its trace id and flags; the waypoint forwards a new span
 *   (parent) id, and `tracestate` passes through unchanged;
 * - a missing or invalid one is replaced by a fresh trace (and any `tracestate` is dropped, as
 *   the W3C spec requires when traceparent is invalid);
 * - an incoming `x-request-id` is kept (Envoy keeps it for mesh-internal requests), otherwise a
 *   UUIDv4 is generated.
 */
import { randomUUID } from 'node:crypto';
import type { HeaderMap } from './http-types.js';
import { headerValue } from './http-types.js';
import type { RandomBytes } from './random.js';
import { defaultRandomBytes } from './random.js';

export interface TraceParent {
  version: string;
  /** 32 lower-case hex digits, not all zero. */
  traceId: string;
  /** 16 lower-case hex digits, not all zero. */
  parentId: string;
  /** 2 hex digits; bit 0 = sampled. */
  flags: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

export function parseTraceParent(value: string | undefined): TraceParent | undefined {
  if (value === undefined) return undefined;
  const m = TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, version = '', traceId = '', parentId = '', flags = '', rest] = m;
  if (version === 'ff') return undefined;
  // Version 00 has exactly four fields; later versions may append more (forward compatibility).
  if (version === '00' && rest !== undefined) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  return { version, traceId, parentId, flags };
}

export function formatTraceParent(t: TraceParent): string {
  return `00-${t.traceId}-${t.parentId}-${t.flags}`;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function nonZeroHex(n: number, randomBytes: RandomBytes): string {
  for (;;) {
    const h = hex(randomBytes(n));
    if (!/^0+$/.test(h)) return h;
  }
}

export interface OutgoingTrace {
  traceparent: string;
  /** Forwarded only when the incoming traceparent was valid. */
  tracestate: string | undefined;
  /** The span id this hop uses as parent for the next one. */
  spanId: string;
  traceId: string;
  /** True when the request arrived without a usable traceparent. */
  started: boolean;
}

export function buildOutgoingTrace(
  headers: HeaderMap,
  randomBytes: RandomBytes = defaultRandomBytes,
): OutgoingTrace {
  const incoming = parseTraceParent(headerValue(headers, 'traceparent'));
  const spanId = nonZeroHex(8, randomBytes);
  if (incoming) {
    return {
      traceparent: formatTraceParent({ ...incoming, parentId: spanId }),
      tracestate: headerValue(headers, 'tracestate'),
      spanId,
      traceId: incoming.traceId,
      started: false,
    };
  }
  const traceId = nonZeroHex(16, randomBytes);
  return {
    traceparent: formatTraceParent({ version: '00', traceId, parentId: spanId, flags: '00' }),
    tracestate: undefined,
    spanId,
    traceId,
    started: true,
  };
}

const REQUEST_ID = /^[\x21-\x7e]{1,256}$/;

/** The request id to forward: the incoming one if it is sane, else a new UUIDv4. */
export function buildRequestId(headers: HeaderMap, newId: () => string = randomUUID): string {
  const incoming = headerValue(headers, 'x-request-id');
  return incoming !== undefined && REQUEST_ID.test(incoming) ? incoming : newId();
}
