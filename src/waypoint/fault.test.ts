import { describe, expect, it } from 'vitest';
import type { FaultRequest, FaultRoute, VsMatch } from './fault.js';
import { buildFaultDecision } from './fault.js';
import { seededRandom } from './random.js';

const anyMatch: VsMatch = {
  uri: undefined,
  ignoreUriCase: false,
  method: undefined,
  authority: undefined,
  headers: [],
  withoutHeaders: [],
  queryParams: [],
  port: undefined,
  sourceNamespace: undefined,
};
const req: FaultRequest = {
  method: 'GET',
  path: '/api/items',
  query: [],
  host: 'reviews',
  headers: {},
  port: 9080,
  sourceNamespace: 'shop',
};
const route = (fault: FaultRoute['fault'], matches: VsMatch[] = []): FaultRoute => ({
  matches,
  fault,
  source: { namespace: 'shop', name: 'vs', index: 0 },
});

describe('fault injection percentages (seeded)', () => {
  it.each([
    [10, 0.1],
    [50, 0.5],
    [0.5, 0.005],
  ])('abort %f %% of 40,000 requests', (percent, share) => {
    const random = seededRandom(42);
    const routes = [route({ delay: undefined, abort: { httpStatus: 503, grpcStatus: undefined, percent } })];
    const n = 40_000;
    let aborted = 0;
    for (let i = 0; i < n; i++) if (buildFaultDecision(routes, req, random)?.abort) aborted++;
    const sd = Math.sqrt(n * share * (1 - share));
    expect(Math.abs(aborted - n * share)).toBeLessThan(4 * sd);
  });

  it('delay and abort draw independently and set DI / FI', () => {
    const routes = [
      route({
        delay: { fixedDelayMs: 5000, percent: 50 },
        abort: { httpStatus: 500, grpcStatus: undefined, percent: 50 },
      }),
    ];
    const draws = (a: number, b: number): (() => number) => {
      const seq = [a, b];
      return () => seq.shift() ?? 0.99;
    };
    expect(buildFaultDecision(routes, req, draws(0.1, 0.1))).toEqual({
      delayMs: 5000,
      abort: { httpStatus: 500, grpcStatus: undefined },
      responseFlags: ['DI', 'FI'],
    });
    expect(buildFaultDecision(routes, req, draws(0.1, 0.9))).toEqual({
      delayMs: 5000,
      abort: undefined,
      responseFlags: ['DI'],
    });
    expect(buildFaultDecision(routes, req, draws(0.9, 0.1))).toEqual({
      delayMs: 0,
      abort: { httpStatus: 500, grpcStatus: undefined },
      responseFlags: ['FI'],
    });
    expect(buildFaultDecision(routes, req, draws(0.9, 0.9))).toBeUndefined();
  });

  it('100 % always and 0 % never fire, without consuming chance', () => {
    const always = [
      route({ delay: undefined, abort: { httpStatus: 418, grpcStatus: undefined, percent: 100 } }),
    ];
    const never = [route({ delay: { fixedDelayMs: 1, percent: 0 }, abort: undefined })];
    const random = (): number => {
      throw new Error('not drawn');
    };
    expect(buildFaultDecision(always, req, random)?.abort?.httpStatus).toBe(418);
    expect(buildFaultDecision(never, req, random)).toBeUndefined();
  });
});

describe('fault matching: the first matching http entry decides', () => {
  const abortAll = { delay: undefined, abort: { httpStatus: 503, grpcStatus: undefined, percent: 100 } };
  it.each([
    ['uri prefix', { ...anyMatch, uri: { kind: 'prefix', value: '/api' } }, req, true],
    ['uri prefix miss', { ...anyMatch, uri: { kind: 'prefix', value: '/web' } }, req, false],
    [
      'uri exact ignoring case',
      { ...anyMatch, uri: { kind: 'exact', value: '/API/ITEMS' }, ignoreUriCase: true },
      req,
      true,
    ],
    [
      'uri regex',
      { ...anyMatch, uri: { kind: 'regex', value: '/api/.+', re: /^(?:\/api\/.+)$/ } },
      req,
      true,
    ],
    ['method', { ...anyMatch, method: { kind: 'exact', value: 'POST' } }, req, false],
    [
      'header exact',
      { ...anyMatch, headers: [{ name: 'end-user', match: { kind: 'exact', value: 'jason' } }] },
      { ...req, headers: { 'end-user': 'jason' } },
      true,
    ],
    [
      'header presence',
      { ...anyMatch, headers: [{ name: 'x-test', match: { kind: 'present' } }] },
      req,
      false,
    ],
    [
      'withoutHeaders',
      { ...anyMatch, withoutHeaders: [{ name: 'x-skip', match: { kind: 'present' } }] },
      { ...req, headers: { 'x-skip': '1' } },
      false,
    ],
    [
      'query param',
      { ...anyMatch, queryParams: [{ name: 'debug', match: { kind: 'exact', value: '1' } }] },
      { ...req, query: [['debug', '1']] as Array<[string, string]> },
      true,
    ],
    ['port', { ...anyMatch, port: 8080 }, req, false],
    ['source namespace', { ...anyMatch, sourceNamespace: 'shop' }, req, true],
  ] as Array<[string, VsMatch, FaultRequest, boolean]>)('%s → %s', (_n, m, r, fires) => {
    expect(buildFaultDecision([route(abortAll, [m])], r, () => 0) !== undefined).toBe(fires);
  });

  it('an earlier matching entry without a fault shields later ones', () => {
    const routes = [
      route(undefined, [{ ...anyMatch, uri: { kind: 'prefix', value: '/api' } }]),
      route(abortAll),
    ];
    expect(buildFaultDecision(routes, req, () => 0)).toBeUndefined();
    expect(buildFaultDecision(routes, { ...req, path: '/web' }, () => 0)?.abort?.httpStatus).toBe(503);
  });
});
