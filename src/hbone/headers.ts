/**
 * Codecs for the HBONE CONNECT request: the `:authority` (ip:port, [v6]:port or host:port), the
 * `forwarded` header, the W3C `traceparent` used as connection id, and `baggage` describing the
 * source workload. Pure functions, no sockets.
 */
import { randomBytes } from 'node:crypto';
import { isIP, isIPv4, isIPv6 } from 'node:net';

export type Authority =
  { kind: 'ip'; ip: string; port: number; family: 4 | 6 } | { kind: 'host'; host: string; port: number };

export type AuthorityParse = { ok: true; authority: Authority } | { ok: false; reason: string };

// RFC 1123 host name: labels of letters, digits and '-', dot-separated, at most 253 characters.
const HOSTNAME =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

function parsePort(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * Parse a CONNECT `:authority`. An IP literal gives an `ip` authority (IPv6 must be bracketed);
 * anything else that is a valid host name gives a `host` authority, which only the caller's
 * policy can resolve. A port is always required.
 */
export function parseAuthority(raw: string | undefined): AuthorityParse {
  if (raw === undefined || raw === '') return { ok: false, reason: 'missing :authority' };
  let host: string;
  let portText: string;
  if (raw.startsWith('[')) {
    const close = raw.indexOf(']');
    if (close < 0 || raw[close + 1] !== ':')
      return { ok: false, reason: `authority "${raw}" must be [ipv6]:port` };
    host = raw.slice(1, close);
    portText = raw.slice(close + 2);
    // Zone ids (fe80::1%eth0) name a local interface: meaningless to the peer.
    if (!isIPv6(host) || host.includes('%'))
      return { ok: false, reason: `"${host}" in brackets is not an IPv6 address` };
  } else {
    const colon = raw.lastIndexOf(':');
    if (colon < 0) return { ok: false, reason: `authority "${raw}" has no port` };
    host = raw.slice(0, colon);
    portText = raw.slice(colon + 1);
    if (host.includes(':'))
      return { ok: false, reason: `authority "${raw}": an IPv6 address must be in brackets` };
  }
  const port = parsePort(portText);
  if (port === undefined) return { ok: false, reason: `authority "${raw}" has an invalid port` };
  if (isIPv4(host)) return { ok: true, authority: { kind: 'ip', ip: host, port, family: 4 } };
  if (isIPv6(host)) return { ok: true, authority: { kind: 'ip', ip: canonicalIp(host), port, family: 6 } };
  const lower = host.toLowerCase();
  if (!HOSTNAME.test(lower))
    return { ok: false, reason: `authority "${raw}" is neither ip:port nor host:port` };
  return { ok: true, authority: { kind: 'host', host: lower, port } };
}

/** `ip:port`, `[v6]:port` or `host:port`. */
export function formatAuthority(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

export function authorityToString(a: Authority): string {
  return formatAuthority(a.kind === 'ip' ? a.ip : a.host, a.port);
}

/**
 * One spelling per address, so that addresses compare as strings: IPv4-mapped IPv6
 * (`::ffff:10.0.0.1`, as a dual-stack listener reports it) becomes IPv4, and IPv6 is compressed.
 */
export function canonicalIp(ip: string): string {
  const lower = ip.toLowerCase();
  if (lower.startsWith('::ffff:') && isIPv4(lower.slice(7))) return lower.slice(7);
  if (isIPv6(lower) && !lower.includes('%')) return new URL(`http://[${lower}]/`).hostname.slice(1, -1);
  return lower;
}

export function sameIp(a: string, b: string): boolean {
  return isIP(a) !== 0 && isIP(b) !== 0 && canonicalIp(a) === canonicalIp(b);
}

/** `for="<client ip:port>"`, plus `;host=<service hostname>` when the destination service is known. */
export function buildForwarded(clientIp: string, clientPort: number, hostname?: string): string {
  const f = `for="${formatAuthority(clientIp, clientPort)}"`;
  return hostname ? `${f};host=${hostname}` : f;
}

/** The `for` and `host` parameters of the first element of a `forwarded` header (RFC 7239). */
export function parseForwarded(value: string | undefined): { for?: string; host?: string } {
  const out: { for?: string; host?: string } = {};
  if (!value) return out;
  const first = value.split(',')[0] ?? '';
  for (const pair of first.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const key = pair.slice(0, eq).trim().toLowerCase();
    let v = pair.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    if (key === 'for') out.for = v;
    else if (key === 'host') out.host = v;
  }
  return out;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/** A random W3C traceparent, `00-<32 hex>-<16 hex>-00`: one per connection, its id in logs. */
export function buildTraceparent(): string {
  const b = randomBytes(24);
  // All-zero ids are invalid in W3C trace context; setting one bit keeps the id random enough.
  b[0] = (b[0] ?? 0) | 1;
  b[16] = (b[16] ?? 0) | 1;
  const hex = b.toString('hex');
  return `00-${hex.slice(0, 32)}-${hex.slice(32)}-00`;
}

export function isTraceparent(value: string | undefined): value is string {
  if (value === undefined) return false;
  const m = TRACEPARENT.exec(value);
  return m !== null && !/^0+$/.test(m[1] ?? '') && !/^0+$/.test(m[2] ?? '');
}

/** Attributes of the source (or destination) workload carried in `baggage`. */
export interface WorkloadBaggage {
  cluster?: string;
  namespace?: string;
  /** Workload kind (deployment, statefulset, daemonset, cronjob, job, pod); default pod. */
  workloadKind?: string;
  workloadName?: string;
  /** Canonical service name (service.istio.io/canonical-name). */
  serviceName?: string;
  /** Canonical revision (service.istio.io/canonical-revision). */
  serviceVersion?: string;
  region?: string;
  zone?: string;
}

/**
 * `baggage` as ztunnel writes it: comma-joined key=value pairs, only non-empty ones, in the order
 * k8s.cluster.name, k8s.namespace.name, k8s.<kind>.name, service.name, service.version,
 * cloud.region, cloud.availability_zone.
 */
export function buildBaggage(w: WorkloadBaggage): string {
  // A workload without a known controller kind is reported as a pod.
  const given = (w.workloadKind ?? '').toLowerCase();
  const kind = /^[a-z]+$/.test(given) ? given : 'pod';
  const pairs: Array<[string, string | undefined]> = [
    ['k8s.cluster.name', w.cluster],
    ['k8s.namespace.name', w.namespace],
    [`k8s.${kind}.name`, w.workloadName],
    ['service.name', w.serviceName],
    ['service.version', w.serviceVersion],
    ['cloud.region', w.region],
    ['cloud.availability_zone', w.zone],
  ];
  return pairs
    .filter((p): p is [string, string] => typeof p[1] === 'string' && p[1] !== '')
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join(',');
}

/** Parse `baggage` into key → value (properties after ';' are dropped). */
export function parseBaggage(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!value) return out;
  for (const member of value.split(',')) {
    const kv = member.split(';')[0] ?? '';
    const eq = kv.indexOf('=');
    if (eq <= 0) continue;
    const key = kv.slice(0, eq).trim();
    const raw = kv.slice(eq + 1).trim();
    try {
      out[key] = decodeURIComponent(raw);
    } catch {
      out[key] = raw;
    }
  }
  return out;
}
