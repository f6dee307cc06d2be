/**
 * Sample applications for the demo mesh, the integration tests and the benches. They are plain
 * servers that know nothing of the mesh: they bind their pod's IP, and a client reaches others
 * through its ztunnel's SOCKS5 listener.
 *
 * echo (HTTP/1.1 and h2c on one port): answers JSON naming the pod and version, and counts
 * requests. Paths that script behaviour for tests:
 *   /status/<code>          answer with that status
 *   /delay/<ms>             wait, then answer 200
 *   /flaky/<n>/<key>        the first n requests for <key> answer 503, later ones 200
 *   /_stats                 {"requests": <count>}
 * and a WebSocket echo (Upgrade: websocket on any path): the 101 names the pod and version
 * (x-pod, x-version), text and binary messages come back as sent, ping gets pong, close closes.
 * tcp-echo: writes back every byte it reads; half-close aware (ends after the client ends).
 * frontend: on any request, calls the upstream through SOCKS5 and wraps the upstream's answer.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { socksAgent, type SocksProxy } from './socks5-client.js';
import { buildAcceptKey, encodeFrame, FrameReader, OPCODE } from './websocket.js';

export interface RunningApp {
  address: AddressInfo;
  close(): Promise<void>;
  /** Requests (or TCP connections) served so far. */
  count(): number;
}

export interface EchoOptions {
  host: string;
  port: number;
  pod: string;
  version?: string;
}

function listenOn(server: net.Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeNet(server: net.Server, sockets: Set<net.Socket>): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  });
}

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

/** An HTTP echo server that speaks HTTP/1.1 and, with prior knowledge, HTTP/2 (for gRPC-like clients). */
export async function startEchoApp(opts: EchoOptions): Promise<RunningApp> {
  let requests = 0;
  const flaky = new Map<string, number>();
  const handle = (req: Req, res: Res) => {
    requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body) + '\n';
      res.writeHead(status, {
        'content-type': 'application/json',
        'x-pod': opts.pod,
        'x-version': opts.version ?? 'v1',
      });
      res.end(text);
    };
    const parts = url.pathname.split('/').filter(Boolean);
    const finish = (status: number) => {
      // Drain the request body (counting it) before answering, so uploads are echoed in size.
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () =>
        send(status, {
          pod: opts.pod,
          version: opts.version ?? 'v1',
          method: req.method,
          path: url.pathname + url.search,
          headers: req.headers,
          bodyBytes: bytes,
          requests,
        }),
      );
    };
    if (parts[0] === '_stats') return send(200, { requests });
    if (parts[0] === 'status' && parts[1]) return finish(Number(parts[1]) || 500);
    if (parts[0] === 'delay' && parts[1]) {
      const t = setTimeout(() => finish(200), Number(parts[1]) || 0);
      res.on('close', () => clearTimeout(t));
      return;
    }
    if (parts[0] === 'flaky' && parts[1] && parts[2]) {
      const seen = (flaky.get(parts[2]) ?? 0) + 1;
      flaky.set(parts[2], seen);
      return finish(seen <= Number(parts[1]) ? 503 : 200);
    }
    finish(200);
  };
  const h1 = http.createServer(handle);
  h1.keepAliveTimeout = 30_000;
  h1.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    requests++;
    serveWebSocketEcho(req, socket, head, opts);
  });
  const h2 = http2.createServer(handle);
  const sockets = new Set<net.Socket>();
  // One port, both protocols: sniff the HTTP/2 connection preface.
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('readable', () => {
      const head = (socket.read(24) ?? socket.read()) as Buffer | null;
      if (!head) {
        socket.destroy();
        return;
      }
      socket.unshift(head);
      if (head.toString('latin1').startsWith('PRI * HTTP/2.0')) h2.emit('connection', socket);
      else h1.emit('connection', socket);
    });
  });
  const address = await listenOn(server, opts.host, opts.port);
  return { address, close: () => closeNet(server, sockets), count: () => requests };
}

function serveWebSocketEcho(
  req: http.IncomingMessage,
  socket: net.Socket,
  head: Buffer,
  opts: EchoOptions,
): void {
  const key = req.headers['sec-websocket-key'];
  if (String(req.headers.upgrade).toLowerCase() !== 'websocket' || typeof key !== 'string') {
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n' +
      `sec-websocket-accept: ${buildAcceptKey(key)}\r\nx-pod: ${opts.pod}\r\nx-version: ${opts.version ?? 'v1'}\r\n\r\n`,
  );
  const reader = new FrameReader();
  const onData = (chunk: Buffer): void => {
    let frames;
    try {
      frames = reader.feed(chunk);
    } catch {
      socket.destroy();
      return;
    }
    for (const f of frames) {
      if (f.opcode === OPCODE.close) {
        socket.end(encodeFrame(OPCODE.close, f.payload, false));
        return;
      }
      if (f.opcode === OPCODE.ping) socket.write(encodeFrame(OPCODE.pong, f.payload, false));
      else if (f.opcode === OPCODE.text || f.opcode === OPCODE.binary)
        socket.write(encodeFrame(f.opcode, f.payload, false));
    }
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
  if (head.length > 0) onData(head);
}

/** A TCP echo server; after the client half-closes, it finishes echoing and ends. */
export async function startTcpEcho(opts: { host: string; port: number }): Promise<RunningApp> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  const address = await listenOn(server, opts.host, opts.port);
  return { address, close: () => closeNet(server, sockets), count: () => connections };
}

export interface FrontendOptions {
  host: string;
  port: number;
  pod: string;
  socks: SocksProxy;
  /** host:port of the upstream service, resolved by the mesh (e.g. backend.shop:8080). */
  upstream: string;
}

/** A frontend that calls its upstream through the mesh and wraps the answer. */
export async function startFrontendApp(opts: FrontendOptions): Promise<RunningApp> {
  let requests = 0;
  const agent = socksAgent(opts.socks);
  const [upHost = '', upPort = '80'] = opts.upstream.split(/:(?=\d+$)/);
  const server = http.createServer((req, res) => {
    requests++;
    const up = http.request(
      {
        host: upHost,
        port: Number(upPort),
        path: req.url,
        method: 'GET',
        agent,
        // Pass on the header the demo's waypoint routes on (the canary).
        headers: req.headers['x-canary'] !== undefined ? { 'x-canary': req.headers['x-canary'] } : {},
      },
      (upRes) => {
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let upstream: unknown = text;
          try {
            upstream = JSON.parse(text) as unknown;
          } catch {
            /* not JSON: keep the text */
          }
          res.writeHead(upRes.statusCode ?? 502, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ frontend: opts.pod, upstreamStatus: upRes.statusCode, upstream }) + '\n');
        });
      },
    );
    up.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ frontend: opts.pod, error: err.message }) + '\n');
    });
    up.end();
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const address = await listenOn(server, opts.host, opts.port);
  return {
    address,
    close: async () => {
      agent.destroy();
      await closeNet(server, sockets);
    },
    count: () => requests,
  };
}
