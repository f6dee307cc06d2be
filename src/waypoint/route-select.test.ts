import { describe, expect, it } from 'vitest';
import { seededRandom } from './random.js';
import type { MatchableRequest } from './route-match.js';
import { matchesPath, matchesRoute } from './route-match.js';
import { buildRouteSelection, chooseWeightedBackend, sortRouteEntries } from './route-select.js';
import type { PathMatch, RouteEntry, RouteMatch, RouteRule, WeightedBackend } from './route-types.js';

function re(source: string): RegExp {
  return new RegExp(`^(?:${source})$`);
}

interface EntrySpec {
  id: string;
  path?: PathMatch;
  method?: string;
  headers?: number;
  query?: number;
  route?: string;
  namespace?: string;
  createdAt?: number;
  ruleIndex?: number;
  matchIndex?: number;
  port?: number;
}

function entry(s: EntrySpec): RouteEntry {
  const match: RouteMatch = {
    path: s.path ?? { kind: 'PathPrefix', value: '/' },
    method: s.method,
    headers: Array.from({ length: s.headers ?? 0 }, (_, i) => ({
      name: `h${i}`,
      match: { kind: 'Exact', value: 'v' },
    })),
    queryParams: Array.from({ length: s.query ?? 0 }, (_, i) => ({
      name: `q${i}`,
      match: { kind: 'Exact', value: 'v' },
    })),
  };
  const rule: RouteRule = {
    route: { namespace: s.namespace ?? 'shop', name: s.route ?? 'r', createdAt: s.createdAt ?? 1000 },
    ruleIndex: s.ruleIndex ?? 0,
    ruleName: s.id,
    matches: [match],
    filters: [],
    backends: [],
    directResponse: undefined,
    retry: undefined,
    timeouts: { requestMs: undefined, perTryMs: undefined },
  };
  return { port: s.port, rule, match, matchIndex: s.matchIndex ?? 0 };
}

const fullRequest: MatchableRequest = {
  method: 'GET',
  path: '/api/v1/items',
  query: [
    ['q0', 'v'],
    ['q1', 'v'],
  ],
  headers: { h0: 'v', h1: 'v', h2: 'v' },
};

describe('route precedence (Gateway API, as Istio orders it)', () => {
  const cases: Array<[string, EntrySpec, EntrySpec]> = [
    [
      'Exact beats PathPrefix',
      { id: 'win', path: { kind: 'Exact', value: '/api/v1/items' } },
      { id: 'lose', path: { kind: 'PathPrefix', value: '/api/v1/items' }, headers: 3 },
    ],
    [
      'longer prefix beats shorter',
      { id: 'win', path: { kind: 'PathPrefix', value: '/api/v1' } },
      { id: 'lose', path: { kind: 'PathPrefix', value: '/api' }, method: 'GET', headers: 3 },
    ],
    [
      'PathPrefix beats RegularExpression',
      { id: 'win', path: { kind: 'PathPrefix', value: '/' } },
      { id: 'lose', path: { kind: 'RegularExpression', value: '/api/.*', re: re('/api/.*') } },
    ],
    [
      'longer regex beats shorter regex',
      { id: 'win', path: { kind: 'RegularExpression', value: '/api/v1/.*', re: re('/api/v1/.*') } },
      { id: 'lose', path: { kind: 'RegularExpression', value: '/api/.*', re: re('/api/.*') } },
    ],
    ['method beats no method', { id: 'win', method: 'GET' }, { id: 'lose', headers: 3, query: 2 }],
    ['more headers win', { id: 'win', headers: 2 }, { id: 'lose', headers: 1, query: 2 }],
    ['more query params win', { id: 'win', query: 2 }, { id: 'lose', query: 1 }],
    [
      'older route wins',
      { id: 'win', route: 'zzz', createdAt: 1 },
      { id: 'lose', route: 'aaa', createdAt: 2 },
    ],
    [
      'dated route beats undated',
      { id: 'win', route: 'zzz', createdAt: 5 },
      { id: 'lose', route: 'aaa', createdAt: Infinity },
    ],
    [
      'namespace order on equal age',
      { id: 'win', namespace: 'a', route: 'zzz' },
      { id: 'lose', namespace: 'b', route: 'aaa' },
    ],
    ['name order on equal age', { id: 'win', route: 'alpha' }, { id: 'lose', route: 'beta' }],
    ['rule order within a route', { id: 'win', ruleIndex: 0 }, { id: 'lose', ruleIndex: 1 }],
    ['match order within a rule', { id: 'win', matchIndex: 0 }, { id: 'lose', matchIndex: 1 }],
  ];

  it.each(cases)('%s', (_name, a, b) => {
    for (const order of [
      [a, b],
      [b, a],
    ]) {
      const sorted = sortRouteEntries(order.map(entry));
      const sel = buildRouteSelection(sorted, 80, fullRequest);
      expect(sel.kind === 'rule' && sel.rule.ruleName).toBe('win');
    }
  });

  it('falls through to a less specific route when the specific one does not match', () => {
    const sorted = sortRouteEntries([
      entry({ id: 'exact-other', path: { kind: 'Exact', value: '/other' } }),
      entry({ id: 'post-only', path: { kind: 'PathPrefix', value: '/api' }, method: 'POST' }),
      entry({ id: 'catch-all' }),
    ]);
    const sel = buildRouteSelection(sorted, 80, fullRequest);
    expect(sel.kind === 'rule' && sel.rule.ruleName).toBe('catch-all');
  });

  it.each([
    ['no routes → default', [], 80, 'default'],
    [
      'routes but no match → no-route',
      [{ id: 'x', path: { kind: 'Exact', value: '/nope' } }],
      80,
      'no-route',
    ],
    ['route for another port only → default', [{ id: 'x', port: 8080 }], 80, 'default'],
    ['route for this port → rule', [{ id: 'x', port: 80 }], 80, 'rule'],
  ] as Array<[string, EntrySpec[], number, string]>)('%s', (_n, specs, port, kind) => {
    expect(buildRouteSelection(sortRouteEntries(specs.map(entry)), port, fullRequest).kind).toBe(kind);
  });
});

