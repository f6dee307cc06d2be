/**
 * HboneServer: the HBONE (mTLS + HTTP/2 CONNECT) listener of one workload.
 *
 * Invariants:
 * - TLS presents the workload's certificate (never chosen by SNI), requires a client chain to the
 *   mesh roots, and drops a client whose SPIFFE id is outside our trust domain before any HTTP/2
 *   frame is processed; plaintext, non-h2 and silent clients are closed (handshake timeout).
 * - Per stream, in this order: protocol checks (400), the caller's policy (401/503 or a target),
 *   the dial (503 on failure), and only then 200 and the copy. The server connects nowhere but
 *   the target the policy returned: it is not an open relay. A policy may instead terminate the
 *   stream itself (the waypoint): then 200 is sent at once and the stream is handed over.
 * - Every dialed stream reports exactly one TunnelRecord to its observer; every session is
 *   counted open once and closed once.
 * - drain() stops accepting and sends GOAWAY on every session, letting live streams finish;
 *   close() ends everything that remains.
 */
import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import { DEFAULT_CONFIG, type Http2Config } from '../config.js';
import { MeshError, errorMessage } from '../errors.js';
import {
  secureContextOptions,
  serverTlsOptions,
  verifyClientPeer,
  type WorkloadCertificate,
} from '../identity/index.js';
import { silentLogger, type Logger } from '../telemetry/logger.js';
import type { CopyResult } from './copy.js';
import { InboundTunnel, buildRecord } from './inbound-tunnel.js';
import { dialTcp } from './dial.js';
import { buildTraceparent, canonicalIp, isTraceparent } from './headers.js';
import { buildInboundCheck } from './inbound-check.js';
import { HboneMetrics } from './metrics.js';
import { Keepalive, applyConnectionWindow, serverSettings, watchSession } from './session-options.js';
import type {
  HboneServerOptions,
  HboneServerSessionEvent,
  Dialer,
  InboundDecision,
  InboundPolicy,
  InboundRequest,
  PeerIdentity,
  RejectedStream,
  SocketAddress,
  TunnelObserver,
} from './types.js';

const PEER = Symbol('hbone.peer');
/** Set on an admitted TLS socket; read through the session's socket proxy. */
type PeerSocket = tls.TLSSocket & { [PEER]?: { peer: PeerIdentity; socket: tls.TLSSocket } };

