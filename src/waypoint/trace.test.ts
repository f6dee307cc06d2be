import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  buildRequestMetricLabels,
  createWaypointRequestMetrics,
  ISTIO_REQUEST_LABEL_NAMES,
  recordRequest,
} from './metrics.js';
import { buildLocalReply, formatResponseFlags } from './response.js';
import { buildOutgoingTrace, buildRequestId, parseTraceParent } from './trace.js';

const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('traceparent', () => {
  it.each([
    [VALID, true],
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00', true],
    ['01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra', true],
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra', false],
    ['ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', false],
    ['00-00000000000000000000000000000000-00f067aa0ba902b7-01', false],
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', false],
    ['00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', false],
    ['00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01', false],
    ['garbage', false],
  ])('%s valid=%s', (value, valid) => {
    expect(parseTraceParent(value) !== undefined).toBe(valid);
  });

  it('keeps the trace id and flags, replaces the span id, forwards tracestate', () => {
    let i = 0;
    const bytes = (n: number): Uint8Array => new Uint8Array(n).fill(++i);
    const t = buildOutgoingTrace({ traceparent: VALID, tracestate: 'a=b' }, bytes);
    expect(t).toEqual({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-0101010101010101-01',
      tracestate: 'a=b',
      spanId: '0101010101010101',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      started: false,
    });
  });

  it('starts a new trace when absent or invalid and drops tracestate; never emits zero ids', () => {
    const seq = [new Uint8Array(8), new Uint8Array(8).fill(2), new Uint8Array(16).fill(3)];
    const t = buildOutgoingTrace(
      { traceparent: 'bad', tracestate: 'a=b' },
      () => seq.shift() ?? new Uint8Array(0),
    );
    expect(t.traceparent).toBe(`00-${'03'.repeat(16)}-${'02'.repeat(8)}-00`);
    expect(t.tracestate).toBeUndefined();
    expect(t.started).toBe(true);
    const real = buildOutgoingTrace({});
    expect(parseTraceParent(real.traceparent)?.traceId).toBe(real.traceId);
  });

  it('x-request-id: kept when sane, generated otherwise', () => {
    expect(buildRequestId({ 'x-request-id': 'abc' }, () => 'new')).toBe('abc');
    expect(buildRequestId({}, () => 'new')).toBe('new');
    expect(buildRequestId({ 'x-request-id': 'has space' }, () => 'new')).toBe('new');
    expect(buildRequestId({})).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('Istio request metrics', () => {
  it('labels: reporter waypoint, unknown for missing values, flags rendered', () => {
    const labels = buildRequestMetricLabels({
      source: {
        workload: 'web',
        namespace: 'frontend',
        principal: 'spiffe://cluster.local/ns/frontend/sa/web',
        canonicalService: 'web',
      },
      destination: undefined,
      service: { hostname: 'reviews.shop.svc.cluster.local', name: 'reviews', namespace: 'shop' },
      protocol: 'http',
      responseCode: 503,
      grpcStatus: undefined,
      responseFlags: buildLocalReply({
        kind: 'upstream-failure',
        failure: 'connect-failure',
        retryLimitExceeded: true,
      }).responseFlags,
      mutualTls: true,
    });
    expect(Object.keys(labels)).toEqual([...ISTIO_REQUEST_LABEL_NAMES]);
    expect(labels).toMatchObject({
      reporter: 'waypoint',
      source_workload: 'web',
      source_canonical_revision: 'unknown',
      destination_workload: 'unknown',
      destination_service: 'reviews.shop.svc.cluster.local',
      response_code: '503',
      response_flags: 'UF,URX',
      connection_security_policy: 'mutual_tls',
    });
  });

  it('records into an injected registry', async () => {
    const registry = new Registry();
    const m = createWaypointRequestMetrics(registry);
    const labels = buildRequestMetricLabels({
      source: undefined,
      destination: undefined,
      service: undefined,
      protocol: 'http',
      responseCode: 200,
      grpcStatus: undefined,
      responseFlags: [],
      mutualTls: true,
    });
    recordRequest(m, labels, 12);
    recordRequest(m, labels, 40);
    const text = await registry.metrics();
    expect(text).toMatch(/istio_requests_total\{[^}]*reporter="waypoint"[^}]*response_flags="-"[^}]*\} 2/);
    expect(text).toMatch(/istio_request_duration_milliseconds_bucket\{le="25",[^}]*\} 1/);
  });

  it('response flags render like Envoy', () => {
    expect(formatResponseFlags([])).toBe('-');
    expect(formatResponseFlags(['DI', 'FI', 'DI'])).toBe('DI,FI');
  });
});
