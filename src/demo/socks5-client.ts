/**
 * A SOCKS5 client for the sample apps, tests and benches: opens a TCP connection to a ztunnel's
 * SOCKS5 listener, asks it to CONNECT to a target, and hands back the socket once the reply says
 * "succeeded". `socksAgent` wraps it as an http.Agent so that node:http requests go through the mesh.
 */
import http from 'node:http';
import net from 'node:net';
import { Reply, encodeClientConnect, type Socks5Target } from '../ztunnel/index.js';

const REPLY_TEXT: Record<number, string> = {
  [Reply.GeneralFailure]: 'general failure',
  [Reply.NotAllowed]: 'connection not allowed by ruleset',
  [Reply.NetworkUnreachable]: 'network unreachable',
  [Reply.HostUnreachable]: 'host unreachable',
  [Reply.ConnectionRefused]: 'connection refused',
  [Reply.TtlExpired]: 'TTL expired',
  [Reply.CommandNotSupported]: 'command not supported',
  [Reply.AddressTypeNotSupported]: 'address type not supported',
};

export class Socks5Error extends Error {
  constructor(
    readonly reply: number,
    message: string,
  ) {
    super(message);
    this.name = 'Socks5Error';
  }
}

export interface SocksProxy {
  host: string;
  port: number;
  /** Local address to dial from (in local mode: the client pod's IP). */
  localAddress?: string;
}

export function parseTarget(hostPort: string): Socks5Target {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(hostPort);
  if (!m?.[1] || !m[2]) throw new Error(`target "${hostPort}" is not host:port`);
  const port = Number(m[2]);
  return net.isIP(m[1]) ? { kind: 'ip', ip: m[1], port } : { kind: 'domain', hostname: m[1], port };
}

/** Connect through a SOCKS5 proxy. Resolves with the tunnelled socket, or rejects with a Socks5Error. */
export function socksConnect(
  proxy: SocksProxy,
  target: Socks5Target | string,
  timeoutMs = 10_000,
): Promise<net.Socket> {
  const t = typeof target === 'string' ? parseTarget(target) : target;
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: proxy.host,
      port: proxy.port,
      localAddress: proxy.localAddress,
      noDelay: true,
    });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(
      () => fail(new Error(`SOCKS5 connect to ${proxy.host}:${proxy.port} timed out`)),
      timeoutMs,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('connect', () => socket.write(encodeClientConnect(t)));
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('SOCKS5 proxy closed the connection during the handshake')));
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2) return;
      if (buf[0] !== 5 || buf[1] !== 0)
        return fail(new Error(`SOCKS5 proxy refused the no-auth method (${buf.toString('hex')})`));
      if (buf.length < 12) return;
      const code = buf[3] ?? Reply.GeneralFailure;
      if (code !== Reply.Succeeded) {
        return fail(new Socks5Error(code, `SOCKS5 CONNECT failed: ${REPLY_TEXT[code] ?? `reply ${code}`}`));
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      const rest = buf.subarray(12);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

/** An http.Agent whose connections go through a SOCKS5 proxy (hostname resolved by the proxy). */
export function socksAgent(proxy: SocksProxy, opts: http.AgentOptions = {}): http.Agent {
  const agent = new http.Agent({ keepAlive: true, ...opts });
  (agent as unknown as { createConnection: unknown }).createConnection = (
    options: { host?: string; port?: number | string },
    cb: (err: Error | null, socket?: net.Socket) => void,
  ) => {
    const target = `${options.host ?? 'localhost'}:${String(options.port ?? 80)}`;
    socksConnect(proxy, target).then(
      (s) => cb(null, s),
      (err: Error) => cb(err),
    );
    return undefined;
  };
  return agent;
}
