/**
 * The HBONE client primitives the pool is built from: dial one mTLS + HTTP/2 session to a peer's
 * 15008, and open one CONNECT stream on it. Failures are typed MeshErrors:
 * - MESH_ERR_HBONE_CONNECT_TIMEOUT: TCP connect timed out (a NetworkPolicy is the usual cause);
 * - MESH_ERR_HBONE_CONNECT: the TCP connect failed (refused, unreachable);
 * - MESH_ERR_HBONE_IDENTITY: the server's URI SANs are none of the expected identities;
 * - MESH_ERR_HBONE_TLS: any other TLS failure, including the server rejecting our certificate;
 * - MESH_ERR_HBONE_STATUS (HboneStatusError): the CONNECT was answered with a non-200 status;
 * - MESH_ERR_HBONE_SESSION: the session or stream failed before the response.
 *
 * A session is handed out only after the server's SETTINGS arrived: that proves the server
 * accepted our certificate (TLS 1.3 clients finish before the server checks theirs) and tells us
 * its max concurrent streams.
 */
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import type { Http2Config } from '../config.js';
import { MeshError, errorMessage } from '../errors.js';
import { clientTlsOptions } from '../identity/index.js';
import { TCP_KEEPALIVE_MS } from './dial.js';
import { formatAuthority } from './headers.js';
import { applyConnectionWindow, clientSettings } from './session-options.js';
import type { HboneRequestHeaders, SocketAddress, SocketConnector } from './types.js';

/** A CONNECT answered with something other than 200. */
export class HboneStatusError extends MeshError {
  readonly status: number;

  constructor(status: number, authority: string, peer: string) {
    super('MESH_ERR_HBONE_STATUS', `HBONE CONNECT ${authority} via ${peer}: http status ${status}`, {
      hint:
        status === 401
          ? 'the destination denied the connection by authorization policy'
          : status === 503
            ? 'the destination could not reach its app (unknown workload or port, or the app is down)'
            : status === 400
              ? 'the destination rejected the request (authority not its own IP?)'
              : undefined,
    });
    this.name = 'HboneStatusError';
    this.status = status;
  }
}

export interface HboneSessionDial {
  dst: SocketAddress;
  /** Local address to bind, so the server sees the real source (local mode: the pod's loopback IP). */
  sourceIp?: string;
  secureContext: tls.SecureContext;
  expectedIdentities: readonly string[];
  http2: Http2Config;
  /** Streams we may open before the server's SETTINGS say otherwise. */
  initialMaxStreams: number;
  connectTimeoutMs: number;
  tlsHandshakeTimeoutMs: number;
  /** Opens the TCP connection; net.connect when absent. */
  connectSocket?: SocketConnector;
}

export interface HboneSession {
  session: http2.ClientHttp2Session;
  /** The TLS socket under the session (Node's session.socket is a restricted proxy). */
  socket: tls.TLSSocket;
}

