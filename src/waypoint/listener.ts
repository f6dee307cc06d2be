/**
 * WaypointListener: serves the inbound tunnels of the waypoint. Each tunnel is a Duplex (an HBONE
 * CONNECT stream in the daemon, any Duplex in tests) with the context its CONNECT established.
 * The first bytes decide: the HTTP/2 preface goes to an http2 server (prior knowledge, gRPC),
 * an HTTP/1.x request line to an http server (keep-alive), anything else (or a port declared
 * TCP) to the L4 passthrough. Both servers are fed with `emit('connection', stream)`; they never
 * listen on a socket themselves. HTTP/1.1 upgrade requests (WebSocket) go to upgrade.ts.
 *
 * Invariants:
 * - every tunnel is tracked from serve() until its stream closes; `serve` resolves then;
 * - drain() accepts no new tunnel, lets in-flight requests finish, closes HTTP/1.1 connections
 *   as soon as they are idle (and after their current response), sends GOAWAY on HTTP/2 sessions,
 *   and resolves when every tunnel has closed; forceClose() destroys what remains.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Logger } from '../telemetry/index.js';
import { errorMessage } from '../errors.js';
import { Http1Exchange, Http2Exchange } from './downstream.js';
import type { InboundContext, ProxyDeps } from './proxy.js';
import { proxyRequest } from './proxy.js';
import type { PassthroughDeps } from './passthrough.js';
import { proxyTcp } from './passthrough.js';
import { sniffProtocol } from './sniff.js';
import { buildPlainRequestHead, proxyUpgrade, buildUpgradeKind } from './upgrade.js';

export type ListenerDeps = ProxyDeps & PassthroughDeps & { log: Logger };

/**
 * Downstream HTTP idle timeout: 1 h, Envoy's (and so an Istio waypoint's) default for idle HTTP
 * connections; the client's ztunnel holds the tunnel open for as long.
 */
export const DOWNSTREAM_IDLE_TIMEOUT_MS = 3_600_000;
/** Request headers must arrive within 60 s (Node's default headersTimeout, Envoy's order). */
const HEADERS_TIMEOUT_MS = 60_000;
/** Envoy's default max_request_headers_kb: 60 KiB of request headers. */
export const MAX_HEADER_BYTES = 60 * 1024;
/** Concurrent streams per downstream HTTP/2 connection: 100, as Envoy's default for Istio. */
const MAX_CONCURRENT_STREAMS = 100;

interface Tunnel {
  stream: Duplex;
  ctx: InboundContext;
  kind: 'sniffing' | 'http1' | 'http2' | 'tcp';
  activeRequests: number;
  session: http2.ServerHttp2Session | undefined;
  closed: Promise<void>;
}

export class WaypointListener {
  private readonly h1: http.Server;
  private readonly h2: http2.Http2Server;
  private readonly tunnels = new Map<Duplex, Tunnel>();
  private readonly sessions = new WeakMap<http2.Http2Session, Tunnel>();
  private readonly log: Logger;
  private draining = false;

