/**
 * The types at the edge of the HBONE server: what the caller's policy sees for each CONNECT
 * stream, what it answers, and what it gets back about established and finished tunnels. The
 * server itself knows nothing of workloads or policies; the caller's `InboundPolicy` does.
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import type { Http2Config } from '../config.js';
import type { SpiffeId, WorkloadCertificate } from '../identity/index.js';
import type { Logger } from '../telemetry/logger.js';
import type { Authority } from './headers.js';

export interface SocketAddress {
  ip: string;
  port: number;
}

/** The verified client identity from its certificate (first SPIFFE URI SAN). */
export interface PeerIdentity {
  uri: string;
  id: SpiffeId;
}

/** The HBONE request headers the mesh uses; absent ones are undefined. */
export interface HboneRequestHeaders {
  forwarded?: string;
  traceparent?: string;
  baggage?: string;
}

/** A CONNECT stream that passed the protocol checks (method, authority, authority IP). */
export interface InboundRequest {
  /** The request's traceparent when it is valid W3C, else a generated one: the id in logs. */
  connectionId: string;
  /** Parsed `:authority`: an IP (already checked to be the listener's IP) or a host name. */
  authority: Authority;
  peer: PeerIdentity;
  /** The TCP peer of the HBONE connection (the source node or waypoint). */
  peerAddress: SocketAddress;
  /** The listener address the client dialed (the destination workload IP and 15008). */
  localAddress: SocketAddress;
  headers: HboneRequestHeaders;
}

/** Where the server may connect for this stream; the only place it ever connects. */
export interface DialTarget {
  host: string;
  port: number;
  /** Local address to bind (for example the original client IP when spoofing is possible). */
  localAddress?: string;
}

export type InboundDecision =
  | {
      ok: true;
      target: DialTarget;
      /** Extra headers on the 200 (for example `baggage` describing the destination). */
      responseHeaders?: Record<string, string>;
      observer?: TunnelObserver;
    }
  | {
      ok: true;
      /**
       * The caller terminates the tunnel itself (a waypoint serves HTTP on it): the server sends
       * 200 and hands the stream over instead of dialing. From then on the caller owns the
       * stream; the server still ends it on close() and sends GOAWAY on drain().
       */
      terminate: (stream: Duplex) => void;
      responseHeaders?: Record<string, string>;
    }
  | {
      ok: false;
      /** 503: unknown workload or port that does not resolve; 401: authorization deny. */
      status: 401 | 503;
      reason: string;
    };

/** The caller's decision for one stream. It may be async (for example waiting for config). */
export type InboundPolicy = (request: InboundRequest) => InboundDecision | Promise<InboundDecision>;

/** Per-tunnel callbacks given with an allow decision. */
export interface TunnelObserver {
  /** The dial succeeded and 200 was sent; `tunnel` can close it later (a policy change). */
  established?(tunnel: TunnelHandle): void;
  /** Exactly once per allowed stream: after the copy ends, or after a failed dial (503). */
  closed?(record: TunnelRecord): void;
}

export interface TunnelHandle {
  readonly connectionId: string;
  readonly request: InboundRequest;
  readonly target: DialTarget;
  readonly startedAtMs: number;
  /** Bytes from the HBONE client to the app so far. */
  readonly bytesUp: number;
  /** Bytes from the app to the HBONE client so far. */
  readonly bytesDown: number;
  /** Bytes buffered in the tunnel's two streams now. */
  bufferedBytes(): number;
  /** Tear the tunnel down now; the record carries `reason` as its error. */
  close(reason: string): void;
}

export interface TunnelRecord {
  connectionId: string;
  request: InboundRequest;
  target: DialTarget;
  /** 200 if the tunnel was established, 503 if the dial failed. */
  status: 200 | 503;
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
  /** Why it failed or was closed from outside; absent for a normal close. */
  error?: string;
}

/** A stream answered 400 by the protocol checks, before any policy ran. */
export interface RejectedStream {
  connectionId: string;
  status: 400;
  reason: string;
  authority: string | undefined;
  peer: PeerIdentity;
  peerAddress: SocketAddress;
  localAddress: SocketAddress;
}

export type DialResult = { ok: true; socket: Duplex } | { ok: false; reason: string; timedOut: boolean };

/**
 * Opens the upstream TCP connection. The default is net.connect; capture mode injects one that
 * creates the socket inside the pod's network namespace.
 */
export type Dialer = (target: DialTarget, timeoutMs: number) => Promise<DialResult>;

/**
 * Opens the TCP connection under a new outbound HBONE session, instead of net.connect (capture
 * mode: a socket made inside the source pod's network namespace and marked). Connect errors must
 * surface as 'error' events; a throw counts as a failed connect.
 */
export type SocketConnector = (target: DialTarget) => net.Socket;

export interface HboneServerOptions {
  /** The certificate of the workload that owns this listener. */
  certificate: WorkloadCertificate;
  /** Decides, per CONNECT stream, where it may go (or 401/503). */
  policy: InboundPolicy;
  http2?: Http2Config;
  /** Upstream dial timeout: 10 s by default, as ztunnel. */
  connectTimeoutMs?: number;
  /** A client that has not finished TLS in this time is closed: 10 s by default. */
  tlsHandshakeTimeoutMs?: number;
  /** Opens the upstream connection; net.connect by default. */
  dialer?: Dialer;
  /** Require an IP authority to be the listener's IP (default true; a waypoint turns it off). */
  requireLocalAuthority?: boolean;
  registry?: Registry;
  logger?: Logger;
  /** Streams answered 400 by the protocol checks, for access logs. */
  onStreamRejected?: (rejected: RejectedStream) => void;
  /** Session lifecycle (after admission), for logs and tests. */
  onSessionEvent?: (e: HboneServerSessionEvent) => void;
}

export interface HboneServerSessionEvent {
  kind: 'opened' | 'closed';
  peer: PeerIdentity;
  peerAddress: SocketAddress;
  /** Why the session ended, when it ended on an error (for example an unanswered PING). */
  error?: string;
}
