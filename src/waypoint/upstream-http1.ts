/**
 * HTTP/1.1 to one upstream endpoint, with keep-alive connection reuse: a node:http Agent whose
 * connections come from the injected connector (an HBONE tunnel per connection in the daemon).
 *
 * Invariants:
 * - at most `maxConnections` connections to the endpoint at once; requests beyond that wait in
 *   the agent's queue;
 * - a connection is reused only after its previous response ended cleanly; an aborted attempt
 *   destroys its connection;
 * - an idle pooled connection is closed after `idleTimeoutMs`;
 * - every attempt's result settles exactly once.
 */
import http from 'node:http';
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
import { errorText, UpstreamConnectError } from './upstream-types.js';
import { asSocketLike, type SocketLike } from './socket-like.js';

class TunnelAgent extends http.Agent {
  /** Set by close(): connections are no longer pooled once their request ends. */
  closing = false;

  constructor(
    private readonly open: () => Promise<Duplex>,
    private readonly idleTimeoutMs: number,
    opts: http.AgentOptions,
  ) {
    super(opts);
  }

  override createConnection(
    _options: http.ClientRequestArgs,
    cb?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    this.open().then(
      (stream) => cb?.(null, asSocketLike(stream)),
      (err: unknown) =>
        cb?.(err instanceof Error ? err : new UpstreamConnectError(errorText(err)), undefined as never),
    );
    return undefined;
  }

  override keepSocketAlive(socket: Duplex): boolean {
    if (this.closing) return false;
    super.keepSocketAlive(socket);
    (socket as SocketLike).setTimeout?.(this.idleTimeoutMs);
    return true;
  }

  override reuseSocket(socket: Duplex, req: http.ClientRequest): void {
    super.reuseSocket(socket, req);
    (socket as SocketLike).setTimeout?.(0);
  }
}

function classify(err: Error & { code?: string }, req: http.ClientRequest): UpstreamFailure {
  if (err instanceof UpstreamConnectError || err.code === 'MESH_UPSTREAM_CONNECT') return 'connect-failure';
  // A kept-alive connection the server closed while idle: the request never reached it.
  if (req.reusedSocket) return 'reset-before-request';
  return 'reset';
}

class Http1Response implements UpstreamResponse {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly grpcStatus: number | undefined;
  readonly endStream = false;

  constructor(
    private readonly req: http.ClientRequest,
    private readonly res: http.IncomingMessage,
  ) {
    this.status = res.statusCode ?? 502;
    this.headers = buildForwardHeaders(res.headers);
    const g = res.headers['grpc-status'];
    this.grpcStatus = typeof g === 'string' && /^\d+$/.test(g) ? Number(g) : undefined;
  }

  get body(): http.IncomingMessage {
    return this.res;
  }

  trailers(): HeaderMap | undefined {
    const t = this.res.trailers;
    return Object.keys(t).length === 0 ? undefined : { ...t };
  }

  abort(): void {
    this.req.destroy();
  }

  discard(): void {
    this.res.resume();
  }
}

export class Http1Upstream implements UpstreamTransport {
  private readonly agent: TunnelAgent;

  constructor(open: () => Promise<Duplex>, limits: UpstreamLimits) {
    const max = Number.isFinite(limits.maxConnections) ? Math.max(1, limits.maxConnections) : Infinity;
    this.agent = new TunnelAgent(open, limits.idleTimeoutMs, {
      keepAlive: limits.maxRequestsPerConnection !== 1,
      maxSockets: max,
    });
  }

  send(spec: UpstreamRequestSpec, body: RequestBody): Attempt {
    let settled = false;
    let resolve!: (r: AttemptResult) => void;
    const result = new Promise<AttemptResult>((r) => (resolve = r));
    const settle = (r: AttemptResult): boolean => {
      if (settled) return false;
      settled = true;
      resolve(r);
      return true;
    };
    const req = http.request({
      agent: this.agent,
      // The agent has one endpoint; the address here only names the agent's connection group.
      host: 'upstream',
      port: 80,
      method: spec.method,
      path: spec.path,
      headers: { ...toOutgoing(spec.headers), host: spec.host },
      setHost: false,
    });
    req.on('response', (res) => {
      if (!settle({ ok: true, response: new Http1Response(req, res) })) res.resume();
    });
    req.on('error', (err: Error & { code?: string }) => {
      body.detach();
      settle({ ok: false, failure: classify(err, req), detail: err.message });
    });
    body.attach(req);
    return {
      result,
      abort: (failure, detail) => {
        body.detach();
        if (settle({ ok: false, failure, detail })) req.destroy();
      },
    };
  }

  close(): void {
    // Pooled idle connections close now; busy ones close when their request ends.
    this.agent.closing = true;
    for (const list of Object.values(this.agent.freeSockets)) for (const s of list ?? []) s.destroy();
  }

  destroy(): void {
    this.agent.destroy();
  }
}