/** Dial TLS + HTTP/2 to `dst` and resolve once the server's SETTINGS arrived. */
export function fetchHboneSession(d: HboneSessionDial): Promise<HboneSession> {
  const addr = formatAuthority(d.dst.ip, d.dst.port);
  return new Promise((resolve, reject) => {
    let phase: 'connect' | 'tls' | 'settings' | 'done' = 'connect';
    let session: http2.ClientHttp2Session | undefined;
    let tcp: net.Socket;
    try {
      tcp = openTcp(d);
    } catch (err) {
      reject(
        new MeshError('MESH_ERR_HBONE_CONNECT', `cannot connect to ${addr}: ${errorMessage(err)}`, {
          cause: err,
          hint: 'check that the source pod can open sockets (its network namespace exists)',
        }),
      );
      return;
    }
    const socket = tls.connect({ ...clientTlsOptions(d.secureContext, d.expectedIdentities), socket: tcp });
    const fail = (err: MeshError): void => {
      if (phase === 'done') return;
      phase = 'done';
      clearTimeout(timer);
      socket.off('error', onSocketError);
      tcp.off('error', onSocketError);
      socket.on('error', ignore);
      tcp.on('error', ignore);
      if (session) {
        session.on('error', ignore);
        session.destroy();
      }
      socket.destroy();
      tcp.destroy();
      reject(err);
    };
    let timer = setTimeout(
      () =>
        fail(
          new MeshError(
            'MESH_ERR_HBONE_CONNECT_TIMEOUT',
            `timed out connecting to ${addr}; is a NetworkPolicy blocking port ${d.dst.port}?`,
            { hint: `allow TCP ${d.dst.port} (HBONE) between nodes and pods in your NetworkPolicies` },
          ),
        ),
      d.connectTimeoutMs,
    );
    const onSocketError = (err: Error & { code?: string }): void => {
      if (phase === 'connect') {
        fail(
          new MeshError('MESH_ERR_HBONE_CONNECT', `cannot connect to ${addr}: ${err.message}`, {
            cause: err,
            hint: 'check that the destination pod is running and its node is reachable',
          }),
        );
      } else if (err.code === 'ERR_MESH_IDENTITY') {
        fail(
          new MeshError('MESH_ERR_HBONE_IDENTITY', `HBONE peer ${addr}: ${err.message}`, {
            cause: err,
            hint: 'the pod at this IP is not the workload we expected (stale endpoint, or an impostor)',
          }),
        );
      } else {
        fail(tlsError(addr, phase, err));
      }
    };
    socket.on('error', onSocketError);
    tcp.on('error', onSocketError);
    tcp.once('connect', () => {
      if (phase !== 'connect') return;
      phase = 'tls';
      clearTimeout(timer);
      timer = setTimeout(
        () =>
          fail(
            new MeshError(
              'MESH_ERR_HBONE_TLS',
              `TLS with ${addr} did not complete within ${d.tlsHandshakeTimeoutMs} ms`,
              { hint: 'is the peer an HBONE listener (port 15008)?' },
            ),
          ),
        d.tlsHandshakeTimeoutMs,
      );
    });
    socket.once('secureConnect', () => {
      if (phase !== 'tls') return;
      if (socket.alpnProtocol !== 'h2') {
        fail(new MeshError('MESH_ERR_HBONE_TLS', `HBONE peer ${addr} did not negotiate ALPN h2`));
        return;
      }
      phase = 'settings';
      const s = http2.connect(`https://${addr}`, {
        createConnection: () => socket,
        settings: clientSettings(d.http2),
        maxSessionMemory: d.http2.maxSessionMemoryMb,
        peerMaxConcurrentStreams: d.initialMaxStreams,
      });
      session = s;
      s.on('error', (err: Error) => fail(tlsError(addr, 'settings', err)));
      s.once('close', () =>
        fail(
          new MeshError('MESH_ERR_HBONE_TLS', `HBONE peer ${addr} closed the connection after TLS`, {
            hint: 'the peer rejected our certificate (another trust domain or mesh root?)',
          }),
        ),
      );
      try {
        applyConnectionWindow(s, d.http2);
      } catch (err) {
        fail(
          new MeshError('MESH_ERR_HBONE_SESSION', `HTTP/2 with ${addr}: ${errorMessage(err)}`, {
            cause: err,
          }),
        );
        return;
      }
      s.once('remoteSettings', () => {
        if (phase !== 'settings') return;
        phase = 'done';
        clearTimeout(timer);
        s.removeAllListeners('error');
        s.removeAllListeners('close');
        // Until the pool attaches its own listeners, an error must not go unhandled.
        s.on('error', ignore);
        socket.off('error', onSocketError);
        tcp.off('error', onSocketError);
        tcp.on('error', ignore);
        resolve({ session: s, socket });
      });
    });
  });
}

