/**
 * The waypoint's upstream side as the proxy loop sees it: an endpoint (a backend pod and target
 * port), a connector that opens a byte stream to it (in the daemon: an HBONE tunnel from the
 * pool to `<pod ip>:15008` with authority `<pod ip>:<port>`; in tests: plain TCP), and one
 * attempt of one request with its classified outcome.
 */
import type { Duplex, Readable } from 'node:stream';
import type { Workload } from '../state/index.js';
import type { HeaderMap } from './http-types.js';
import type { RequestBody } from './request-body.js';
import type { UpstreamFailure } from './retry-policy.js';

export interface UpstreamEndpoint {
  /** `ip:port`, the key the UpstreamCluster knows the host by. */
  key: string;
  ip: string;
  /** The target port on the pod (already translated from the service port). */
  port: number;
  /** Identities the backend may present: its workload identity plus the Service's SANs. */
  identities: readonly string[];
  /** The backend workload, for telemetry. */
  workload: Workload | undefined;
}

/**
 * Opens a connection to an endpoint. Rejects when it cannot (the attempt then fails with
 * `connect-failure`, which every retry policy retries).
 */
export type UpstreamConnector = (endpoint: UpstreamEndpoint) => Promise<Duplex>;

export type UpstreamProtocol = 'http1' | 'http2';

export interface UpstreamRequestSpec {
  protocol: UpstreamProtocol;
  method: string;
  path: string;
  /** Host header / :authority. */
  host: string;
  /** Without hop-by-hop headers. */
  headers: HeaderMap;
}

export interface UpstreamResponse {
  status: number;
  /** Without hop-by-hop headers. */
  headers: HeaderMap;
  /** grpc-status in the response headers (a trailers-only gRPC response). */
  grpcStatus: number | undefined;
  body: Readable;
  /** The response ended with its headers (an HTTP/2 trailers-only response, as gRPC errors are). */
  endStream: boolean;
  /** The trailers, once the body has ended (undefined if there were none). */
  trailers(): HeaderMap | undefined;
  /** Give up on the response: reset the stream (HTTP/1: close the connection). */
  abort(): void;
  /** Discard the body but keep the connection for reuse when possible (a retried response). */
  discard(): void;
}

export type AttemptResult =
  { ok: true; response: UpstreamResponse } | { ok: false; failure: UpstreamFailure; detail: string };

export interface Attempt {
  /** Resolves once response headers arrived or the attempt failed; never rejects. */
  readonly result: Promise<AttemptResult>;
  /** Abort before a result: the result resolves with `failure`. */
  abort(failure: UpstreamFailure, detail: string): void;
}

export interface UpstreamLimits {
  /** Connections per endpoint (DestinationRule tcp.maxConnections); Infinity = unlimited. */
  maxConnections: number;
  /** 1 disables keep-alive (DestinationRule http.maxRequestsPerConnection: 1). */
  maxRequestsPerConnection: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

export interface UpstreamTransport {
  send(spec: UpstreamRequestSpec, body: RequestBody): Attempt;
  /** Finish in-flight requests, then close. */
  close(): void;
  destroy(): void;
}

/** Bounds the connector by the connect timeout; a timeout or rejection is a MeshConnectError. */
export function connectWithin(
  connector: UpstreamConnector,
  endpoint: UpstreamEndpoint,
  timeoutMs: number,
): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new UpstreamConnectError(`timed out after ${timeoutMs} ms connecting to ${endpoint.key}`));
    }, timeoutMs);
    connector(endpoint).then(
      (stream) => {
        clearTimeout(timer);
        if (done) stream.destroy();
        else resolve(stream);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (done) return;
        done = true;
        reject(new UpstreamConnectError(`connecting to ${endpoint.key}: ${errorText(err)}`, err));
      },
    );
  });
}

/** The connector failed: nothing reached the backend. */
export class UpstreamConnectError extends Error {
  readonly code = 'MESH_UPSTREAM_CONNECT';
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'UpstreamConnectError';
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
