/**
 * IP addresses and CIDR blocks, IPv4 and IPv6, without sockets.
 *
 * Addresses are compared in their canonical text form (dotted quad; RFC 5952 for IPv6), which is
 * what every index in state/ is keyed by. An IPv4-mapped IPv6 address (::ffff:10.0.0.1, what a
 * dual-stack Node socket reports for an IPv4 peer) canonicalizes to the IPv4 address, so a policy
 * written for 10.0.0.0/8 matches it. Zone ids (fe80::1%eth0) are not accepted.
 */

export type IpFamily = 4 | 6;

export interface ParsedIp {
  family: IpFamily;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

/** A CIDR block as the istio.security Address message carries it: address + prefix length. */
export interface IpCidr {
  address: string;
  length: number;
}

function parseIpv4(s: string): Uint8Array | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    // No leading zeros (ambiguous octal in some resolvers), no signs, no spaces.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(s: string): Uint8Array | undefined {
  if (s.includes('%')) return undefined;
  let head = s;
  let v4tail: Uint8Array | undefined;
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.slice(lastColon + 1).includes('.')) {
    v4tail = parseIpv4(s.slice(lastColon + 1));
    if (!v4tail) return undefined;
    head = s.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const groups: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      groups.push(parseInt(g, 16));
    }
    return groups;
  };
  const left = parseGroups(halves[0] as string);
  const right = halves.length === 2 ? parseGroups(halves[1] as string) : [];
  if (!left || !right) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - left.length - right.length;
    if (missing < 1) return undefined;
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    groups = left;
  }
  if (groups.length !== 8) return undefined;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  if (v4tail) out.set(v4tail, 12);
  return out;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Parse an IP literal; IPv4-mapped IPv6 becomes IPv4. undefined if it is not an IP. */
export function parseIp(s: string): ParsedIp | undefined {
  if (typeof s !== 'string' || s.length === 0 || s.length > 45) return undefined;
  if (s.includes(':')) {
    const b = parseIpv6(s);
    if (!b) return undefined;
    if (isV4Mapped(b)) return { family: 4, bytes: b.slice(12) };
    return { family: 6, bytes: b };
  }
  const b = parseIpv4(s);
  return b ? { family: 4, bytes: b } : undefined;
}

export function isIp(s: string): boolean {
  return parseIp(s) !== undefined;
}

export function formatIp(ip: ParsedIp): string {
  if (ip.family === 4) return Array.from(ip.bytes).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i] as number) << 8) | (ip.bytes[i + 1] as number));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text form of an IP literal, or undefined if it is not one. */
export function canonicalIp(s: string): string | undefined {
  const p = parseIp(s);
  return p ? formatIp(p) : undefined;
}

/** Parse "10.0.0.0/8", "fd00::/8" or a bare address (a host route: /32 or /128). */
export function parseCidr(s: string): IpCidr | undefined {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const ip = parseIp(addr);
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  let length = max;
  if (slash >= 0) {
    const lenText = s.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(lenText)) return undefined;
    length = Number(lenText);
    // A mapped IPv6 prefix (::ffff:10.0.0.0/104) keeps its meaning as an IPv4 prefix.
    if (addr.includes(':') && ip.family === 4) length -= 96;
    if (length < 0 || length > max) return undefined;
  }
  return { address: formatIp(ip), length };
}

/** Does the block contain the address? Families never match each other. */
export function cidrContains(cidr: IpCidr, ip: string): boolean {
  const net = parseIp(cidr.address);
  const addr = parseIp(ip);
  if (!net || !addr || net.family !== addr.family) return false;
  let bits = cidr.length;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((net.bytes[i] as number) & mask) !== ((addr.bytes[i] as number) & mask)) return false;
  }
  return true;
}

/** 127.0.0.0/8 or ::1 (after IPv4-mapped normalization). */
export function isLoopbackIp(s: string): boolean {
  const p = parseIp(s);
  if (!p) return false;
  if (p.family === 4) return p.bytes[0] === 127;
  return p.bytes.every((b, i) => (i === 15 ? b === 1 : b === 0));
}

export function ipFamily(s: string): IpFamily | undefined {
  return parseIp(s)?.family;
}

/** "ip:port", with IPv6 bracketed, as used in HBONE :authority. */
export function formatHostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
