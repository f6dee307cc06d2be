/**
 * SOCKS5 (RFC 1928) codec, sans I/O, for the subset Istio's ztunnel accepts: version 5, the
 * no-authentication method only, the CONNECT command only, and IPv4, IPv6 or domain-name
 * targets. Parsers take the bytes received so far and say whether they need more, what they
 * parsed (and how many bytes it used), or which reply code to send before closing.
 */
import { isIP } from 'node:net';

export const SOCKS_VERSION = 5;
export const METHOD_NO_AUTH = 0x00;
export const METHOD_NONE_ACCEPTABLE = 0xff;
export const CMD_CONNECT = 0x01;
export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAIN = 0x03;
export const ATYP_IPV6 = 0x04;

/** RFC 1928 §6 reply codes. */
export const Reply = {
  Succeeded: 0x00,
  GeneralFailure: 0x01,
  NotAllowed: 0x02,
  NetworkUnreachable: 0x03,
  HostUnreachable: 0x04,
  ConnectionRefused: 0x05,
  TtlExpired: 0x06,
  CommandNotSupported: 0x07,
  AddressTypeNotSupported: 0x08,
} as const;
export type ReplyCode = (typeof Reply)[keyof typeof Reply];

export type Socks5Target =
  { kind: 'ip'; ip: string; port: number } | { kind: 'domain'; hostname: string; port: number };

export type ParseResult<T> =
  | { status: 'incomplete' }
  | { status: 'ok'; value: T; consumed: number }
  | { status: 'error'; reply: ReplyCode | null; message: string };

const incomplete = { status: 'incomplete' } as const;

/** Client greeting: VER NMETHODS METHODS... We accept only if "no authentication" is offered. */
export function parseGreeting(buf: Buffer): ParseResult<{ methods: number[] }> {
  if (buf.length < 2) return incomplete;
  if (buf[0] !== SOCKS_VERSION) {
    return { status: 'error', reply: null, message: `not SOCKS5 (version byte ${buf[0] ?? 0})` };
  }
  const n = buf[1] ?? 0;
  if (n === 0) return { status: 'error', reply: null, message: 'client offered no authentication methods' };
  if (buf.length < 2 + n) return incomplete;
  const methods = [...buf.subarray(2, 2 + n)];
  return { status: 'ok', value: { methods }, consumed: 2 + n };
}

/** Server's method selection: 05 00 (no auth) or 05 FF (none acceptable). */
export function encodeMethodSelection(method: number): Buffer {
  return Buffer.from([SOCKS_VERSION, method]);
}

/** Request: VER CMD RSV ATYP DST.ADDR DST.PORT. */
export function parseRequest(buf: Buffer): ParseResult<Socks5Target> {
  if (buf.length < 4) return incomplete;
  if (buf[0] !== SOCKS_VERSION) {
    return { status: 'error', reply: Reply.GeneralFailure, message: `bad request version ${buf[0] ?? 0}` };
  }
  const cmd = buf[1];
  const atyp = buf[3];
  let addrEnd: number;
  let target: (port: number) => Socks5Target;
  if (atyp === ATYP_IPV4) {
    addrEnd = 4 + 4;
    if (buf.length < addrEnd + 2) return incomplete;
    const ip = [...buf.subarray(4, 8)].join('.');
    target = (port) => ({ kind: 'ip', ip, port });
  } else if (atyp === ATYP_IPV6) {
    addrEnd = 4 + 16;
    if (buf.length < addrEnd + 2) return incomplete;
    const groups: string[] = [];
    for (let i = 4; i < 20; i += 2) groups.push(buf.readUInt16BE(i).toString(16));
    const ip = compressIpv6(groups);
    target = (port) => ({ kind: 'ip', ip, port });
  } else if (atyp === ATYP_DOMAIN) {
    if (buf.length < 5) return incomplete;
    const len = buf[4] ?? 0;
    addrEnd = 5 + len;
    if (buf.length < addrEnd + 2) return incomplete;
    if (len === 0) return { status: 'error', reply: Reply.GeneralFailure, message: 'empty domain name' };
    const name = buf.subarray(5, addrEnd).toString('latin1');
    if (!/^[A-Za-z0-9.-]+$/.test(name)) {
      return {
        status: 'error',
        reply: Reply.GeneralFailure,
        message: `invalid domain name ${JSON.stringify(name)}`,
      };
    }
    // A domain that is a literal IP address is treated as that address.
    const hostname = name.replace(/\.$/, '').toLowerCase();
    target = (port) =>
      isIP(hostname) ? { kind: 'ip', ip: hostname, port } : { kind: 'domain', hostname, port };
  } else {
    return {
      status: 'error',
      reply: Reply.AddressTypeNotSupported,
      message: `address type ${atyp ?? 0} not supported`,
    };
  }
  if (cmd !== CMD_CONNECT) {
    const name = cmd === 2 ? 'BIND' : cmd === 3 ? 'UDP ASSOCIATE' : `command ${cmd ?? 0}`;
    return {
      status: 'error',
      reply: Reply.CommandNotSupported,
      message: `${name} is not supported; only CONNECT`,
    };
  }
  if (buf[2] !== 0)
    return { status: 'error', reply: Reply.GeneralFailure, message: 'reserved byte must be 0' };
  const port = buf.readUInt16BE(addrEnd);
  if (port === 0) return { status: 'error', reply: Reply.GeneralFailure, message: 'destination port 0' };
  return { status: 'ok', value: target(port), consumed: addrEnd + 2 };
}

/** Reply: VER REP RSV ATYP BND.ADDR BND.PORT, with an IPv4 bind address (0.0.0.0:0 unless given). */
export function encodeReply(
  code: ReplyCode,
  bind: { ip: string; port: number } = { ip: '0.0.0.0', port: 0 },
): Buffer {
  const v4 = isIP(bind.ip) === 4 ? bind.ip : '0.0.0.0';
  const out = Buffer.alloc(10);
  out[0] = SOCKS_VERSION;
  out[1] = code;
  out[2] = 0;
  out[3] = ATYP_IPV4;
  v4.split('.').forEach((octet, i) => (out[4 + i] = Number(octet)));
  out.writeUInt16BE(bind.port, 8);
  return out;
}

/** Client side (tests, bench): greeting + CONNECT request in one buffer. */
export function encodeClientConnect(target: Socks5Target): Buffer {
  const greeting = Buffer.from([SOCKS_VERSION, 1, METHOD_NO_AUTH]);
  let addr: Buffer;
  if (target.kind === 'domain') {
    const name = Buffer.from(target.hostname, 'latin1');
    addr = Buffer.concat([Buffer.from([ATYP_DOMAIN, name.length]), name]);
  } else if (isIP(target.ip) === 4) {
    addr = Buffer.from([ATYP_IPV4, ...target.ip.split('.').map(Number)]);
  } else {
    addr = Buffer.concat([Buffer.from([ATYP_IPV6]), ipv6Bytes(target.ip)]);
  }
  const port = Buffer.alloc(2);
  port.writeUInt16BE(target.port);
  return Buffer.concat([greeting, Buffer.from([SOCKS_VERSION, CMD_CONNECT, 0]), addr, port]);
}

function compressIpv6(groups: string[]): string {
  // Longest run of zero groups becomes "::" (RFC 5952).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

function ipv6Bytes(ip: string): Buffer {
  const [head = '', tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail !== undefined ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
