import { describe, expect, it } from 'vitest';
import { CircuitBreaker, ISTIO_DEFAULT_LIMITS } from './circuit-breaker.js';
import { seededRandom } from './random.js';
import { RetryBudget } from './retry-budget.js';
import type { AttemptOutcome, RetryCondition, RetryPolicy } from './retry-policy.js';
import {
  buildHttpRouteRetryPolicy,
  buildRetryBackoffMs,
  ISTIO_DEFAULT_RETRY_POLICY,
  isRetriable,
} from './retry-policy.js';
import { RetryState } from './retry-state.js';

const status = (s: number, grpcStatus?: number): AttemptOutcome => ({
  kind: 'response',
  status: s,
  grpcStatus,
});
const fail = (failure: Extract<AttemptOutcome, { kind: 'failure' }>['failure']): AttemptOutcome => ({
  kind: 'failure',
  failure,
});
const policy = (on: RetryCondition[], codes: number[] = [], retryNonIdempotent = false): RetryPolicy => ({
  ...ISTIO_DEFAULT_RETRY_POLICY,
  retryOn: new Set(on),
  retriableStatusCodes: codes,
  retryNonIdempotent,
});

const routeRetry = buildHttpRouteRetryPolicy({
  attempts: 3,
  codes: [503, 504],
  backoffMs: undefined,
  perTryTimeoutMs: 1000,
  retryNonIdempotent: false,
});

describe('isRetriable', () => {
  it.each([
    // Istio's default policy: connect-failure, refused-stream, unavailable, cancelled, no codes.
    ['default: 503 GET', ISTIO_DEFAULT_RETRY_POLICY, status(503), 'GET', false],
    ['default: connect failure POST', ISTIO_DEFAULT_RETRY_POLICY, fail('connect-failure'), 'POST', true],
    ['default: refused stream POST', ISTIO_DEFAULT_RETRY_POLICY, fail('refused-stream'), 'POST', true],
    ['default: reset after send GET', ISTIO_DEFAULT_RETRY_POLICY, fail('reset'), 'GET', false],
    [
      'default: reset before request GET',
      ISTIO_DEFAULT_RETRY_POLICY,
      fail('reset-before-request'),
      'GET',
      false,
    ],
    ['default: per-try timeout GET', ISTIO_DEFAULT_RETRY_POLICY, fail('timeout'), 'GET', false],
    ['default: grpc UNAVAILABLE (POST)', ISTIO_DEFAULT_RETRY_POLICY, status(200, 14), 'POST', true],
    ['default: grpc CANCELLED (POST)', ISTIO_DEFAULT_RETRY_POLICY, status(200, 1), 'POST', true],
    ['default: grpc INTERNAL', ISTIO_DEFAULT_RETRY_POLICY, status(200, 13), 'POST', false],
    ['default: overflow', ISTIO_DEFAULT_RETRY_POLICY, fail('overflow'), 'GET', false],
    // HTTPRoute retry {codes: [503, 504]}.
    ['route: 503 GET', routeRetry, status(503), 'GET', true],
    ['route: 504 PUT', routeRetry, status(504), 'PUT', true],
    ['route: 500 GET', routeRetry, status(500), 'GET', false],
    ['route: 503 POST (non-idempotent)', routeRetry, status(503), 'POST', false],
    ['route: 503 PATCH (non-idempotent)', routeRetry, status(503), 'PATCH', false],
    ['route: connect failure POST', routeRetry, fail('connect-failure'), 'POST', true],
    ['route: 200', routeRetry, status(200), 'GET', false],
    // Envoy conditions.
    ['5xx: 500', policy(['5xx']), status(500), 'GET', true],
    ['5xx: 404', policy(['5xx']), status(404), 'GET', false],
    ['5xx: reset GET', policy(['5xx']), fail('reset'), 'GET', true],
    ['5xx: reset POST', policy(['5xx']), fail('reset'), 'POST', false],
    ['5xx: timeout GET', policy(['5xx']), fail('timeout'), 'GET', true],
    ['5xx: reset POST opted in', policy(['5xx'], [], true), fail('reset'), 'POST', true],
    ['5xx: 503 POST opted in', policy(['5xx'], [], true), status(503), 'POST', true],
    ['gateway-error: 502', policy(['gateway-error']), status(502), 'GET', true],
    ['gateway-error: 500', policy(['gateway-error']), status(500), 'GET', false],
    ['gateway-error: timeout', policy(['gateway-error']), fail('timeout'), 'GET', true],
    ['reset: reset GET', policy(['reset']), fail('reset'), 'GET', true],
    ['reset: timeout GET', policy(['reset']), fail('timeout'), 'GET', false],
    [
      'reset-before-request: POST',
      policy(['reset-before-request']),
      fail('reset-before-request'),
      'POST',
      true,
    ],
    ['reset-before-request: reset after send', policy(['reset-before-request']), fail('reset'), 'GET', false],
    ['retriable-4xx: 409', policy(['retriable-4xx']), status(409), 'GET', true],
    ['retriable-4xx: 429', policy(['retriable-4xx']), status(429), 'GET', false],
    ['codes: 429 listed', policy(['retriable-status-codes'], [429]), status(429), 'GET', true],
    ['codes: listed but condition absent', policy([], [429]), status(429), 'GET', false],
    [
      'connect-failure only: refused stream',
      policy(['connect-failure']),
      fail('refused-stream'),
      'GET',
      false,
    ],
  ] as Array<[string, RetryPolicy, AttemptOutcome, string, boolean]>)(
    '%s → %s',
    (_n, p, outcome, method, want) => {
      expect(isRetriable(outcome, p, method)).toBe(want);
    },
  );
});

