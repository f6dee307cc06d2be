/**
 * Envoy response flags and the waypoint's synthetic responses. This is the one place that maps a
 * non-forwarded outcome (deny, no route, fault, overflow, upstream failure) to the HTTP answer the
 * client sees; statuses, bodies and flags are Envoy's so that clients, dashboards and access-log
 * parsers see what they would see behind an Istio waypoint.
 */
import type { UpstreamFailure } from './retry-policy.js';

/** The subset of Envoy's response flags the waypoint produces. */
export type ResponseFlag =
  | 'UH' // no healthy upstream host
  | 'UF' // upstream connection failure
  | 'UO' // upstream overflow (circuit breaker)
  | 'NR' // no route configured
  | 'URX' // upstream retry limit exceeded
  | 'UC' // upstream connection termination
  | 'UR' // upstream remote reset
  | 'UT' // upstream request timeout
  | 'LR' // connection local reset
  | 'DC' // downstream connection termination
  | 'DI' // delay injected by the fault filter
  | 'FI' // aborted by the fault filter
  | 'DPE'; // downstream protocol error

/** Envoy's access-log / metric rendering: flags joined by ',' or '-' when none. */
export function formatResponseFlags(flags: readonly ResponseFlag[]): string {
  return flags.length === 0 ? '-' : [...new Set(flags)].join(',');
}

export const RBAC_DENIED_STATUS = 403;
export const RBAC_DENIED_BODY = 'RBAC: access denied';
export const NO_ROUTE_STATUS = 404;
export const FAULT_ABORT_BODY = 'fault filter abort';
export const NO_HEALTHY_UPSTREAM_BODY = 'no healthy upstream';
export const UPSTREAM_TIMEOUT_BODY = 'upstream request timeout';

export interface SyntheticResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  responseFlags: ResponseFlag[];
  /** Envoy's %RESPONSE_CODE_DETAILS%, for access logs. */
  details: string;
}

export type LocalReplyReason =
  | { kind: 'bad-request'; reason: string }
  | { kind: 'rbac-denied'; matchedPolicy: string | undefined }
  | { kind: 'no-route' }
  | { kind: 'direct-response'; status: number }
  | { kind: 'invalid-backend'; reason: string }
  | { kind: 'fault-abort'; status: number; grpcStatus: number | undefined; delayed: boolean }
  | { kind: 'no-healthy-upstream' }
  | { kind: 'overflow' }
  | { kind: 'request-timeout' }
  | { kind: 'upgrade-failed' }
  | { kind: 'upstream-failure'; failure: UpstreamFailure; retryLimitExceeded: boolean };

const TEXT = { 'content-type': 'text/plain' };

function resetBody(reason: string): string {
  return `upstream connect error or disconnect/reset before headers. reset reason: ${reason}`;
}

/** The one mapping from a local outcome to the response the client gets. */
export function buildLocalReply(r: LocalReplyReason): SyntheticResponse {
  switch (r.kind) {
    case 'bad-request':
      return { status: 400, headers: TEXT, body: 'Bad Request', responseFlags: ['DPE'], details: r.reason };
    case 'rbac-denied':
      return {
        status: RBAC_DENIED_STATUS,
        headers: TEXT,
        body: RBAC_DENIED_BODY,
        responseFlags: [],
        details: `rbac_access_denied_matched_policy[${r.matchedPolicy ?? 'none'}]`,
      };
    case 'no-route':
      return {
        status: NO_ROUTE_STATUS,
        headers: {},
        body: '',
        responseFlags: ['NR'],
        details: 'route_not_found',
      };
    case 'direct-response':
      return { status: r.status, headers: {}, body: '', responseFlags: [], details: 'direct_response' };
    case 'invalid-backend':
      return {
        status: 500,
        headers: {},
        body: '',
        responseFlags: [],
        details: `invalid_backend{${r.reason}}`,
      };
    case 'fault-abort': {
      const flags: ResponseFlag[] = r.delayed ? ['DI', 'FI'] : ['FI'];
      if (r.grpcStatus !== undefined) {
        return {
          status: 200,
          headers: {
            'content-type': 'application/grpc',
            'grpc-status': String(r.grpcStatus),
            'grpc-message': FAULT_ABORT_BODY,
          },
          body: '',
          responseFlags: flags,
          details: 'fault_filter_abort',
        };
      }
      return {
        status: r.status,
        headers: TEXT,
        body: FAULT_ABORT_BODY,
        responseFlags: flags,
        details: 'fault_filter_abort',
      };
    }
    case 'no-healthy-upstream':
      return {
        status: 503,
        headers: TEXT,
        body: NO_HEALTHY_UPSTREAM_BODY,
        responseFlags: ['UH'],
        details: 'no_healthy_upstream',
      };
    case 'overflow':
      return {
        status: 503,
        headers: TEXT,
        body: resetBody('overflow'),
        responseFlags: ['UO'],
        details: 'upstream_reset_before_response_started{overflow}',
      };
    case 'request-timeout':
      return {
        status: 504,
        headers: TEXT,
        body: UPSTREAM_TIMEOUT_BODY,
        responseFlags: ['UT'],
        details: 'upstream_response_timeout',
      };
    case 'upgrade-failed':
      // Envoy's answer to an Upgrade the listener is not configured for (Istio allows websocket).
      return { status: 403, headers: {}, body: '', responseFlags: [], details: 'upgrade_failed' };
    case 'upstream-failure':
      return buildUpstreamFailureReply(r.failure, r.retryLimitExceeded);
  }
}

function buildUpstreamFailureReply(failure: UpstreamFailure, retryLimitExceeded: boolean): SyntheticResponse {
  const urx: ResponseFlag[] = retryLimitExceeded ? ['URX'] : [];
  switch (failure) {
    case 'timeout':
      return {
        status: 504,
        headers: TEXT,
        body: UPSTREAM_TIMEOUT_BODY,
        responseFlags: ['UT', ...urx],
        details: 'upstream_per_try_timeout',
      };
    case 'overflow':
      return buildLocalReply({ kind: 'overflow' });
    case 'connect-failure':
      return {
        status: 503,
        headers: TEXT,
        body: resetBody('connection failure'),
        responseFlags: ['UF', ...urx],
        details: 'upstream_reset_before_response_started{connection_failure}',
      };
    case 'refused-stream':
      return {
        status: 503,
        headers: TEXT,
        body: resetBody('remote refused stream reset'),
        responseFlags: ['UR', ...urx],
        details: 'upstream_reset_before_response_started{remote_refused_stream_reset}',
      };
    case 'reset-before-request':
    case 'reset':
      return {
        status: 503,
        headers: TEXT,
        body: resetBody('connection termination'),
        responseFlags: ['UC', ...urx],
        details: 'upstream_reset_before_response_started{connection_termination}',
      };
  }
}
