import { describe, expect, it } from 'vitest';
import {
  Reply,
  encodeClientConnect,
  encodeMethodSelection,
  encodeReply,
  parseGreeting,
  parseRequest,
  type Socks5Target,
} from './socks5.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('SOCKS5 greeting', () => {
  const cases: Array<[string, string, ReturnType<typeof parseGreeting>]> = [
    ['empty', '', { status: 'incomplete' }],
    ['version only', '05', { status: 'incomplete' }],
    ['methods pending', '05 02 00', { status: 'incomplete' }],
    ['no-auth offered', '05 01 00', { status: 'ok', value: { methods: [0] }, consumed: 3 }],
    ['several methods', '05 03 02 01 00', { status: 'ok', value: { methods: [2, 1, 0] }, consumed: 5 }],
    ['SOCKS4', '04 01 00 50', { status: 'error', reply: null, message: 'not SOCKS5 (version byte 4)' }],
    ['HTTP', '47 45 54 20', { status: 'error', reply: null, message: 'not SOCKS5 (version byte 71)' }],
    [
      'zero methods',
      '05 00',
      { status: 'error', reply: null, message: 'client offered no authentication methods' },
    ],
  ];
  it.each(cases)('%s', (_name, input, want) => {
    expect(parseGreeting(hex(input))).toEqual(want);
  });

  it('encodes the method selection', () => {
    expect(encodeMethodSelection(0)).toEqual(hex('0500'));
    expect(encodeMethodSelection(0xff)).toEqual(hex('05ff'));
  });
});

describe('SOCKS5 request', () => {
  const ok = (value: Socks5Target, consumed: number) => ({ status: 'ok', value, consumed });
  const cases: Array<[string, string, unknown]> = [
    ['ipv4', '05 01 00 01 7f000102 1f90', ok({ kind: 'ip', ip: '127.0.1.2', port: 8080 }, 10)],
    ['ipv4 incomplete', '05 01 00 01 7f0001', { status: 'incomplete' }],
    [
      'ipv6',
      '05 01 00 04 fd000000000000000000000000000001 0050',
      ok({ kind: 'ip', ip: 'fd00::1', port: 80 }, 22),
    ],
    [
      'ipv6 loopback',
      '05 01 00 04 00000000000000000000000000000001 0050',
      ok({ kind: 'ip', ip: '::1', port: 80 }, 22),
    ],
    [
      'ipv6 no zero run',
      '05 01 00 04 00010002000300040005000600070008 0050',
      ok({ kind: 'ip', ip: '1:2:3:4:5:6:7:8', port: 80 }, 22),
    ],
    [
      'domain',
      `05 01 00 03 0c ${Buffer.from('backend.shop').toString('hex')} 1f90`,
      ok({ kind: 'domain', hostname: 'backend.shop', port: 8080 }, 19),
    ],
    [
      'domain trailing dot, upper case',
      `05 01 00 03 06 ${Buffer.from('Web.A.').toString('hex')} 0050`,
      ok({ kind: 'domain', hostname: 'web.a', port: 80 }, 13),
    ],
    [
      'domain that is an IP',
      `05 01 00 03 08 ${Buffer.from('10.0.0.1').toString('hex')} 0050`,
      ok({ kind: 'ip', ip: '10.0.0.1', port: 80 }, 15),
    ],
    ['domain incomplete', `05 01 00 03 0c 6261`, { status: 'incomplete' }],
    [
      'BIND refused',
      '05 02 00 01 7f000001 0050',
      { status: 'error', reply: Reply.CommandNotSupported, message: 'BIND is not supported; only CONNECT' },
    ],
    [
      'UDP refused',
      '05 03 00 01 7f000001 0050',
      {
        status: 'error',
        reply: Reply.CommandNotSupported,
        message: 'UDP ASSOCIATE is not supported; only CONNECT',
      },
    ],
    [
      'bad atyp',
      '05 01 00 02 7f000001 0050',
      { status: 'error', reply: Reply.AddressTypeNotSupported, message: 'address type 2 not supported' },
    ],
    [
      'bad version',
      '04 01 00 01 7f000001 0050',
      { status: 'error', reply: Reply.GeneralFailure, message: 'bad request version 4' },
    ],
    [
      'reserved byte',
      '05 01 07 01 7f000001 0050',
      { status: 'error', reply: Reply.GeneralFailure, message: 'reserved byte must be 0' },
    ],
    [
      'port zero',
      '05 01 00 01 7f000001 0000',
      { status: 'error', reply: Reply.GeneralFailure, message: 'destination port 0' },
    ],
    [
      'empty domain',
      '05 01 00 03 00 0050',
      { status: 'error', reply: Reply.GeneralFailure, message: 'empty domain name' },
    ],
    [
      'domain with space',
      `05 01 00 03 03 ${Buffer.from('a b').toString('hex')} 0050`,
      { status: 'error', reply: Reply.GeneralFailure, message: 'invalid domain name "a b"' },
    ],
  ];
  it.each(cases)('%s', (_name, input, want) => {
    expect(parseRequest(hex(input))).toEqual(want);
  });

  it('round-trips client encodings', () => {
    const targets: Socks5Target[] = [
      { kind: 'ip', ip: '127.0.0.9', port: 15008 },
      { kind: 'ip', ip: 'fd00::a:1', port: 443 },
      { kind: 'domain', hostname: 'backend.shop.svc.cluster.local', port: 8080 },
    ];
    for (const t of targets) {
      const buf = encodeClientConnect(t);
      const g = parseGreeting(buf);
      expect(g.status).toBe('ok');
      if (g.status !== 'ok') continue;
      const r = parseRequest(buf.subarray(g.consumed));
      expect(r).toEqual({ status: 'ok', value: t, consumed: buf.length - g.consumed });
    }
  });

  it('encodes replies with an IPv4 bind address', () => {
    expect(encodeReply(Reply.Succeeded)).toEqual(hex('05 00 00 01 00000000 0000'));
    expect(encodeReply(Reply.ConnectionRefused, { ip: '127.0.0.2', port: 15080 })).toEqual(
      hex('05 05 00 01 7f000002 3ae8'),
    );
    expect(encodeReply(Reply.NotAllowed, { ip: '::1', port: 1 })).toEqual(hex('05 02 00 01 00000000 0001'));
  });
});
