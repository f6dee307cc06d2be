/**
 * The default upstream dialer: net.connect with TCP_NODELAY, keepalive (180 s, as ztunnel) and
 * half-open allowed (the copy maps FIN to END_STREAM per direction), bounded by a connect
 * timeout. Failures are values, not exceptions: a failed dial is an expected 503.
 */
import net from 'node:net';
import type { DialResult, DialTarget } from './types.js';

/** ztunnel's KEEPALIVE_TIME: 180 s before the first probe on an idle connection. */
export const TCP_KEEPALIVE_MS = 180_000;

export function dialTcp(target: DialTarget, timeoutMs: number): Promise<DialResult> {
  return new Promise((resolve) => {
    const socket = net.connect({
      host: target.host,
      port: target.port,
      localAddress: target.localAddress,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: TCP_KEEPALIVE_MS,
      allowHalfOpen: true,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({
        ok: false,
        reason: `timed out connecting to ${target.host}:${target.port} after ${timeoutMs} ms`,
        timedOut: true,
      });
    }, timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      resolve({
        ok: false,
        reason: `connecting to ${target.host}:${target.port}: ${err.message}`,
        timedOut: false,
      });
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      // Until the caller's copy attaches its own listener, an early reset must not crash us.
      socket.on('error', ignore);
      resolve({ ok: true, socket });
    });
  });
}

function ignore(): void {}
