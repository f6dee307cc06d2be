import { describe, expect, it } from 'vitest';
import { buildShadowHost } from './mirror.js';

describe('buildShadowHost (Envoy appends -shadow to the host, before the port)', () => {
  it.each([
    ['reviews.shop:9080', 'reviews.shop-shadow:9080'],
    ['reviews.shop', 'reviews.shop-shadow'],
    ['10.0.0.5:80', '10.0.0.5-shadow:80'],
  ])('%s → %s', (host, shadow) => {
    expect(buildShadowHost(host)).toBe(shadow);
  });
});
