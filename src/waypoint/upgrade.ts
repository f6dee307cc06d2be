/**
 * HTTP/1.1 Upgrade through the waypoint, as Istio configures Envoy's HTTP connection manager:
 * - `Upgrade: websocket` is proxied: the request goes through the same plan as any request
 *   (authorization, route, fault, filters, weighted backend), then to a least-request endpoint
 *   over a new HBONE tunnel; on 101 the two connections are joined byte for byte until either
 *   side closes, and any other answer is relayed as a normal response;
 * - `Upgrade: h2c` is stripped and the request served as plain HTTP/1.1 (Envoy's HTTP/1 codec
 *   does the same);
 * - any other upgrade protocol is refused with 403 (Envoy's `upgrade_failed`).
 *
 * Invariants:
 * - one access-log line and one istio_requests_total sample per upgrade request, written when
 *   the upgraded connection ends (response code 101) or when the request was answered otherwise;
 * - the cluster's request slot and the endpoint's active count are held for the life of the
 *   upgraded connection (Envoy counts it as an active request) and released exactly once;
 * - there are no retries: an upgrade request is not replayed.
 */
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { chooseBackendEndpoint, findBackendCluster } from './backend-endpoints.js';
import { buildForwardHeaders, Http1Exchange, toOutgoing } from './downstream.js';
import { applyHeaderModifier } from './filters.js';
import type { HeaderMap } from './http-types.js';
import type { PassthroughDeps } from './passthrough.js';
import type { ForwardPlan, InboundContext, Outcome, ProxyDeps } from './proxy.js';
import { local, reply, runRequest, withForwardedProto } from './proxy.js';
import { buildLocalReply } from './response.js';
import type { UpstreamFailure } from './retry-policy.js';
import { asSocketLike } from './socket-like.js';
import type { WaypointView } from './view.js';

export type UpgradeDeps = ProxyDeps & Pick<PassthroughDeps, 'copy'>;

function tokens(v: string | string[] | undefined): string[] {
  return (Array.isArray(v) ? v.join(',') : (v ?? ''))
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
}

/** What the client asks to upgrade to. */
export function buildUpgradeKind(headers: http.IncomingHttpHeaders): 'websocket' | 'h2c' | 'other' {
  const asked = tokens(headers.upgrade);
  if (asked.includes('websocket')) return 'websocket';
  return asked.length > 0 && asked.every((t) => t === 'h2c') ? 'h2c' : 'other';
}

/**
 * The request head again, without the h2c upgrade (Upgrade, HTTP2-Settings, and their tokens in
 * Connection), so that an HTTP/1.1 parser serves it as a plain request.
 */
export function buildPlainRequestHead(req: http.IncomingMessage): Buffer {
  const drop = new Set(['upgrade', 'http2-settings']);
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] ?? '';
    const value = req.rawHeaders[i + 1] ?? '';
    const lower = name.toLowerCase();
    if (drop.has(lower)) continue;
    if (lower === 'connection') {
      const kept = tokens(value).filter((t) => !drop.has(t));
      if (kept.length > 0) lines.push(`${name}: ${kept.join(', ')}`);
      continue;
    }
    lines.push(`${name}: ${value}`);
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** Serve one upgrade request that arrived on `socket` (after node:http parsed its head). */
export async function proxyUpgrade(
  deps: UpgradeDeps,
  conn: InboundContext,
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  // A response object on the raw socket, so that local replies use the ordinary exchange.
  const res = new http.ServerResponse(req);
  res.assignSocket(socket as net.Socket);
  res.shouldKeepAlive = false;
  res.once('finish', () => socket.end());
  const ex = new Http1Exchange(req, res);
  const websocket = buildUpgradeKind(req.headers) === 'websocket';
  let bytesReceived = 0;
  await runRequest(deps, conn, ex, {
    forward: async (view, plan) => {
      if (!websocket)
        return reply(ex, buildLocalReply({ kind: 'upgrade-failed' }), { flags: plan.responseFlags });
      const r = await forwardUpgrade(deps, view, plan, ex, req, socket, head);
      bytesReceived = r.bytesReceived;
      return r.outcome;
    },
    skipBody: () => undefined,
    bytesReceived: () => bytesReceived,
  });
}

