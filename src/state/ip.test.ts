import { describe, expect, it } from 'vitest';
import { canonicalIp, cidrContains, formatHostPort, isLoopbackIp, parseCidr } from './ip.js';

describe('canonicalIp', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    ['127.0.1.5', '127.0.1.5'],
    ['FD00:0:0::1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['::FFFF:7f00:1', '127.0.0.1'],
    ['2001:db8::10.0.0.1', '2001:db8::a00:1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
  ])('%s → %s', (input, want) => {
    expect(canonicalIp(input)).toBe(want);
  });

  it.each([
    '',
    '10.0.0',
    '10.0.0.256',
    '010.0.0.1',
    '1.2.3.4.5',
    'a::b::c',
    '1:2:3:4:5:6:7:8:9',
    'fe80::1%eth0',
    'host',
    ' 10.0.0.1',
  ])('rejects %j', (input) => {
    expect(canonicalIp(input)).toBeUndefined();
  });
});

describe('parseCidr and cidrContains', () => {
  it.each([
    ['10.0.0.0/8', '10.255.1.2', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['10.1.2.3', '10.1.2.3', true],
    ['10.1.2.3', '10.1.2.4', false],
    ['192.168.1.128/25', '192.168.1.200', true],
    ['192.168.1.128/25', '192.168.1.100', false],
    ['0.0.0.0/0', '8.8.8.8', true],
    ['0.0.0.0/0', '::1', false],
    ['fd00::/8', 'fd12:3456::1', true],
    ['fd00::/8', 'fe80::1', false],
    ['2001:db8::/127', '2001:db8::1', true],
    ['2001:db8::/127', '2001:db8::2', false],
    ['::/0', '2001:db8::1', true],
    ['10.0.0.0/8', '::ffff:10.9.9.9', true],
    ['::ffff:10.0.0.0/104', '10.1.1.1', true],
  ])('%s contains %s: %s', (cidr, ip, want) => {
    const c = parseCidr(cidr);
    expect(c).toBeDefined();
    expect(cidrContains(c!, ip)).toBe(want);
  });

  it.each(['10.0.0.0/33', 'fd00::/129', '10.0.0.0/', '10.0.0.0/a', 'x/8'])('rejects %j', (s) => {
    expect(parseCidr(s)).toBeUndefined();
  });
});

describe('isLoopbackIp and formatHostPort', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['::ffff:127.0.0.9', true],
    ['10.0.0.1', false],
    ['::2', false],
    ['nonsense', false],
  ])('%s loopback: %s', (ip, want) => {
    expect(isLoopbackIp(ip)).toBe(want);
  });

  it('brackets IPv6 only', () => {
    expect(formatHostPort('10.0.0.1', 80)).toBe('10.0.0.1:80');
    expect(formatHostPort('fd00::1', 80)).toBe('[fd00::1]:80');
  });
});
