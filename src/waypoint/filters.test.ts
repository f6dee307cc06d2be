import { describe, expect, it } from 'vitest';
import { applyHeaderModifier, applyUrlRewrite, buildRedirectLocation } from './filters.js';
import type { HeaderMap } from './http-types.js';
import type { HeaderModifier, PathMatch, RequestRedirect, UrlRewrite } from './route-types.js';

const mod = (m: Partial<HeaderModifier>): HeaderModifier => ({ set: [], add: [], remove: [], ...m });

describe('header modifiers', () => {
  const input: HeaderMap = { 'my-header': 'foo', 'x-keep': 'k', 'x-drop': 'd' };

  it.each([
    ['set overwrites', mod({ set: [{ name: 'my-header', value: 'bar' }] }), { 'my-header': 'bar' }],
    [
      'set adds when absent',
      mod({ set: [{ name: 'x-new', value: 'n' }] }),
      { 'x-new': 'n', 'my-header': 'foo' },
    ],
    [
      'add appends after existing',
      mod({ add: [{ name: 'my-header', value: 'bar' }] }),
      { 'my-header': ['foo', 'bar'] },
    ],
    ['add creates when absent', mod({ add: [{ name: 'x-new', value: 'n' }] }), { 'x-new': 'n' }],
    ['remove deletes', mod({ remove: ['x-drop'] }), { 'x-drop': undefined, 'x-keep': 'k' }],
    [
      'names are case-insensitive',
      mod({ set: [{ name: 'My-Header', value: 'bar' }], remove: ['X-DROP'] }),
      { 'my-header': 'bar', 'x-drop': undefined },
    ],
  ] as Array<[string, HeaderModifier, HeaderMap]>)('%s', (_n, m, expected) => {
    const out = applyHeaderModifier(input, m);
    for (const [k, v] of Object.entries(expected)) expect(out[k]).toEqual(v);
    expect(input['my-header']).toBe('foo');
  });

  it('add to an already repeated header keeps every value in order', () => {
    expect(applyHeaderModifier({ a: ['1', '2'] }, mod({ add: [{ name: 'a', value: '3' }] })).a).toEqual([
      '1',
      '2',
      '3',
    ]);
  });
});

describe('RequestRedirect Location', () => {
  const redirect = (r: Partial<RequestRedirect>): RequestRedirect => ({
    scheme: undefined,
    hostname: undefined,
    port: undefined,
    path: undefined,
    statusCode: 302,
    ...r,
  });
  const prefixFoo: PathMatch = { kind: 'PathPrefix', value: '/foo' };

  it.each([
    ['keeps host, port and path', {}, 'reviews:9080', '/a?x=1', 9080, undefined, 'http://reviews:9080/a?x=1'],
    [
      'Host without port uses the service port',
      {},
      'reviews',
      '/a',
      9080,
      undefined,
      'http://reviews:9080/a',
    ],
    ['service port 80 is omitted for http', {}, 'reviews', '/a', 80, undefined, 'http://reviews/a'],
    [
      'hostname replaced, request port kept',
      { hostname: 'example.com' },
      'reviews:9080',
      '/a',
      9080,
      undefined,
      'http://example.com:9080/a',
    ],
    [
      'scheme https → port 443 omitted',
      { scheme: 'https' },
      'reviews:9080',
      '/a',
      9080,
      undefined,
      'https://reviews/a',
    ],
    [
      'scheme http → port 80 omitted',
      { scheme: 'http' },
      'reviews:9080',
      '/a',
      9080,
      undefined,
      'http://reviews/a',
    ],
    [
      'explicit port kept',
      { scheme: 'https', port: 8443 },
      'reviews',
      '/a',
      80,
      undefined,
      'https://reviews:8443/a',
    ],
    [
      'explicit well-known port omitted',
      { scheme: 'https', port: 443 },
      'reviews',
      '/a',
      80,
      undefined,
      'https://reviews/a',
    ],
    [
      'ReplaceFullPath keeps query',
      { path: { kind: 'ReplaceFullPath', value: '/new' } },
      'r',
      '/old/x?q=1',
      80,
      undefined,
      'http://r/new?q=1',
    ],
    [
      'ReplacePrefixMatch element-wise',
      { path: { kind: 'ReplacePrefixMatch', value: '/xyz' } },
      'r',
      '/foo/bar',
      80,
      prefixFoo,
      'http://r/xyz/bar',
    ],
    [
      'ReplacePrefixMatch to empty',
      { path: { kind: 'ReplacePrefixMatch', value: '' } },
      'r',
      '/foo',
      80,
      prefixFoo,
      'http://r/',
    ],
    [
      'ReplacePrefixMatch trailing slash',
      { path: { kind: 'ReplacePrefixMatch', value: '/xyz' } },
      'r',
      '/foo/',
      80,
      prefixFoo,
      'http://r/xyz/',
    ],
  ] as Array<[string, Partial<RequestRedirect>, string, string, number, PathMatch | undefined, string]>)(
    '%s',
    (_n, r, host, path, servicePort, match, want) => {
      expect(buildRedirectLocation(redirect(r), { host, path, scheme: 'http', servicePort, match })).toBe(
        want,
      );
    },
  );
});

describe('URLRewrite', () => {
  const rw = (r: Partial<UrlRewrite>): UrlRewrite => ({ hostname: undefined, path: undefined, ...r });
  const prefix = (value: string): PathMatch => ({ kind: 'PathPrefix', value });

  it.each([
    [
      'hostname only',
      rw({ hostname: 'backend.internal' }),
      '/a?x=1',
      prefix('/'),
      '/a?x=1',
      'backend.internal',
    ],
    [
      'full path, query kept',
      rw({ path: { kind: 'ReplaceFullPath', value: '/full' } }),
      '/a/b?x=1',
      prefix('/a'),
      '/full?x=1',
      'svc',
    ],
    [
      '/foo/bar with /foo → /xyz/bar',
      rw({ path: { kind: 'ReplacePrefixMatch', value: '/xyz' } }),
      '/foo/bar',
      prefix('/foo'),
      '/xyz/bar',
      'svc',
    ],
    [
      '/foo with "" → /',
      rw({ path: { kind: 'ReplacePrefixMatch', value: '' } }),
      '/foo',
      prefix('/foo'),
      '/',
      'svc',
    ],
    [
      '/foo/ with /xyz → /xyz/',
      rw({ path: { kind: 'ReplacePrefixMatch', value: '/xyz' } }),
      '/foo/',
      prefix('/foo'),
      '/xyz/',
      'svc',
    ],
    [
      '/foo/bar with / → /bar',
      rw({ path: { kind: 'ReplacePrefixMatch', value: '/' } }),
      '/foo/bar?q',
      prefix('/foo'),
      '/bar?q',
      'svc',
    ],
    [
      'prefix match written with trailing slash',
      rw({ path: { kind: 'ReplacePrefixMatch', value: '/xyz' } }),
      '/foo/bar',
      prefix('/foo/'),
      '/xyz/bar',
      'svc',
    ],
  ] as Array<[string, UrlRewrite, string, PathMatch, string, string]>)(
    '%s',
    (_n, r, path, match, wantPath, wantHost) => {
      expect(applyUrlRewrite(r, { path, host: 'svc' }, match)).toEqual({ path: wantPath, host: wantHost });
    },
  );
});
