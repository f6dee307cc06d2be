/**
 * The HTTP shapes the waypoint's decision logic works on. They are plain data so that the network
 * runtime can build them from whatever HTTP library it uses (node:http, node:http2).
 */

/** Header names are lower-case; a repeated header is an array of its values in arrival order. */
export type HeaderMap = Record<string, string | readonly string[] | undefined>;

export interface WaypointRequest {
  method: string;
  /** The request target in origin form, with its query string: `/a/b?x=1`. */
  path: string;
  /** The `:authority` / `Host` value, possibly with a port. */
  host: string;
  headers: HeaderMap;
  /** Scheme the client used towards the waypoint; mesh traffic inside HBONE is `http`. */
  scheme?: 'http' | 'https';
}

/** The Service the request was addressed to, known from the HBONE authority `<VIP>:<port>`. */
export interface DestinationService {
  namespace: string;
  name: string;
  /** The service port (untranslated), e.g. 80. */
  port: number;
  /** The VIP the client dialled; used as `destination.ip` in authorization. */
  vip?: string;
  /**
   * Set when the traffic was addressed to a pod (istio.io/use-waypoint on the Pod, a waypoint for
   * `workload` or `all` traffic): `name` is then the pod's name, `port` its port, and no Service's
   * routes, faults or policies apply; only policies on the waypoint itself do.
   */
  workload?: { ip: string };
}

/** Where a request goes: a Service port, or one pod (`workloadIp`, workload-addressed traffic). */
export interface BackendService {
  namespace: string;
  name: string;
  hostname: string;
  port: number;
  workloadIp?: string;
}

/** Who is calling, as seen on the inner HBONE mTLS connection. */
export interface RequestClient {
  /** SPIFFE URI of the original client pod, e.g. spiffe://cluster.local/ns/a/sa/b; absent if plaintext. */
  identity?: string;
  /** The client's IP (from the HBONE `forwarded: for=` header or the peer address). */
  ip: string;
  /** The original client IP after trusted X-Forwarded-For processing; defaults to `ip`. */
  remoteIp?: string;
}

/** First value of a header (or undefined), joining repeated headers the way Envoy matches them. */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  return v.length === 0 ? undefined : v.join(',');
}
