import { describe, expect, it } from 'vitest';
import {
  buildBaggage,
  buildForwarded,
  buildTraceparent,
  canonicalIp,
  formatAuthority,
  isTraceparent,
  parseAuthority,
  parseBaggage,
  parseForwarded,
  sameIp,
  type Authority,
} from './headers.js';
import { buildInboundCheck, type InboundCheckInput } from './inbound-check.js';

describe('parseAuthority', () => {
  const ok: Array<[string, Authority]> = [
    ['10.0.0.7:8080', { kind: 'ip', ip: '10.0.0.7', port: 8080, family: 4 }],
    ['127.0.0.1:1', { kind: 'ip', ip: '127.0.0.1', port: 1, family: 4 }],
    ['[fd00::1]:80', { kind: 'ip', ip: 'fd00::1', port: 80, family: 6 }],
    ['[FD00:0:0::1]:443', { kind: 'ip', ip: 'fd00::1', port: 443, family: 6 }],
    ['[::1]:65535', { kind: 'ip', ip: '::1', port: 65535, family: 6 }],
    ['backend.shop.svc.cluster.local:80', { kind: 'host', host: 'backend.shop.svc.cluster.local', port: 80 }],
    ['Backend.Shop:9090', { kind: 'host', host: 'backend.shop', port: 9090 }],
    ['localhost:15008', { kind: 'host', host: 'localhost', port: 15008 }],
  ];
  it.each(ok)('parses %s', (raw, want) => {
    expect(parseAuthority(raw)).toEqual({ ok: true, authority: want });
  });

  const bad: Array<[string | undefined, RegExp]> = [
    [undefined, /missing/],
    ['', /missing/],
    ['10.0.0.7', /no port/],
    ['10.0.0.7:', /invalid port/],
    ['10.0.0.7:0', /invalid port/],
    ['10.0.0.7:65536', /invalid port/],
    ['10.0.0.7:80a', /invalid port/],
    ['10.0.0.7:+80', /invalid port/],
    ['fd00::1:80', /brackets/],
    ['[fd00::1]', /\[ipv6\]:port/],
    ['[fd00::1]80', /\[ipv6\]:port/],
    ['[10.0.0.1]:80', /not an IPv6/],
    ['[fd00::1%eth0]:80', /not an IPv6/],
    ['bad_host:80', /neither/],
    ['-lead.example:80', /neither/],
    ['a..b:80', /neither/],
    [':80', /neither/],
  ];
  it.each(bad)('rejects %j', (raw, reason) => {
    const r = parseAuthority(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  it('formats with IPv6 brackets and round-trips', () => {
    expect(formatAuthority('10.0.0.1', 80)).toBe('10.0.0.1:80');
    expect(formatAuthority('fd00::1', 80)).toBe('[fd00::1]:80');
    expect(formatAuthority('svc.ns', 80)).toBe('svc.ns:80');
    for (const [raw] of ok.slice(0, 3)) {
      const r = parseAuthority(raw);
      if (!r.ok || r.authority.kind !== 'ip') throw new Error('unreachable');
      expect(formatAuthority(r.authority.ip, r.authority.port)).toBe(raw);
    }
  });
});

describe('IP canonical form', () => {
  const cases: Array<[string, string]> = [
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:10.1.2.3', '10.1.2.3'],
    ['FD00:0000::0001', 'fd00::1'],
    ['10.0.0.1', '10.0.0.1'],
  ];
  it.each(cases)('%s → %s', (a, b) => expect(canonicalIp(a)).toBe(b));
  it('compares addresses, not spellings', () => {
    expect(sameIp('::ffff:127.0.0.1', '127.0.0.1')).toBe(true);
    expect(sameIp('fd00::1', 'fd00:0::1')).toBe(true);
    expect(sameIp('127.0.0.1', '127.0.0.2')).toBe(false);
    expect(sameIp('host', 'host')).toBe(false);
  });
});

describe('inbound protocol checks (ztunnel order)', () => {
  const base: InboundCheckInput = {
    method: 'CONNECT',
    authority: '10.0.0.7:8080',
    localIp: '10.0.0.7',
    requireLocalIp: true,
  };
  const cases: Array<[string, Partial<InboundCheckInput>, 'ok' | RegExp]> = [
    ['CONNECT to own ip', {}, 'ok'],
    ['GET', { method: 'GET' }, /method GET is not CONNECT/],
    ['no method', { method: undefined }, /method \(none\)/],
    ['bad authority checked after the method', { method: 'POST', authority: 'x' }, /POST/],
    ['no port', { authority: '10.0.0.7' }, /no port/],
    ['other ip', { authority: '10.0.0.8:8080' }, /ip mismatch: 10.0.0.7 != 10.0.0.8/],
    ['v4-mapped local ip', { localIp: '::ffff:10.0.0.7' }, 'ok'],
    ['hostname passes to policy', { authority: 'svc.ns.svc.cluster.local:80' }, 'ok'],
    ['waypoint: any ip allowed', { authority: '10.96.0.10:80', requireLocalIp: false }, 'ok'],
    ['ipv6 own ip', { authority: '[fd00::7]:80', localIp: 'fd00::7' }, 'ok'],
  ];
  it.each(cases)('%s', (_name, over, want) => {
    const r = buildInboundCheck({ ...base, ...over });
    if (want === 'ok') expect(r.ok).toBe(true);
    else {
      expect(r).toMatchObject({ ok: false, status: 400 });
      if (!r.ok) expect(r.reason).toMatch(want);
    }
  });
});

describe('forwarded', () => {
  it.each([
    ['10.0.0.1', 40000, undefined, 'for="10.0.0.1:40000"'],
    [
      '10.0.0.1',
      40000,
      'reviews.shop.svc.cluster.local',
      'for="10.0.0.1:40000";host=reviews.shop.svc.cluster.local',
    ],
    ['fd00::9', 5, undefined, 'for="[fd00::9]:5"'],
  ])('%s:%d host=%s', (ip, port, host, want) => {
    expect(buildForwarded(ip, port, host)).toBe(want);
    expect(parseForwarded(want)).toEqual({
      for: `${ip.includes(':') ? `[${ip}]` : ip}:${port}`,
      ...(host ? { host } : {}),
    });
  });
  it('takes the first element only', () => {
    expect(parseForwarded('for="1.1.1.1:1";host=a, for="2.2.2.2:2";host=b')).toEqual({
      for: '1.1.1.1:1',
      host: 'a',
    });
    expect(parseForwarded(undefined)).toEqual({});
  });
});

describe('traceparent', () => {
  it('is W3C version 00, random, never all-zero', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const tp = buildTraceparent();
      expect(tp).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      expect(isTraceparent(tp)).toBe(true);
      seen.add(tp);
    }
    expect(seen.size).toBe(200);
  });
  it.each([
    ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', true],
    ['00-00000000000000000000000000000000-b7ad6b7169203331-01', false],
    ['00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', false],
    ['01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', false],
    ['00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01', false],
    ['garbage', false],
  ])('isTraceparent(%s) = %s', (v, want) => expect(isTraceparent(v)).toBe(want));
});

describe('baggage', () => {
  it('keeps ztunnel order and drops empty values', () => {
    expect(
      buildBaggage({
        namespace: 'shop',
        workloadKind: 'Deployment',
        workloadName: 'frontend',
        serviceName: 'frontend',
        serviceVersion: 'v1',
      }),
    ).toBe('k8s.namespace.name=shop,k8s.deployment.name=frontend,service.name=frontend,service.version=v1');
    expect(buildBaggage({ namespace: 'shop', workloadName: 'p', serviceVersion: '' })).toBe(
      'k8s.namespace.name=shop,k8s.pod.name=p',
    );
    expect(buildBaggage({ cluster: 'c1', namespace: 'n', region: 'r', zone: 'z' })).toBe(
      'k8s.cluster.name=c1,k8s.namespace.name=n,cloud.region=r,cloud.availability_zone=z',
    );
    expect(buildBaggage({})).toBe('');
  });
  it('round-trips through parseBaggage, percent-encoding odd characters', () => {
    const b = buildBaggage({ namespace: 'shop', serviceName: 'a b,c', serviceVersion: 'v=1' });
    expect(b).toBe('k8s.namespace.name=shop,service.name=a%20b%2Cc,service.version=v%3D1');
    expect(parseBaggage(b)).toEqual({
      'k8s.namespace.name': 'shop',
      'service.name': 'a b,c',
      'service.version': 'v=1',
    });
    expect(parseBaggage('k=v;prop=1, x = y ,bad')).toEqual({ k: 'v', x: 'y' });
  });
});
