import { describe, expect, it } from 'vitest';
import type { LocalReplyReason } from './response.js';
import { buildLocalReply, FAULT_ABORT_BODY, RBAC_DENIED_BODY } from './response.js';

describe('buildLocalReply', () => {
  it.each([
    [{ kind: 'rbac-denied', matchedPolicy: undefined }, 403, '-', RBAC_DENIED_BODY],
    [{ kind: 'no-route' }, 404, 'NR', ''],
    [{ kind: 'direct-response', status: 500 }, 500, '-', ''],
    [{ kind: 'invalid-backend', reason: 'x' }, 500, '-', ''],
    [
      { kind: 'fault-abort', status: 503, grpcStatus: undefined, delayed: false },
      503,
      'FI',
      FAULT_ABORT_BODY,
    ],
    [{ kind: 'fault-abort', status: 200, grpcStatus: 14, delayed: true }, 200, 'DI,FI', ''],
    [{ kind: 'no-healthy-upstream' }, 503, 'UH', 'no healthy upstream'],
    [
      { kind: 'overflow' },
      503,
      'UO',
      'upstream connect error or disconnect/reset before headers. reset reason: overflow',
    ],
    [{ kind: 'request-timeout' }, 504, 'UT', 'upstream request timeout'],
    [
      { kind: 'upstream-failure', failure: 'timeout', retryLimitExceeded: true },
      504,
      'UT,URX',
      'upstream request timeout',
    ],
    [
      { kind: 'upstream-failure', failure: 'connect-failure', retryLimitExceeded: false },
      503,
      'UF',
      'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
    ],
    [
      { kind: 'upstream-failure', failure: 'refused-stream', retryLimitExceeded: false },
      503,
      'UR',
      'upstream connect error or disconnect/reset before headers. reset reason: remote refused stream reset',
    ],
    [
      { kind: 'upstream-failure', failure: 'reset', retryLimitExceeded: true },
      503,
      'UC,URX',
      'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
    ],
    [{ kind: 'bad-request', reason: 'x' }, 400, 'DPE', 'Bad Request'],
  ] as Array<[LocalReplyReason, number, string, string]>)('%o → %i %s', (reason, status, flags, body) => {
    const r = buildLocalReply(reason);
    expect([r.status, r.responseFlags.join(',') || '-', r.body]).toEqual([status, flags, body]);
  });

  it('a gRPC abort is a trailers-only gRPC response', () => {
    expect(
      buildLocalReply({ kind: 'fault-abort', status: 200, grpcStatus: 14, delayed: false }).headers,
    ).toMatchObject({
      'content-type': 'application/grpc',
      'grpc-status': '14',
    });
  });
});
