/**
 * Retry policy: Istio's default, Istio's translation of an HTTPRoute `retry` stanza, and the
 * pure decisions built on them (is this outcome retriable, how long to back off).
 *
 * Envoy semantics (router retry_on), kept exactly:
 * - a response is retriable for `5xx` (any 5xx), `gateway-error` (502/503/504), `retriable-4xx`
 *   (409), `retriable-status-codes` (the listed codes), and the gRPC conditions `cancelled`,
 *   `deadline-exceeded`, `resource-exhausted`, `internal`, `unavailable` (grpc-status in the
 *   response headers);
 * - a failure before a response is retriable for `reset`, `5xx` and `gateway-error` (any reset),
 *   `connect-failure` (the connection could not be made), `refused-stream` (HTTP/2
 *   REFUSED_STREAM) and `reset-before-request` (reset before any request byte was sent);
 * - a per-try timeout is retriable only for `5xx` and `gateway-error` (Envoy treats it as a reset
 *   analogous to a gateway error); a local circuit-breaker overflow is never retried.
 *
 * meshd adds one guard Envoy does not have: a request with a non-idempotent method (POST, PATCH,
 * CONNECT, anything outside RFC 9110's idempotent set) is retried only on failures that prove the
 * backend never saw it (connect-failure, refused-stream, reset-before-request) and on gRPC status
 * conditions (gRPC always uses POST, and Istio's default exists for exactly those). An HTTPRoute
 * opts its rules out of this guard with the annotation `retry.meshd.io/non-idempotent: "true"`.
 */
import type { Random } from './random.js';
import { randomIndex } from './random.js';

export type RetryCondition =
  | '5xx'
  | 'gateway-error'
  | 'reset'
  | 'reset-before-request'
  | 'connect-failure'
  | 'refused-stream'
  | 'retriable-4xx'
  | 'retriable-status-codes'
  | 'cancelled'
  | 'deadline-exceeded'
  | 'resource-exhausted'
  | 'internal'
  | 'unavailable';

export interface RetryPolicy {
  /** Retries after the first attempt; 0 disables retries. */
  numRetries: number;
  retryOn: ReadonlySet<RetryCondition>;
  retriableStatusCodes: readonly number[];
  /** Fully jittered exponential backoff: base and cap (Envoy: 25 ms and 10 × base). */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Per-attempt timeout (Gateway API backendRequest when a retry stanza exists). */
  perTryTimeoutMs: number | undefined;
  /** Envoy previous_hosts predicate with host_selection_retry_max_attempts 5 (Istio's default). */
  hostSelectionMaxAttempts: number;
  /** Allow status/reset/timeout retries for non-idempotent methods (see the module comment). */
  retryNonIdempotent: boolean;
}

/** Envoy's default retry backoff base interval. */
export const DEFAULT_BACKOFF_BASE_MS = 25;
/** Istio's default policy tries 5 times to pick a host it has not tried before. */
export const HOST_SELECTION_MAX_ATTEMPTS = 5;
/** Istio's retry count when a policy (or HTTPRoute retry stanza) leaves attempts unset. */
export const DEFAULT_NUM_RETRIES = 2;

/** Conditions Istio adds for an HTTPRoute retry stanza (conversion.go) and in its default. */
const ISTIO_BASE_CONDITIONS: readonly RetryCondition[] = [
  'connect-failure',
  'refused-stream',
  'unavailable',
  'cancelled',
  'retriable-status-codes',
];

/**
 * Istio's default outbound policy (retry.go): 2 retries on connect-failure, refused-stream,
 * unavailable, cancelled and retriable-status-codes with an empty code list (503 was removed in
 * Istio 1.24 as unsafe for non-idempotent requests). Since Istio 1.31 waypoints apply it to
 * services without an HTTPRoute as well (before, those got `reset-before-request` only).
 */
export const ISTIO_DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  numRetries: DEFAULT_NUM_RETRIES,
  retryOn: new Set(ISTIO_BASE_CONDITIONS),
  retriableStatusCodes: [],
  backoffBaseMs: DEFAULT_BACKOFF_BASE_MS,
  backoffMaxMs: DEFAULT_BACKOFF_BASE_MS * 10,
  perTryTimeoutMs: undefined,
  hostSelectionMaxAttempts: HOST_SELECTION_MAX_ATTEMPTS,
  retryNonIdempotent: false,
});

/** A policy that never retries (HTTPRoute `retry.attempts: 0`). */
export const NO_RETRY_POLICY: RetryPolicy = Object.freeze({ ...ISTIO_DEFAULT_RETRY_POLICY, numRetries: 0 });

