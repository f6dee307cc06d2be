/**
 * The SOCKS5 entry (port 15080): an application's explicit way into the mesh when its traffic is
 * not captured. The handshake is parsed with the sans-I/O codec; the CONNECT target becomes the
 * original destination of the ordinary outbound path. Unlike Istio's ztunnel, which answers
 * "succeeded" before dialing, the reply here is sent once the upstream is open, so the client
 * gets the RFC 1928 code for what actually happened (refused, not allowed, host unreachable).
 *
 * Invariants: at most 1 KiB is buffered before the request is complete (a greeting plus the
 * longest request is 4 + 1 + 255 + 2 + 257 bytes); a client that does not finish the handshake
 * within the timeout is closed; bytes after the request are handed to the outbound copy intact.
 */
import type net from 'node:net';
import {
  METHOD_NONE_ACCEPTABLE,
  METHOD_NO_AUTH,
  Reply,
  encodeMethodSelection,
  encodeReply,
  parseGreeting,
  parseRequest,
  type ReplyCode,
  type Socks5Target,
} from './socks5.js';

const MAX_HANDSHAKE_BYTES = 1024;
/** A client that has not sent a complete request by then is closed. */
export const SOCKS5_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface Socks5Session {
  /** Send the success reply; the caller then copies bytes. */
  succeed(bind?: { ip: string; port: number }): void;
  /** Send a failure reply and close. */
  fail(code: ReplyCode): void;
}

export type Socks5ConnectHandler = (socket: net.Socket, target: Socks5Target, session: Socks5Session) => void;

/** Run the SOCKS5 handshake on an accepted socket, then hand the target to `onConnect`. */
export function proxyToSocks5(
  socket: net.Socket,
  onConnect: Socks5ConnectHandler,
  onError: (message: string) => void,
): void {
  socket.setNoDelay(true);
  let buf: Buffer = Buffer.alloc(0);
  let stage: 'greeting' | 'request' = 'greeting';
  const timer = setTimeout(() => {
    onError('SOCKS5 handshake timed out');
    socket.destroy();
  }, SOCKS5_HANDSHAKE_TIMEOUT_MS);
  const close = (message: string, reply?: ReplyCode | null) => {
    clearTimeout(timer);
    socket.off('data', onData);
    onError(message);
    if (reply !== undefined && reply !== null) socket.end(encodeReply(reply));
    else socket.destroy();
  };
  const onData = (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    if (stage === 'greeting') {
      const g = parseGreeting(buf);
      if (g.status === 'incomplete') return checkSize();
      if (g.status === 'error') return close(g.message, g.reply);
      if (!g.value.methods.includes(METHOD_NO_AUTH)) {
        socket.end(encodeMethodSelection(METHOD_NONE_ACCEPTABLE));
        return close('client does not offer the no-authentication method');
      }
      socket.write(encodeMethodSelection(METHOD_NO_AUTH));
      buf = buf.subarray(g.consumed);
      stage = 'request';
    }
    const r = parseRequest(buf);
    if (r.status === 'incomplete') return checkSize();
    if (r.status === 'error') return close(r.message, r.reply);
    clearTimeout(timer);
    socket.off('data', onData);
    socket.pause();
    const rest = buf.subarray(r.consumed);
    if (rest.length > 0) socket.unshift(rest);
    let answered = false;
    onConnect(socket, r.value, {
      succeed: (bind) => {
        if (answered) return;
        answered = true;
        socket.write(encodeReply(Reply.Succeeded, bind));
      },
      fail: (code) => {
        if (answered) return;
        answered = true;
        socket.end(encodeReply(code), () => socket.destroy());
      },
    });
  };
  const checkSize = () => {
    if (buf.length > MAX_HANDSHAKE_BYTES) close('SOCKS5 handshake too large', Reply.GeneralFailure);
  };
  socket.on('data', onData);
  socket.on('error', () => clearTimeout(timer));
  socket.on('close', () => clearTimeout(timer));
}
