/**
 * HTTP/2 (prior knowledge, h2c inside the tunnel) to one upstream endpoint, for HTTP/2 clients
 * such as gRPC: one session per endpoint, shared by every request, over a connection from the
 * injected connector.
 *
 * Invariants:
 * - at most one session per endpoint is being opened or in use; a session that closed, failed or
 *   received GOAWAY is dropped and the next request opens a new one;
 * - a stream the server refused (REFUSED_STREAM, or above a GOAWAY's last stream id) fails as
 *   `refused-stream`, which is always safe to retry;
 * - an idle session (no frames for `idleTimeoutMs`) is closed gracefully;
 * - every attempt's result settles exactly once.
 */
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { buildForwardHeaders, toOutgoing } from './downstream.js';
import type { HeaderMap } from './http-types.js';
import type { RequestBody } from './request-body.js';
import type { UpstreamFailure } from './retry-policy.js';
import type {
  Attempt,
  AttemptResult,
  UpstreamLimits,
  UpstreamRequestSpec,
  UpstreamResponse,
  UpstreamTransport,
} from './upstream-types.js';
import { errorText } from './upstream-types.js';

/**
 * Flow-control windows towards the backend: 1 MiB per stream and 4 MiB per session. Node's 64 KiB
 * default throttles bulk gRPC streams; a waypoint buffers what it accepts, so it stays well
 * below HBONE's 4/16 MiB.
 */
const STREAM_WINDOW = 1024 * 1024;
const SESSION_WINDOW = 4 * 1024 * 1024;

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL } = http2.constants;

function isRefused(err: Error & { code?: string }, stream: http2.ClientHttp2Stream | undefined): boolean {
  if (stream?.rstCode === NGHTTP2_REFUSED_STREAM) return true;
  if (err.code === 'ERR_HTTP2_GOAWAY_SESSION' || err.code === 'ERR_HTTP2_INVALID_SESSION') return true;
  return err.code === 'ERR_HTTP2_STREAM_ERROR' && /REFUSED_STREAM/.test(err.message);
}

class Http2Response implements UpstreamResponse {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly grpcStatus: number | undefined;

  constructor(
    private readonly stream: http2.ClientHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    readonly endStream: boolean,
    private readonly getTrailers: () => HeaderMap | undefined,
  ) {
    this.status = Number(headers[':status'] ?? 502);
    this.headers = buildForwardHeaders(headers);
    const g = headers['grpc-status'];
    this.grpcStatus = typeof g === 'string' && /^\d+$/.test(g) ? Number(g) : undefined;
  }

  get body(): http2.ClientHttp2Stream {
    return this.stream;
  }

  trailers(): HeaderMap | undefined {
    return this.getTrailers();
  }

  abort(): void {
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  discard(): void {
    this.abort();
  }
}

export class Http2Upstream implements UpstreamTransport {
  private session: Promise<http2.ClientHttp2Session> | undefined;
  private readonly live = new Set<http2.ClientHttp2Session>();
  private closing = false;

  constructor(
    private readonly open: () => Promise<Duplex>,
    private readonly limits: UpstreamLimits,
  ) {}

  send(spec: UpstreamRequestSpec, body: RequestBody): Attempt {
    let settled = false;
    let stream: http2.ClientHttp2Stream | undefined;
    let resolve!: (r: AttemptResult) => void;
    const result = new Promise<AttemptResult>((r) => (resolve = r));
    const settle = (r: AttemptResult): boolean => {
      if (settled) return false;
      settled = true;
      resolve(r);
      return true;
    };
    const fail = (failure: UpstreamFailure, detail: string): void => {
      body.detach();
      settle({ ok: false, failure, detail });
    };
    this.fetchSession().then(
      (session) => {
        if (settled) return;
        let st: http2.ClientHttp2Stream;
        try {
          st = session.request(
            {
              ...toOutgoing(spec.headers),
              ':method': spec.method,
              ':path': spec.path,
              ':authority': spec.host,
              ':scheme': 'http',
            },
            { endStream: false },
          );
        } catch (err) {
          const e = err as Error & { code?: string };
          fail(isRefused(e, undefined) || session.closed ? 'refused-stream' : 'reset', e.message);
          return;
        }
        stream = st;
        let trailers: HeaderMap | undefined;
        st.once('trailers', (t: http2.IncomingHttpHeaders) => (trailers = buildForwardHeaders(t, true)));
        st.on('error', (err: Error & { code?: string }) =>
          fail(isRefused(err, st) ? 'refused-stream' : 'reset', err.message),
        );
        st.once('close', () =>
          fail(
            st.rstCode === NGHTTP2_REFUSED_STREAM ? 'refused-stream' : 'reset',
            `stream closed before response headers (code ${st.rstCode})`,
          ),
        );
        st.once('response', (headers, flags) => {
          const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
          if (!settle({ ok: true, response: new Http2Response(st, headers, endStream, () => trailers) }))
            st.close(NGHTTP2_CANCEL);
        });
        body.attach(st);
      },
      (err: unknown) => fail('connect-failure', errorText(err)),
    );
    return {
      result,
      abort: (failure, detail) => {
        fail(failure, detail);
        if (stream && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
      },
    };
  }

  close(): void {
    this.closing = true;
    this.session = undefined;
    for (const s of this.live) s.close();
  }

  destroy(): void {
    this.closing = true;
    this.session = undefined;
    for (const s of this.live) s.destroy();
  }

  private fetchSession(): Promise<http2.ClientHttp2Session> {
    if (this.closing) return Promise.reject(new Error('upstream is closing'));
    const current = this.session;
    if (current) return current;
    const p = this.open().then((socket) => {
      const s = http2.connect('http://upstream', {
        createConnection: () => socket,
        settings: { enablePush: false, initialWindowSize: STREAM_WINDOW },
      });
      this.live.add(s);
      s.on('error', () => undefined);
      s.once('connect', () => s.setLocalWindowSize(SESSION_WINDOW));
      const drop = (): void => {
        if (this.session === p) this.session = undefined;
      };
      s.once('goaway', drop);
      s.once('close', () => {
        drop();
        this.live.delete(s);
      });
      s.setTimeout(this.limits.idleTimeoutMs, () => s.close());
      if (this.closing) s.close();
      return s;
    });
    p.catch(() => {
      if (this.session === p) this.session = undefined;
    });
    this.session = p;
    return p;
  }
}
