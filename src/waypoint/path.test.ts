import { describe, expect, it } from 'vitest';
import { parseGatewayDuration, parseIstioDuration } from './durations.js';
import { normalizeRequestPath, parseQuery, pathHasPrefix, replacePathPrefix } from './path.js';
import { compileFullMatchRegex } from './regex.js';

describe('normalizeRequestPath (Istio BASE normalization)', () => {
  it.each([
    ['/a/b', '/a/b'],
    ['/a/./b', '/a/b'],
    ['/a/../b', '/b'],
    ['/../../x', '/x'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/%61%62c', '/abc'],
    ['/a%2fb', '/a%2Fb'],
    ['/a%20b', '/a%20b'],
    ['/a//b', '/a//b'],
    ['/p?x=/../y', '/p?x=/../y'],
  ])('%s → %s', (input, want) => {
    expect(normalizeRequestPath(input)).toEqual({ ok: true, path: want });
  });

  it.each(['a/b', '*', '/a#frag', '/bad%zz'])('rejects %s', (input) => {
    expect(normalizeRequestPath(input).ok).toBe(false);
  });
});

describe('pathHasPrefix is element-wise', () => {
  it.each([
    ['/abc', '/abc', true],
    ['/abc/', '/abc', true],
    ['/abc/def', '/abc', true],
    ['/abcd', '/abc', false],
    ['/ab', '/abc', false],
    ['/anything', '/', true],
    ['/', '/', true],
  ])('%s with prefix %s → %s', (path, prefix, want) => {
    expect(pathHasPrefix(path, prefix)).toBe(want);
  });
});

describe('replacePathPrefix (ReplacePrefixMatch)', () => {
  it.each([
    ['/foo/bar', '/foo', '/xyz', '/xyz/bar'],
    ['/foo', '/foo', '/xyz', '/xyz'],
    ['/foo/', '/foo', '/xyz', '/xyz/'],
    ['/foo/bar', '/foo', '', '/bar'],
    ['/foo', '/foo', '', '/'],
    ['/foo/', '/foo', '', '/'],
    ['/foo/bar', '/foo', '/', '/bar'],
    ['/foo/bar', '/foo', '/xyz/', '/xyz/bar'],
    ['/bar', '/', '/xyz', '/xyz/bar'],
    ['/', '/', '/xyz', '/xyz'],
  ])('%s, prefix %s, replacement "%s" → %s', (path, prefix, repl, want) => {
    expect(replacePathPrefix(path, prefix, repl)).toBe(want);
  });
});

describe('parseQuery', () => {
  it('keeps order and duplicates, decodes', () => {
    expect(parseQuery('a=1&b=x%20y&a=2&flag')).toEqual([
      ['a', '1'],
      ['b', 'x y'],
      ['a', '2'],
      ['flag', ''],
    ]);
    expect(parseQuery(undefined)).toEqual([]);
  });
});

describe('durations', () => {
  it.each([
    ['10s', 10_000],
    ['500ms', 500],
    ['1h30m', 5_400_000],
    ['0s', 0],
    ['1m1s1ms', 61_001],
    ['1.5s', undefined],
    ['10', undefined],
    ['123456s', undefined],
    ['', undefined],
  ])('Gateway API %s → %s', (text, want) => {
    expect(parseGatewayDuration(text)).toBe(want);
  });

  it.each([
    ['1.5s', 1500],
    ['3m', 180_000],
    ['100ms', 100],
    ['1h', 3_600_000],
    ['2m30s', 150_000],
    ['0', 0],
    ['10', undefined],
    ['5x', undefined],
    ['', undefined],
  ])('Istio %s → %s', (text, want) => {
    expect(parseIstioDuration(text)).toBe(want);
  });
});

describe('compileFullMatchRegex (RE2 → RegExp)', () => {
  it.each([
    ['/api/v[0-9]+', '/api/v12', true],
    ['/api/v[0-9]+', '/api/v12/x', false],
    ['(?i)/API', '/api', true],
    ['(?P<id>[0-9]+)', '42', true],
    ['[[:digit:]]+', '123', true],
    ['a|b', 'b', true],
    ['a|b', 'ab', false],
  ])('%s on %s → %s', (re, input, want) => {
    const r = compileFullMatchRegex(re);
    if (!r.ok) throw new Error(r.reason);
    expect(r.re.test(input)).toBe(want);
  });

  it.each(['(?=a)b', 'a(?!b)', '(a)\\1', '[unclosed', 'a(?i)b'])('rejects %s', (re) => {
    expect(compileFullMatchRegex(re).ok).toBe(false);
  });
});
