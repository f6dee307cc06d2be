/**
 * Downstream exchanges: one client request and its response, over HTTP/1.1 (node:http
 * IncomingMessage/ServerResponse) or HTTP/2 (a node:http2 server stream), behind one interface
 * so that the proxy loop does not care which. Bodies stream both ways; nothing is buffered whole.
 *
 * Invariants:
 * - `headers` are lower-case, without pseudo-headers and without hop-by-hop headers;
 * - the response is started at most once (`respond`), and ends exactly once: by `end` (with
 *   trailers when the protocol can carry them) or by `reset`;
 * - `onClose` callbacks run once, when the exchange ended either way or the client went away.
 */
import http2 from 'node:http2';
import type http from 'node:http';
import type { Readable, Writable } from 'node:stream';
import type { HeaderMap } from './http-types.js';

export type DownstreamProtocol = 'http1' | 'http2';

export interface DownstreamExchange {
  readonly protocol: DownstreamProtocol;
  readonly method: string;
  /** Origin-form target with query. */
  readonly target: string;
  readonly authority: string;
  readonly headers: HeaderMap;
  readonly body: Readable;
  readonly responseStarted: boolean;
  /** The client went away (or the exchange was reset) before the response ended. */
  readonly aborted: boolean;
  /** Start the response. With endStream the response has no body. */
  respond(status: number, headers: HeaderMap, endStream: boolean): void;
  /** The response body sink, valid after respond() without endStream. */
  readonly sink: Writable;
  /** End the response body, with trailers when the protocol carries them. */
  end(trailers?: HeaderMap): void;
  /** Abort: HTTP/1 closes the connection, HTTP/2 resets the stream. */
  reset(): void;
  onClose(cb: () => void): void;
  /** The exchange asks that its connection close after this response (drain). */
  closeConnectionAfter(): void;
}

/** Hop-by-hop and connection-specific headers: never forwarded (RFC 9110 7.6.1, RFC 9113 8.2.2). */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'http2-settings',
  'host',
  'expect',
]);

/** Headers of a message as a HeaderMap: hop-by-hop removed (and anything `connection` names). */
export function buildForwardHeaders(
  headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders,
  keepTeTrailers = false,
): HeaderMap {
  const out: HeaderMap = {};
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || k.startsWith(':') || HOP_BY_HOP.has(k) || named.has(k)) continue;
    out[k] = typeof v === 'number' ? String(v) : v;
  }
  // gRPC needs `te: trailers` end to end (it is the one te value HTTP/2 allows).
  if (keepTeTrailers && String(headers.te ?? '').toLowerCase() === 'trailers') out.te = 'trailers';
  return out;
}

/** A HeaderMap as node:http/http2 outgoing headers (drops undefined values). */
export function toOutgoing(headers: HeaderMap): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    out[k] = typeof v === 'string' ? v : [...v];
  }
  return out;
}

export class Http1Exchange implements DownstreamExchange {
  readonly protocol = 'http1';
  readonly method: string;
  readonly target: string;
  readonly authority: string;
  readonly headers: HeaderMap;
  private started = false;
  private closed = false;
  private finished = false;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
  ) {
    this.method = req.method ?? 'GET';
    this.target = req.url ?? '/';
    this.authority = req.headers.host ?? '';
    this.headers = buildForwardHeaders(req.headers);
    res.once('finish', () => (this.finished = true));
    res.once('close', () => (this.closed = true));
  }

  get body(): Readable {
    return this.req;
  }

  get sink(): Writable {
    return this.res;
  }

  get responseStarted(): boolean {
    return this.started;
  }

  get aborted(): boolean {
    return this.closed && !this.finished;
  }

  respond(status: number, headers: HeaderMap, endStream: boolean): void {
    this.started = true;
    if (this.closed) return;
    this.res.writeHead(status, toOutgoing(headers));
    if (endStream) this.res.end();
  }

  end(trailers?: HeaderMap): void {
    if (this.closed) return;
    if (trailers && Object.keys(trailers).length > 0 && !this.res.hasHeader('content-length')) {
      this.res.addTrailers(toOutgoing(trailers));
    }
    this.res.end();
  }

  reset(): void {
    this.res.destroy();
    this.req.socket.destroy();
  }

  onClose(cb: () => void): void {
    if (this.closed) cb();
    else this.res.once('close', cb);
  }

  closeConnectionAfter(): void {
    this.res.shouldKeepAlive = false;
  }
}

export class Http2Exchange implements DownstreamExchange {
  readonly protocol = 'http2';
  readonly method: string;
  readonly target: string;
  readonly authority: string;
  readonly headers: HeaderMap;
  private started = false;
  private ended = false;
  private trailers: HeaderMap | undefined;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
  ) {
    this.method = String(headers[':method'] ?? 'GET');
    this.target = String(headers[':path'] ?? '/');
    this.authority = String(headers[':authority'] ?? headers.host ?? '');
    this.headers = buildForwardHeaders(headers, true);
    // A client reset must not surface as an unhandled error.
    stream.on('error', () => undefined);
    stream.once('wantTrailers', () => {
      const t = this.trailers;
      if (t && Object.keys(t).length > 0) stream.sendTrailers(toOutgoing(t));
      else stream.close();
    });
  }

  get body(): Readable {
    return this.stream;
  }

  get sink(): Writable {
    return this.stream;
  }

  get responseStarted(): boolean {
    return this.started;
  }

  get aborted(): boolean {
    return (this.stream.destroyed || this.stream.closed) && !this.ended;
  }

  respond(status: number, headers: HeaderMap, endStream: boolean): void {
    this.started = true;
    if (this.stream.destroyed || this.stream.closed) return;
    const out: http2.OutgoingHttpHeaders = { ...toOutgoing(headers), ':status': status };
    this.stream.respond(out, endStream ? { endStream: true } : { waitForTrailers: true });
    if (endStream) this.ended = true;
  }

  end(trailers?: HeaderMap): void {
    this.ended = true;
    this.trailers = trailers;
    if (this.stream.destroyed || this.stream.closed) return;
    this.stream.end();
  }

  reset(): void {
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  }

  onClose(cb: () => void): void {
    if (this.stream.destroyed) cb();
    else this.stream.once('close', cb);
  }

  closeConnectionAfter(): void {
    // The listener sends GOAWAY on the session; nothing to do per stream.
  }
}