export interface HttpRouteRetryInput {
  attempts: number | undefined;
  codes: readonly number[];
  backoffMs: number | undefined;
  perTryTimeoutMs: number | undefined;
  retryNonIdempotent: boolean;
}

/**
 * Istio's translation of an HTTPRoute retry stanza: attempts default 2; retry on connect-failure,
 * refused-stream, unavailable, cancelled plus each listed code; attempts 0 disables; backoff sets
 * the base interval (Envoy caps at 10 × base).
 */
export function buildHttpRouteRetryPolicy(input: HttpRouteRetryInput): RetryPolicy {
  const numRetries = input.attempts ?? DEFAULT_NUM_RETRIES;
  const base =
    input.backoffMs !== undefined && input.backoffMs > 0 ? input.backoffMs : DEFAULT_BACKOFF_BASE_MS;
  return Object.freeze({
    numRetries,
    retryOn: new Set(numRetries === 0 ? [] : ISTIO_BASE_CONDITIONS),
    retriableStatusCodes: [...input.codes],
    backoffBaseMs: base,
    backoffMaxMs: base * 10,
    perTryTimeoutMs: input.perTryTimeoutMs,
    hostSelectionMaxAttempts: HOST_SELECTION_MAX_ATTEMPTS,
    retryNonIdempotent: input.retryNonIdempotent,
  });
}

/** Failures of one attempt that produced no response. */
export type UpstreamFailure =
  /** TCP/HBONE connect failed or timed out: nothing reached the backend. */
  | 'connect-failure'
  /** HTTP/2 REFUSED_STREAM: the backend did not process the stream. */
  | 'refused-stream'
  /** The stream or connection was reset before any request byte was written. */
  | 'reset-before-request'
  /** Reset or disconnect after the request was (partly) sent, before response headers. */
  | 'reset'
  /** The per-try timeout fired before response headers. */
  | 'timeout'
  /** The local circuit breaker refused the attempt. */
  | 'overflow';

export type AttemptOutcome =
  { kind: 'response'; status: number; grpcStatus?: number } | { kind: 'failure'; failure: UpstreamFailure };

/** RFC 9110 §9.2.2 idempotent methods. */
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotentMethod(method: string): boolean {
  return IDEMPOTENT_METHODS.has(method.toUpperCase());
}

const GRPC_CONDITIONS: ReadonlyArray<[RetryCondition, number]> = [
  ['cancelled', 1],
  ['deadline-exceeded', 4],
  ['resource-exhausted', 8],
  ['internal', 13],
  ['unavailable', 14],
];

/** Whether the policy's conditions (and the idempotency guard) allow retrying this outcome. */
export function isRetriable(outcome: AttemptOutcome, policy: RetryPolicy, method: string): boolean {
  const on = policy.retryOn;
  const safeMethod = policy.retryNonIdempotent || isIdempotentMethod(method);
  if (outcome.kind === 'response') {
    const s = outcome.status;
    const g = outcome.grpcStatus;
    if (g !== undefined && GRPC_CONDITIONS.some(([c, code]) => code === g && on.has(c))) return true;
    if (!safeMethod) return false;
    if (on.has('5xx') && s >= 500 && s <= 599) return true;
    if (on.has('gateway-error') && (s === 502 || s === 503 || s === 504)) return true;
    if (on.has('retriable-4xx') && s === 409) return true;
    return on.has('retriable-status-codes') && policy.retriableStatusCodes.includes(s);
  }
  const anyReset = on.has('reset') || on.has('5xx') || on.has('gateway-error');
  switch (outcome.failure) {
    case 'overflow':
      return false;
    case 'connect-failure':
      return anyReset || on.has('connect-failure') || on.has('reset-before-request');
    case 'refused-stream':
      return anyReset || on.has('refused-stream');
    case 'reset-before-request':
      return anyReset || on.has('reset-before-request');
    case 'reset':
      return safeMethod && anyReset;
    case 'timeout':
      return safeMethod && (on.has('5xx') || on.has('gateway-error'));
  }
}

/**
 * Envoy's fully jittered exponential backoff for retry number `retry` (1-based): a uniform draw
 * in [0, (2^retry − 1) · base), clamped to the maximum interval. With the defaults: 0–24 ms,
 * 0–74 ms, 0–174 ms, then at most 250 ms.
 */
export function buildRetryBackoffMs(retry: number, policy: RetryPolicy, random: Random): number {
  const exponent = Math.min(Math.max(retry, 1), 30);
  const ceiling = (2 ** exponent - 1) * policy.backoffBaseMs;
  return Math.min(randomIndex(random, Math.max(1, Math.floor(ceiling))), policy.backoffMaxMs);
}