async function forwardUpgrade(
  deps: UpgradeDeps,
  view: WaypointView,
  plan: ForwardPlan,
  ex: Http1Exchange,
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<{ outcome: Outcome; bytesReceived: number }> {
  const flags = [...plan.responseFlags];
  const answered = (o: Outcome) => ({ outcome: o, bytesReceived: 0 });
  const backend = findBackendCluster(deps.clusters, view, plan.backend);
  const { cluster } = backend;
  const slot = cluster.circuitBreaker.tryAcquire('request');
  if (!slot.ok) return answered(reply(ex, buildLocalReply({ kind: 'overflow' }), { flags }));
  try {
    const endpoint = chooseBackendEndpoint(backend);
    if (!endpoint) return answered(reply(ex, buildLocalReply({ kind: 'no-healthy-upstream' }), { flags }));
    const done = cluster.startRequest(endpoint.key);
    try {
      const failed = (failure: UpstreamFailure) => {
        cluster.recordOutcome(endpoint.key, { kind: 'failure', failure });
        const r =
          failure === 'timeout'
            ? buildLocalReply({ kind: 'request-timeout' })
            : buildLocalReply({ kind: 'upstream-failure', failure, retryLimitExceeded: false });
        return answered(reply(ex, r, { flags, upstream: endpoint, attempts: 1 }));
      };
      let up: Duplex;
      try {
        up = await deps.connections.open(endpoint, cluster.policy);
      } catch {
        return failed('connect-failure');
      }
      const answer = await sendUpgradeRequest(up, plan, ex, String(req.headers.upgrade));
      if (ex.aborted) {
        up.destroy();
        return answered({
          ...local(0, [...flags, 'DC'], 'downstream_remote_disconnect'),
          upstream: endpoint,
        });
      }
      if (answer.kind === 'failure') return failed(answer.failure);
      cluster.recordOutcome(endpoint.key, { kind: 'response', status: answer.res.statusCode ?? 0 });
      if (answer.kind === 'response') {
        const sent = await relayResponse(ex, answer.res, plan);
        return answered({ ...sent, flags, upstream: endpoint, attempts: 1 });
      }
      // 101: join the two connections.
      const responseHead = rawHead(answer.res, {
        ...buildResponseHeaders(answer.res, plan),
        connection: 'Upgrade',
        upgrade: answer.res.headers.upgrade,
      });
      socket.write(responseHead);
      if (answer.head.length > 0) socket.write(answer.head);
      if (head.length > 0) answer.socket.write(head);
      const copied = await deps.copy(socket, answer.socket);
      return {
        outcome: {
          status: 101,
          grpcStatus: undefined,
          flags,
          details: 'via_upstream',
          bytesSent: copied.bytesDown + answer.head.length,
          upstream: endpoint,
          attempts: 1,
        },
        bytesReceived: copied.bytesUp + head.length,
      };
    } finally {
      done();
    }
  } finally {
    slot.release();
  }
}

type UpgradeAnswer =
  | { kind: 'upgraded'; res: http.IncomingMessage; socket: Duplex; head: Buffer }
  | { kind: 'response'; res: http.IncomingMessage }
  | { kind: 'failure'; failure: UpstreamFailure };

/**
 * Send the upgrade request on `up` and wait for the answer's head, at most the route timeout, and
 * no longer than the client stays.
 */
function sendUpgradeRequest(
  up: Duplex,
  plan: ForwardPlan,
  ex: Http1Exchange,
  upgrade: string,
): Promise<UpgradeAnswer> {
  const timeoutMs = plan.timeouts.requestMs;
  return new Promise((resolve) => {
    const r = plan.upstreamRequest;
    const creq = http.request({
      method: r.method,
      path: r.path,
      headers: {
        ...toOutgoing(withForwardedProto(r.headers)),
        host: r.host,
        connection: 'Upgrade',
        upgrade,
      },
      createConnection: (() => asSocketLike(up)) as unknown as http.RequestOptions['createConnection'],
    });
    let settled = false;
    const settle = (a: UpgradeAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(a);
    };
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            settle({ kind: 'failure', failure: 'timeout' });
            creq.destroy();
          }, timeoutMs);
    creq.on('upgrade', (res: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      settle({ kind: 'upgraded', res, socket, head }),
    );
    creq.on('response', (res: http.IncomingMessage) => settle({ kind: 'response', res }));
    creq.on('error', () => settle({ kind: 'failure', failure: 'reset' }));
    ex.onClose(() => {
      if (!ex.aborted) return;
      settle({ kind: 'failure', failure: 'reset' });
      creq.destroy();
    });
    creq.end();
  });
}

/** The backend declined the upgrade: relay its answer as a normal response, then close. */
function relayResponse(
  ex: Http1Exchange,
  res: http.IncomingMessage,
  plan: ForwardPlan,
): Promise<Pick<Outcome, 'status' | 'grpcStatus' | 'details' | 'bytesSent'>> {
  const status = res.statusCode ?? 502;
  ex.respond(status, buildResponseHeaders(res, plan), false);
  let bytes = 0;
  return new Promise((resolve) => {
    const finish = (details: string) => resolve({ status, grpcStatus: undefined, details, bytesSent: bytes });
    res.on('data', (c: Buffer) => {
      bytes += c.length;
      ex.sink.write(c);
    });
    res.once('end', () => {
      ex.end();
      finish('via_upstream');
    });
    res.once('error', () => {
      ex.reset();
      finish('upstream_reset_after_response_started');
    });
  });
}

/** The backend's response headers as the client gets them: hop-by-hop removed, route modifiers applied. */
function buildResponseHeaders(res: http.IncomingMessage, plan: ForwardPlan): HeaderMap {
  let headers = buildForwardHeaders(res.headers);
  for (const m of plan.responseHeaderModifiers) headers = applyHeaderModifier(headers, m);
  return headers;
}

function rawHead(res: http.IncomingMessage, headers: HeaderMap): string {
  const lines = [`HTTP/1.1 ${res.statusCode ?? 101} ${res.statusMessage || 'Switching Protocols'}`];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of typeof value === 'string' ? [value] : value) lines.push(`${name}: ${v}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}