describe('HTTPRoute retry translation (Istio)', () => {
  it('attempts default to 2, codes become retriable-status-codes, backoff sets base and 10× cap', () => {
    const p = buildHttpRouteRetryPolicy({
      attempts: undefined,
      codes: [500],
      backoffMs: 100,
      perTryTimeoutMs: undefined,
      retryNonIdempotent: false,
    });
    expect(p.numRetries).toBe(2);
    expect([...p.retryOn].sort()).toEqual([
      'cancelled',
      'connect-failure',
      'refused-stream',
      'retriable-status-codes',
      'unavailable',
    ]);
    expect(p.retriableStatusCodes).toEqual([500]);
    expect([p.backoffBaseMs, p.backoffMaxMs]).toEqual([100, 1000]);
  });

  it('attempts 0 disables retries', () => {
    const p = buildHttpRouteRetryPolicy({
      attempts: 0,
      codes: [503],
      backoffMs: undefined,
      perTryTimeoutMs: undefined,
      retryNonIdempotent: false,
    });
    expect(p.numRetries).toBe(0);
    expect(isRetriable(fail('connect-failure'), p, 'GET')).toBe(false);
  });
});

describe('backoff', () => {
  it.each([
    [1, 25],
    [2, 75],
    [3, 175],
    [4, 251],
    [10, 251],
  ])('retry %i stays in [0, %i) with base 25 ms and cap 250 ms', (retry, bound) => {
    const random = seededRandom(retry);
    let max = 0;
    for (let i = 0; i < 2000; i++) {
      const b = buildRetryBackoffMs(retry, ISTIO_DEFAULT_RETRY_POLICY, random);
      expect(b).toBeGreaterThanOrEqual(0);
      expect(b).toBeLessThan(bound);
      max = Math.max(max, b);
    }
    expect(max).toBeGreaterThan(bound * 0.8);
  });

  it('extremes of the draw', () => {
    expect(buildRetryBackoffMs(1, ISTIO_DEFAULT_RETRY_POLICY, () => 0)).toBe(0);
    expect(buildRetryBackoffMs(2, ISTIO_DEFAULT_RETRY_POLICY, () => 0.999999)).toBe(74);
    expect(buildRetryBackoffMs(5, ISTIO_DEFAULT_RETRY_POLICY, () => 0.999999)).toBe(250);
  });
});

describe('RetryState', () => {
  it('retries up to numRetries, then reports URX; tracks tried hosts', () => {
    const s = new RetryState(routeRetry, 'GET', () => 0.5);
    const seen: string[] = [];
    for (const host of ['a', 'b', 'c']) {
      s.beginAttempt(host);
      const d = s.decide(status(503));
      seen.push(d.retry ? `retry ${d.backoffMs}` : `stop ${d.reason}`);
    }
    s.beginAttempt('d');
    const last = s.decide(status(503));
    expect(seen).toEqual(['retry 12', 'retry 37', 'retry 87']);
    expect(last).toEqual({ retry: false, reason: 'limit-exceeded', responseFlags: ['URX'] });
    expect([...s.triedHosts]).toEqual(['a', 'b', 'c', 'd']);
    expect(s.attempts).toBe(4);
  });

  it('a final response is forwarded, an unretriable failure stops, a full breaker stops', () => {
    const s = new RetryState(routeRetry, 'GET', () => 0);
    s.beginAttempt('a');
    expect(s.decide(status(200))).toMatchObject({ retry: false, reason: 'final-response' });
    expect(s.decide(fail('overflow'))).toMatchObject({ retry: false, reason: 'not-retriable' });
    const full = new CircuitBreaker({ ...ISTIO_DEFAULT_LIMITS, maxRetries: 0 });
    expect(s.decide(status(503), full)).toMatchObject({
      retry: false,
      reason: 'retry-overflow',
      responseFlags: [],
    });
  });

  it('a granted retry holds a breaker slot until released', () => {
    const cb = new CircuitBreaker({ ...ISTIO_DEFAULT_LIMITS, maxRetries: 1 });
    const a = new RetryState(routeRetry, 'GET', () => 0);
    const b = new RetryState(routeRetry, 'GET', () => 0);
    a.beginAttempt('x');
    b.beginAttempt('y');
    const da = a.decide(status(503), cb);
    expect(da.retry).toBe(true);
    expect(b.decide(status(503), cb)).toMatchObject({ retry: false, reason: 'retry-overflow' });
    if (da.retry) da.releaseRetry();
    expect(b.decide(status(503), cb).retry).toBe(true);
  });
});

describe('RetryBudget', () => {
  it.each([
    [100, 20],
    [5, 3],
    [0, 3],
    [1000, 200],
  ])('%i active requests allow %i concurrent retries', (active, limit) => {
    const b = new RetryBudget();
    expect(b.limit(active)).toBe(limit);
    let granted = 0;
    while (b.tryAcquire(active)) granted++;
    expect(granted).toBe(limit);
    b.release();
    expect(b.tryAcquire(active)).toBe(true);
  });

  it('replaces maxRetries in the circuit breaker', () => {
    const cb = new CircuitBreaker(
      { ...ISTIO_DEFAULT_LIMITS, maxRetries: 1 },
      new RetryBudget({ percent: 20, minRetryConcurrency: 3 }),
    );
    const grants = [
      cb.tryAcquire('retry'),
      cb.tryAcquire('retry'),
      cb.tryAcquire('retry'),
      cb.tryAcquire('retry'),
    ];
    expect(grants.map((g) => g.ok)).toEqual([true, true, true, false]);
    expect(grants[3]).toMatchObject({ ok: false, status: 503, responseFlag: 'UO' });
    const g = grants[0];
    if (g?.ok) {
      g.release();
      g.release();
    }
    expect(cb.activeRetries).toBe(2);
  });
});