function openTcp(d: HboneSessionDial): net.Socket {
  if (!d.connectSocket) {
    return net.connect({
      host: d.dst.ip,
      port: d.dst.port,
      localAddress: d.sourceIp,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: TCP_KEEPALIVE_MS,
    });
  }
  const tcp = d.connectSocket({
    host: d.dst.ip,
    port: d.dst.port,
    ...(d.sourceIp !== undefined ? { localAddress: d.sourceIp } : {}),
  });
  tcp.setNoDelay(true);
  tcp.setKeepAlive(true, TCP_KEEPALIVE_MS);
  // TLS and HTTP/2 need the socket to close when the peer's FIN arrives: on a half-open socket
  // the session never learns that its peer is gone (CLOSE-WAIT, streams waiting forever).
  tcp.allowHalfOpen = false;
  return tcp;
}

function tlsError(addr: string, phase: string, err: Error): MeshError {
  const what = phase === 'settings' ? 'after the TLS handshake (did it reject our certificate?)' : 'in TLS';
  return new MeshError('MESH_ERR_HBONE_TLS', `HBONE peer ${addr} failed ${what}: ${err.message}`, {
    cause: err,
    hint: 'check that both sides trust the same mesh root and the peer is an HBONE listener',
  });
}

/**
 * Open a CONNECT stream for `authority`; resolves once the server answered 200. `onOpen` runs
 * synchronously on the 200, before anything else can observe the stream: a 'close' or 'error'
 * that follows in the same read must not slip past listeners attached after the await.
 */
export function openConnectStream(
  session: http2.ClientHttp2Session,
  authority: string,
  headers: HboneRequestHeaders,
  peer: string,
  onOpen: (stream: http2.ClientHttp2Stream) => void,
): Promise<http2.ClientHttp2Stream> {
  return new Promise((resolve, reject) => {
    const h: http2.OutgoingHttpHeaders = { ':method': 'CONNECT', ':authority': authority };
    if (headers.forwarded !== undefined) h.forwarded = headers.forwarded;
    if (headers.traceparent !== undefined) h.traceparent = headers.traceparent;
    if (headers.baggage !== undefined) h.baggage = headers.baggage;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(h, { endStream: false });
    } catch (err) {
      reject(sessionError(authority, peer, err));
      return;
    }
    let settled = false;
    const onError = (err: Error): void => {
      if (settled) return;
      settled = true;
      reject(sessionError(authority, peer, err));
    };
    const onClose = (): void =>
      onError(new Error(`stream closed before a response (code ${stream.rstCode})`));
    stream.on('error', onError);
    stream.once('close', onClose);
    stream.once('response', (res) => {
      if (settled) return;
      settled = true;
      const status = Number(res[':status']);
      if (status !== 200) {
        // Close our side gracefully rather than with RST_STREAM (servers rate-limit received
        // resets); the error response ended theirs. onError stays attached (settled).
        stream.resume();
        stream.end();
        reject(new HboneStatusError(status, authority, peer));
        return;
      }
      // Nothing of this request stays attached to a long-lived tunnel; the caller listens now.
      stream.off('error', onError);
      stream.off('close', onClose);
      onOpen(stream);
      resolve(stream);
    });
  });
}

function sessionError(authority: string, peer: string, err: unknown): MeshError {
  const e = new MeshError(
    'MESH_ERR_HBONE_SESSION',
    `HBONE CONNECT ${authority} via ${peer} failed: ${errorMessage(err)}`,
    {
      cause: err,
    },
  );
  return e;
}

/** A stream the server refused before processing (GOAWAY race): safe to retry on a new session. */
export function isRefusedStream(err: unknown): boolean {
  if (!(err instanceof MeshError) || err.code !== 'MESH_ERR_HBONE_SESSION') return false;
  const cause = err.cause as (Error & { code?: string }) | undefined;
  return (
    cause?.code === 'ERR_HTTP2_GOAWAY_SESSION' ||
    cause?.code === 'ERR_HTTP2_INVALID_SESSION' ||
    (cause?.code === 'ERR_HTTP2_STREAM_ERROR' && /REFUSED_STREAM/.test(cause.message))
  );
}

function ignore(): void {}