interface SessionState {
  socket: tls.TLSSocket;
  peer: PeerIdentity;
  peerAddress: SocketAddress;
  localAddress: SocketAddress;
  keepalive: Keepalive;
}

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export class HboneServer {
  private readonly server: http2.Http2SecureServer;
  private readonly sessions = new Map<http2.Http2Session, SessionState>();
  private readonly sockets = new Set<net.Socket>();
  private readonly tunnels = new Set<InboundTunnel>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly http2: Http2Config;
  private readonly connectTimeoutMs: number;
  private readonly dialer: Dialer;
  private readonly policy: InboundPolicy;
  private readonly requireLocalAuthority: boolean;
  private readonly metrics: HboneMetrics;
  private readonly log: Logger;
  private readonly onStreamRejected: ((r: RejectedStream) => void) | undefined;
  private readonly onSessionEvent: ((e: HboneServerSessionEvent) => void) | undefined;
  private trustDomain: string;
  private draining = false;

  constructor(opts: HboneServerOptions) {
    this.http2 = opts.http2 ?? DEFAULT_CONFIG.http2;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONFIG.connectTimeoutMs;
    this.dialer = opts.dialer ?? dialTcp;
    this.policy = opts.policy;
    this.requireLocalAuthority = opts.requireLocalAuthority ?? true;
    this.metrics = HboneMetrics.of(opts.registry);
    this.log = (opts.logger ?? silentLogger()).child({ component: 'hbone-server' });
    this.onStreamRejected = opts.onStreamRejected;
    this.onSessionEvent = opts.onSessionEvent;
    this.trustDomain = opts.certificate.identity.trustDomain;
    this.server = http2.createSecureServer({
      ...serverTlsOptions(
        opts.certificate,
        opts.tlsHandshakeTimeoutMs ?? DEFAULT_CONFIG.tlsHandshakeTimeoutMs,
      ),
      settings: serverSettings(this.http2),
      maxSessionMemory: this.http2.maxSessionMemoryMb,
      allowHTTP1: false,
    });
    this.server.on('connection', this.onConnection);
    // Runs before http2's own listener, so a rejected peer never gets an HTTP/2 session.
    this.server.prependListener('secureConnection', this.onSecureConnection);
    this.server.on('unknownProtocol', this.onUnknownProtocol);
    this.server.on('tlsClientError', this.onTlsClientError);
    this.server.on('session', this.onSession);
    this.server.on('stream', this.onStream);
    this.server.on('error', (err) => this.log.error({ err: errorMessage(err) }, 'HBONE listener error'));
  }

  /** Listen on {host, port} (local mode) or {fd} (a socket made in the pod's netns). */
  listen(options: net.ListenOptions | { fd: number }): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(
          new MeshError(
            'MESH_ERR_BIND',
            `cannot listen for HBONE on ${JSON.stringify(options)}: ${err.message}`,
            {
              cause: err,
              hint: 'check that the address is local to this host and the port is free',
            },
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen(options, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  address(): net.AddressInfo | null {
    const a = this.server.address();
    return a !== null && typeof a === 'object' ? a : null;
  }

  /** Present `cert` on new connections (rotation); live connections keep theirs. */
  setCertificate(cert: WorkloadCertificate): void {
    this.server.setSecureContext(secureContextOptions(cert));
    this.trustDomain = cert.identity.trustDomain;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  get tunnelCount(): number {
    return this.tunnels.size;
  }

  /** Stop accepting, GOAWAY every session; resolves once all sessions have closed. */
  drain(): Promise<void> {
    this.draining = true;
    if (this.server.listening) this.server.close();
    for (const s of this.sessions.keys()) s.close();
    return this.whenNoSessions();
  }

  /** End everything now: tunnels, sessions, handshaking sockets and the listener. */
  close(): Promise<void> {
    this.draining = true;
    if (this.server.listening) this.server.close();
    for (const t of this.tunnels) t.close('HBONE server closed');
    for (const [session, state] of this.sessions) {
      session.destroy();
      state.socket.destroy();
    }
    for (const s of this.sockets) s.destroy();
    return this.whenNoSessions();
  }

  private whenNoSessions(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private readonly onConnection = (socket: net.Socket): void => {
    if (this.draining) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  };

  private readonly onSecureConnection = (socket: PeerSocket): void => {
    const check = verifyClientPeer(socket, this.trustDomain);
    if (!check.ok) {
      this.metrics.recordHandshakeFailure('peer_identity');
      this.log.debug({ peer: socket.remoteAddress, reason: check.reason }, 'rejected HBONE client');
      // Steer http2's connection listener to its "unknown protocol" branch: no session is made.
      socket.alpnProtocol = false;
      socket.destroy();
      return;
    }
    socket[PEER] = { peer: { uri: check.uri, id: check.id }, socket };
  };

  private readonly onUnknownProtocol = (socket: tls.TLSSocket): void => {
    if (!socket.destroyed) {
      this.metrics.recordHandshakeFailure('alpn');
      this.log.debug({ peer: socket.remoteAddress }, 'HBONE client did not negotiate h2');
      socket.destroy();
    }
  };

  private readonly onTlsClientError = (err: Error, socket: tls.TLSSocket): void => {
    this.metrics.recordHandshakeFailure('tls');
    this.log.debug({ peer: socket.remoteAddress, err: err.message }, 'HBONE TLS handshake failed');
  };

  private readonly onSession = (session: http2.ServerHttp2Session): void => {
    const admitted = (session.socket as PeerSocket)[PEER];
    if (!admitted) {
      session.destroy();
      return;
    }
    const { peer, socket } = admitted;
    applyConnectionWindow(session, this.http2);
    const state: SessionState = {
      socket,
      peer,
      peerAddress: { ip: canonicalIp(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 },
      localAddress: { ip: canonicalIp(socket.localAddress ?? ''), port: socket.localPort ?? 0 },
      keepalive: new Keepalive(session, this.http2.pingIntervalMs, this.http2.pingTimeoutMs),
    };
    this.sessions.set(session, state);
    this.metrics.recordSessionOpened('inbound');
    this.emitSession({ kind: 'opened', peer, peerAddress: state.peerAddress });
    let lastError: string | undefined;
    session.on('error', (err: Error) => {
      lastError = err.message;
      this.log.debug({ peer: state.peerAddress, err: err.message }, 'HBONE session error');
    });
    watchSession(session, socket, () => {
      state.keepalive.stop();
      this.sessions.delete(session);
      this.metrics.recordSessionClosed('inbound');
      this.emitSession({
        kind: 'closed',
        peer,
        peerAddress: state.peerAddress,
        ...(state.keepalive.failure || lastError ? { error: state.keepalive.failure ?? lastError } : {}),
      });
      if (this.sessions.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
    if (this.draining) session.close();
  };

  private readonly onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    const state = stream.session ? this.sessions.get(stream.session) : undefined;
    if (!state) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    this.metrics.recordStreamOpened('inbound');
    stream.once('close', this.onStreamClose);
    // A peer reset must never surface as an unhandled 'error'; the copy handles it once it runs.
    stream.on('error', this.onStreamError);
    void this.proxyStream(stream, headers, state);
  };

  private readonly onStreamClose = (): void => this.metrics.recordStreamClosed('inbound');

  private readonly onStreamError = (err: Error): void => {
    this.log.debug({ err: err.message }, 'HBONE stream error');
  };

  /**
   * One CONNECT stream, in DESIGN's order: checks, policy, dial, 200, then hand over to an
   * InboundTunnel (the copy) and return, so an idle tunnel keeps no async frame alive.
   */
  private async proxyStream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    state: SessionState,
  ): Promise<void> {
    const traceparent = headerString(headers.traceparent);
    const connectionId = isTraceparent(traceparent) ? traceparent : buildTraceparent();
    const check = buildInboundCheck({
      method: headers[':method'],
      authority: headers[':authority'],
      localIp: state.localAddress.ip,
      requireLocalIp: this.requireLocalAuthority,
    });
    if (!check.ok) {
      this.respondStatus(stream, check.status);
      this.log.debug({ connectionId, reason: check.reason }, 'HBONE request rejected');
      this.onStreamRejected?.({
        connectionId,
        status: 400,
        reason: check.reason,
        authority: headers[':authority'],
        peer: state.peer,
        peerAddress: state.peerAddress,
        localAddress: state.localAddress,
      });
      return;
    }
    const request: InboundRequest = {
      connectionId,
      authority: check.authority,
      peer: state.peer,
      peerAddress: state.peerAddress,
      localAddress: state.localAddress,
      headers: {
        forwarded: headerString(headers.forwarded),
        traceparent,
        baggage: headerString(headers.baggage),
      },
    };
    let decision: InboundDecision;
    try {
      decision = await this.policy(request);
    } catch (err) {
      this.log.error({ connectionId, err: errorMessage(err) }, 'HBONE policy callback threw');
      decision = { ok: false, status: 503, reason: `policy failed: ${errorMessage(err)}` };
    }
    if (!decision.ok) {
      this.respondStatus(stream, decision.status);
      return;
    }
    if ('terminate' in decision) {
      if (isGone(stream)) return;
      stream.respond({ ...decision.responseHeaders, ':status': 200 });
      this.metrics.recordResponse('inbound', 200);
      decision.terminate(stream);
      return;
    }
    const { target, observer } = decision;
    const pending = { connectionId, request, target, startedAtMs: Date.now() };
    if (isGone(stream)) {
      this.notify(
        observer,
        'closed',
        buildRecord(pending, 503, 0, 0, 'the client closed the stream before the dial'),
      );
      return;
    }
    const dial = await this.dialer(target, this.connectTimeoutMs);
    if (!dial.ok) {
      this.metrics.recordDialFailure('inbound', dial.timedOut ? 'app_connect_timeout' : 'app_connect');
      this.respondStatus(stream, 503);
      this.notify(observer, 'closed', buildRecord(pending, 503, 0, 0, dial.reason));
      return;
    }
    if (isGone(stream)) {
      dial.socket.destroy();
      this.notify(
        observer,
        'closed',
        buildRecord(pending, 503, 0, 0, 'the client closed the stream during the dial'),
      );
      return;
    }
    stream.respond({ ...decision.responseHeaders, ':status': 200 });
    this.metrics.recordResponse('inbound', 200);
    // From here the tunnel lives on its own: this function returns and keeps nothing alive.
    const tunnel = new InboundTunnel(
      connectionId,
      request,
      target,
      observer,
      pending.startedAtMs,
      stream,
      dial.socket,
      this.onTunnelEnd,
    );
    this.tunnels.add(tunnel);
    this.notify(observer, 'established', tunnel);
  }

  private readonly onTunnelEnd = (t: InboundTunnel, r: CopyResult): void => {
    this.tunnels.delete(t);
    this.notify(t.observer, 'closed', buildRecord(t, 200, r.bytesUp, r.bytesDown, r.error?.message));
  };

  /** The one place HBONE statuses are written: an error response ends the stream. */
  private respondStatus(stream: http2.ServerHttp2Stream, status: 400 | 401 | 503): void {
    this.metrics.recordResponse('inbound', status);
    if (isGone(stream)) return;
    stream.respond({ ':status': status }, { endStream: true });
    // We will not read the rest of the request: ask the client to stop sending (RFC 9113 8.1).
    stream.close(http2.constants.NGHTTP2_NO_ERROR);
  }

  private emitSession(e: HboneServerSessionEvent): void {
    try {
      this.onSessionEvent?.(e);
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'onSessionEvent threw');
    }
  }

  private notify<K extends keyof TunnelObserver>(
    observer: TunnelObserver | undefined,
    event: K,
    arg: Parameters<NonNullable<TunnelObserver[K]>>[0],
  ): void {
    const fn = observer?.[event] as ((a: typeof arg) => void) | undefined;
    if (!fn) return;
    try {
      fn.call(observer, arg);
    } catch (err) {
      this.log.error({ err: errorMessage(err), event }, 'HBONE tunnel observer threw');
    }
  }
}

function isGone(stream: http2.Http2Stream): boolean {
  return stream.destroyed || stream.closed;
}
