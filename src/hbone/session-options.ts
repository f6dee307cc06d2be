/**
 * HTTP/2 settings and keepalive shared by the HBONE server and client, as DESIGN fixes them:
 * stream window 4 MiB, connection window 16 MiB (set with setLocalWindowSize, since Node's
 * `initialWindowSize` is the stream window only), max frame 1 MiB, push off, the server
 * advertises 200 concurrent streams, max header list 64 KiB (server) / 16 KiB (client),
 * maxSessionMemory raised so that busy sessions do not get ENHANCE_YOUR_CALM.
 *
 * Keepalive invariant: at most one PING is outstanding per session; the first goes out one
 * interval after start, the next one interval after each answer; a PING unanswered for the
 * timeout destroys the session.
 */
import type http2 from 'node:http2';
import type net from 'node:net';
import { MeshError } from '../errors.js';
import type { Http2Config } from '../config.js';

/** SETTINGS_MAX_HEADER_LIST_SIZE: 64 KiB on the server, 16 KiB on the client, as ztunnel. */
export const SERVER_MAX_HEADER_LIST = 64 * 1024;
export const CLIENT_MAX_HEADER_LIST = 16 * 1024;

export function serverSettings(h: Http2Config): http2.Settings {
  return {
    initialWindowSize: h.streamWindow,
    maxFrameSize: h.maxFrameSize,
    maxConcurrentStreams: h.maxConcurrentStreams,
    maxHeaderListSize: SERVER_MAX_HEADER_LIST,
    enablePush: false,
  };
}

export function clientSettings(h: Http2Config): http2.Settings {
  return {
    initialWindowSize: h.streamWindow,
    maxFrameSize: h.maxFrameSize,
    maxHeaderListSize: CLIENT_MAX_HEADER_LIST,
    enablePush: false,
  };
}

/** Raise the connection-level receive window; call once the session has its socket. */
export function applyConnectionWindow(session: http2.Http2Session, h: Http2Config): void {
  session.setLocalWindowSize(h.connectionWindow);
}

export class Keepalive {
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Set when the keepalive killed the session. */
  failure: string | undefined;

  constructor(
    private readonly session: http2.Http2Session,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
  ) {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(this.ping, this.intervalMs);
    this.timer.unref();
  }

  private readonly ping = (): void => {
    const s = this.session;
    if (this.stopped || s.destroyed) return;
    this.deadline = setTimeout(this.expire, this.timeoutMs);
    this.deadline.unref();
    try {
      s.ping((err) => {
        clearTimeout(this.deadline);
        if (!err) this.schedule();
      });
    } catch {
      // The session is going away; its 'close' stops us.
      clearTimeout(this.deadline);
    }
  };

  private readonly expire = (): void => {
    if (this.stopped || this.session.destroyed) return;
    this.stop();
    this.failure = `HBONE peer did not answer a PING within ${this.timeoutMs} ms`;
    this.session.destroy(
      new MeshError('MESH_ERR_HBONE_SESSION', this.failure, {
        hint: 'the peer or the path to it is dead; the connection was dropped and will be re-dialed',
      }),
    );
  };
}

/**
 * Call `onGone` exactly once when the session or its socket is gone. Node's http2 can leave a
 * session destroyed but never 'close'd when its TLS socket errors (the socket stays open in an
 * error state), so a socket error destroys the socket and either event counts.
 */
export function watchSession(session: http2.Http2Session, socket: net.Socket, onGone: () => void): void {
  let gone = false;
  const done = (): void => {
    if (gone) return;
    gone = true;
    onGone();
  };
  session.once('close', done);
  socket.once('close', () => {
    // The socket is gone but the session may not know it: destroy it, so that every stream on
    // it closes and the copies using them finish (otherwise they wait forever).
    if (!session.destroyed) session.destroy();
    done();
  });
  socket.on('error', () => socket.destroy());
}