  constructor(private readonly deps: ListenerDeps) {
    this.log = deps.log.child({ component: 'waypoint-listener' });
    this.h1 = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => this.onRequest(req, res));
    this.h1.keepAliveTimeout = DOWNSTREAM_IDLE_TIMEOUT_MS;
    this.h1.headersTimeout = HEADERS_TIMEOUT_MS;
    // No whole-request deadline: uploads and streams last as long as routes allow (Envoy's default).
    this.h1.requestTimeout = 0;
    this.h1.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    this.h1.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      this.log.debug({ err: err.message, code: err.code }, 'malformed HTTP/1 request');
      // Envoy's answers: 431 when the headers exceed the limit, 400 for anything else malformed.
      const status =
        err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      else socket.destroy();
    });
    this.h2 = http2.createServer({
      maxHeaderListPairs: 256,
      settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: MAX_HEADER_BYTES },
    });
    this.h2.on('stream', (stream, headers) => this.onStream(stream, headers));
    this.h2.on('session', (session) => session.on('error', () => undefined));
  }

  get tunnelCount(): number {
    return this.tunnels.size;
  }

  /**
   * Serve one inbound tunnel until it closes. `tcp` skips detection (a port declared TCP).
   * Never rejects.
   */
  async serve(stream: Duplex, ctx: InboundContext, opts: { tcp?: boolean } = {}): Promise<void> {
    if (this.draining) {
      stream.destroy();
      return;
    }
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    stream.on('error', (err: Error) =>
      this.log.debug({ connectionId: ctx.connectionId, err: err.message }, 'tunnel error'),
    );
    const t: Tunnel = { stream, ctx, kind: 'sniffing', activeRequests: 0, session: undefined, closed };
    this.tunnels.set(stream, t);
    void closed.then(() => this.tunnels.delete(stream));
    try {
      const protocol = opts.tcp ? 'tcp' : (await sniffProtocol(stream)).protocol;
      if (stream.destroyed) return await closed;
      t.kind = protocol;
      if (protocol === 'http1') this.h1.emit('connection', stream);
      else if (protocol === 'http2') this.serveHttp2(t);
      else await proxyTcp(this.deps, stream, ctx);
    } catch (err) {
      this.log.error({ connectionId: ctx.connectionId, err: errorMessage(err) }, 'tunnel failed');
      stream.destroy();
    }
    await closed;
  }

  /** Stop accepting; finish in-flight requests; resolves when every tunnel has closed. */
  async drain(): Promise<void> {
    this.draining = true;
    for (const t of this.tunnels.values()) this.drainTunnel(t);
    await Promise.all([...this.tunnels.values()].map((t) => t.closed));
  }

  forceClose(): void {
    this.draining = true;
    for (const t of this.tunnels.values()) {
      t.session?.destroy();
      t.stream.destroy();
    }
  }

  private drainTunnel(t: Tunnel): void {
    if (t.kind === 'http1' && t.activeRequests === 0) t.stream.end();
    else if (t.kind === 'http2') t.session?.close();
    else if (t.kind === 'sniffing') t.stream.destroy();
    // tcp: the copy runs until either side ends it (or the drain deadline).
  }

  private serveHttp2(t: Tunnel): void {
    let session: http2.ServerHttp2Session | undefined;
    const take = (s: http2.ServerHttp2Session): void => {
      session = s;
    };
    this.h2.once('session', take);
    this.h2.emit('connection', t.stream);
    this.h2.off('session', take);
    if (!session) {
      t.stream.destroy();
      return;
    }
    t.session = session;
    this.sessions.set(session, t);
    if (this.draining) session.close();
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const t = this.tunnels.get(req.socket);
    if (!t) {
      res.destroy();
      return;
    }
    t.activeRequests++;
    const ex = new Http1Exchange(req, res);
    if (this.draining) ex.closeConnectionAfter();
    res.once('close', () => {
      t.activeRequests--;
      if (this.draining && t.activeRequests === 0 && !t.stream.destroyed) t.stream.end();
    });
    void proxyRequest(this.deps, t.ctx, ex).catch((err: unknown) =>
      this.requestFailed(t, err, () => ex.reset()),
    );
  }

  /** node:http hands over upgrade requests (Connection: upgrade) with the raw connection. */
  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const t = this.tunnels.get(socket);
    if (!t) {
      socket.destroy();
      return;
    }
    if (buildUpgradeKind(req.headers) === 'h2c') {
      // Envoy strips an h2c upgrade and serves the request as HTTP/1.1: parse it again without.
      socket.unshift(Buffer.concat([buildPlainRequestHead(req), head]));
      this.h1.emit('connection', socket);
      return;
    }
    t.activeRequests++;
    void proxyUpgrade(this.deps, t.ctx, req, socket, head)
      .catch((err: unknown) => this.requestFailed(t, err, () => socket.destroy()))
      .finally(() => t.activeRequests--);
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const t = stream.session ? this.sessions.get(stream.session) : undefined;
    if (!t) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const ex = new Http2Exchange(stream, headers);
    void proxyRequest(this.deps, t.ctx, ex).catch((err: unknown) =>
      this.requestFailed(t, err, () => ex.reset()),
    );
  }

  private requestFailed(t: Tunnel, err: unknown, reset: () => void): void {
    this.log.error({ connectionId: t.ctx.connectionId, err: errorMessage(err) }, 'request handling failed');
    reset();
  }
}
