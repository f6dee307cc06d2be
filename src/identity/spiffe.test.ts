import { describe, expect, it } from 'vitest';
import { formatSpiffeId, parseSpiffeId, principalOf, tryParseSpiffeId } from './spiffe.js';
import { isMeshError } from '../errors.js';

describe('SPIFFE id parsing', () => {
  const valid: Array<[string, string, string, string]> = [
    ['spiffe://cluster.local/ns/default/sa/default', 'cluster.local', 'default', 'default'],
    ['spiffe://cluster.local/ns/shop/sa/frontend', 'cluster.local', 'shop', 'frontend'],
    ['spiffe://example.org/ns/a-b/sa/c.d', 'example.org', 'a-b', 'c.d'],
    ['spiffe://td_1/ns/n1/sa/s_1', 'td_1', 'n1', 's_1'],
  ];
  it.each(valid)('accepts %s', (uri, td, ns, sa) => {
    const id = parseSpiffeId(uri);
    expect(id).toEqual({ trustDomain: td, namespace: ns, serviceAccount: sa });
    expect(formatSpiffeId(id)).toBe(uri);
  });

  const invalid: Array<[string, RegExp]> = [
    ['', /spiffe:\/\//],
    ['http://cluster.local/ns/a/sa/b', /spiffe:\/\//],
    ['SPIFFE://cluster.local/ns/a/sa/b', /spiffe:\/\//],
    ['spiffe://cluster.local/ns/a/sa', /form/],
    ['spiffe://cluster.local/ns/a/sa/b/c', /form/],
    ['spiffe://cluster.local/ns/a/sa/b/', /form/],
    ['spiffe:///ns/a/sa/b', /trust domain/],
    ['spiffe://Cluster.Local/ns/a/sa/b', /trust domain/],
    ['spiffe://cluster.local/namespace/a/sa/b', /"ns"/],
    ['spiffe://cluster.local/ns/a/serviceaccount/b', /"sa"/],
    ['spiffe://cluster.local/ns//sa/b', /namespace/],
    ['spiffe://cluster.local/ns/a/sa/', /service account/],
    ['spiffe://cluster.local:443/ns/a/sa/b', /port/],
    ['spiffe://cluster.local/ns/a/sa/b?x=1', /query/],
    ['spiffe://cluster.local/ns/a/sa/b#f', /fragment/],
    ['spiffe://cluster.local/ns/a%2f/sa/b', /escape/],
    ['spiffe://cluster.local/ns/a b/sa/b', /namespace/],
  ];
  it.each(invalid)('rejects %j', (uri, reason) => {
    const r = tryParseSpiffeId(uri);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
    let thrown: unknown;
    try {
      parseSpiffeId(uri);
    } catch (e) {
      thrown = e;
    }
    expect(isMeshError(thrown, 'MESH_ERR_SPIFFE_INVALID')).toBe(true);
  });

  it('strips the scheme for policy principals', () => {
    expect(principalOf('spiffe://cluster.local/ns/a/sa/b')).toBe('cluster.local/ns/a/sa/b');
    expect(principalOf({ trustDomain: 'td', namespace: 'n', serviceAccount: 's' })).toBe('td/ns/n/sa/s');
  });
});