describe('path matching', () => {
  it.each([
    [{ kind: 'Exact', value: '/abc' }, '/abc', true],
    [{ kind: 'Exact', value: '/abc' }, '/abc/', false],
    [{ kind: 'Exact', value: '/abc' }, '/ABC', false],
    [{ kind: 'PathPrefix', value: '/abc' }, '/abc', true],
    [{ kind: 'PathPrefix', value: '/abc' }, '/abc/', true],
    [{ kind: 'PathPrefix', value: '/abc' }, '/abc/def', true],
    [{ kind: 'PathPrefix', value: '/abc' }, '/abcd', false],
    [{ kind: 'PathPrefix', value: '/' }, '/x', true],
    [{ kind: 'RegularExpression', value: '/v[0-9]+/.*', re: re('/v[0-9]+/.*') }, '/v2/items', true],
    [{ kind: 'RegularExpression', value: '/v[0-9]+/.*', re: re('/v[0-9]+/.*') }, '/x/v2/items', false],
  ] as Array<[PathMatch, string, boolean]>)('%o on %s → %s', (m, path, want) => {
    expect(matchesPath(m, path)).toBe(want);
  });

  it('headers (case-insensitive names, joined repeats), query (first value), method', () => {
    const m: RouteMatch = {
      path: { kind: 'PathPrefix', value: '/' },
      method: 'GET',
      headers: [
        { name: 'x-env', match: { kind: 'Exact', value: 'canary' } },
        { name: 'x-list', match: { kind: 'RegularExpression', value: 'a,b', re: re('a,b') } },
      ],
      queryParams: [{ name: 'v', match: { kind: 'Exact', value: '1' } }],
    };
    const base = {
      method: 'GET',
      path: '/',
      headers: { 'x-env': 'canary', 'x-list': ['a', 'b'] },
      query: [
        ['v', '1'],
        ['v', '2'],
      ] as Array<[string, string]>,
    };
    expect(matchesRoute(m, base)).toBe(true);
    expect(matchesRoute(m, { ...base, method: 'POST' })).toBe(false);
    expect(matchesRoute(m, { ...base, headers: { 'x-env': 'Canary', 'x-list': 'a,b' } })).toBe(false);
    expect(
      matchesRoute(m, {
        ...base,
        query: [
          ['v', '2'],
          ['v', '1'],
        ],
      }),
    ).toBe(false);
    expect(matchesRoute(m, { ...base, headers: { 'x-list': 'a,b' } })).toBe(false);
  });
});

describe('weighted backend choice', () => {
  const backend = (name: string, weight: number): WeightedBackend => ({
    target: {
      kind: 'Service',
      namespace: 'shop',
      name,
      hostname: `${name}.shop.svc.cluster.local`,
      port: 80,
    },
    weight,
    requestHeaders: undefined,
    responseHeaders: undefined,
  });

  it('90/10 over 20,000 seeded draws stays within 4 standard deviations', () => {
    const random = seededRandom(7);
    const backends = [backend('v1', 90), backend('v2', 10)];
    const n = 20_000;
    let v2 = 0;
    for (let i = 0; i < n; i++) if (chooseName(backends, random) === 'v2') v2++;
    const sd = Math.sqrt(n * 0.1 * 0.9);
    expect(Math.abs(v2 - n * 0.1)).toBeLessThan(4 * sd);
  });

  it('weights are proportional, not percentages', () => {
    const random = seededRandom(11);
    const backends = [backend('a', 1), backend('b', 3)];
    let b = 0;
    for (let i = 0; i < 8000; i++) if (chooseName(backends, random) === 'b') b++;
    expect(b / 8000).toBeGreaterThan(0.72);
    expect(b / 8000).toBeLessThan(0.78);
  });

  it('maps the draw boundaries exactly', () => {
    const backends = [backend('a', 1), backend('b', 1)];
    expect(chooseName(backends, () => 0)).toBe('a');
    expect(chooseName(backends, () => 0.4999)).toBe('a');
    expect(chooseName(backends, () => 0.5)).toBe('b');
    expect(chooseName(backends, () => 0.9999)).toBe('b');
    expect(chooseWeightedBackend([], () => 0.3)).toBeUndefined();
  });
});

function chooseName(backends: WeightedBackend[], random: () => number): string | undefined {
  const t = chooseWeightedBackend(backends, random)?.target;
  return t?.kind === 'Service' ? t.name : undefined;
}
