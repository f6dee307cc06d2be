/**
 * Test fixtures for HBONE: a mesh CA with workload certificates, HBONE servers on 127.0.0.1:0,
 * app servers (echo, sink), a raw node:http2 client that speaks HBONE as an independent peer
 * would, and small event helpers. Nothing here sleeps: every wait is on an event.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { DEFAULT_CONFIG, type Http2Config } from '../../config.js';
import { MeshCa, issueWorkloadCertificate, type WorkloadCertificate } from '../../identity/index.js';
import { HboneServer } from '../server.js';
import type { HboneServerOptions } from '../types.js';

export const TD = 'cluster.local';
export const ID_CLIENT = `spiffe://${TD}/ns/shop/sa/frontend`;
export const ID_SERVER = `spiffe://${TD}/ns/shop/sa/backend`;

let sharedCa: MeshCa | undefined;
export function meshCa(): MeshCa {
  sharedCa ??= MeshCa.create({ trustDomain: TD });
  return sharedCa;
}

const certs = new Map<string, WorkloadCertificate>();
/** One certificate per identity for the whole test file (issuing is cheap, but reuse is the norm). */
export function certFor(uri: string, ca: MeshCa = meshCa()): WorkloadCertificate {
  const k = `${ca.rootCertPem.length}:${ca.rootCertPem.slice(-64)}|${uri}`;
  let c = certs.get(k);
  if (!c) {
    c = issueWorkloadCertificate(ca, uri);
    certs.set(k, c);
  }
  return c;
}

/** Fast keepalive for tests; all else as DESIGN. */
export function testHttp2(over: Partial<Http2Config> = {}): Http2Config {
  return { ...DEFAULT_CONFIG.http2, pingIntervalMs: 1_000, pingTimeoutMs: 2_000, ...over };
}

export async function startHbone(
  opts: Partial<HboneServerOptions> & Pick<HboneServerOptions, 'policy'>,
  host = '127.0.0.1',
): Promise<{ server: HboneServer; port: number; host: string }> {
  const server = new HboneServer({
    certificate: certFor(ID_SERVER),
    http2: testHttp2(),
    connectTimeoutMs: 2_000,
    tlsHandshakeTimeoutMs: 2_000,
    ...opts,
  });
  const addr = await server.listen({ host, port: 0 });
  return { server, port: addr.port, host };
}

export interface AppServer {
  server: net.Server;
  port: number;
  close(): Promise<void>;
}

/** A TCP app server; `onSocket` gets each accepted socket (allowHalfOpen). */
export async function startApp(onSocket: (s: net.Socket) => void, host = '127.0.0.1'): Promise<AppServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  server.listen(0, host);
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      if (server.listening) await once(server, 'close');
    },
  };
}

/** Echo server: every byte back, FIN after the client's FIN. */
export function startEcho(): Promise<AppServer> {
  return startApp((s) => s.pipe(s));
}

/** A raw HTTP/2 client over mTLS to an HBONE server, not using our pool. */
export type RawSession = http2.ClientHttp2Session & { tlsSocket: tls.TLSSocket };

export function rawHboneClient(
  port: number,
  /** null: present no client certificate. */
  cert: WorkloadCertificate | null = certFor(ID_CLIENT),
  host = '127.0.0.1',
  roots: string[] = certFor(ID_CLIENT).rootsPem,
): RawSession {
  const tlsSocket = tls.connect({
    host: host.replace(/^\[|\]$/g, ''),
    port,
    ca: roots,
    ...(cert ? { cert: cert.chainPem.join(''), key: cert.keyPem } : {}),
    minVersion: 'TLSv1.3',
    ALPNProtocols: ['h2'],
    servername: '',
    checkServerIdentity: () => undefined,
  });
  tlsSocket.on('error', () => {});
  const session = http2.connect(`https://${host}:${port}`, {
    createConnection: () => tlsSocket,
    settings: { initialWindowSize: 4 * 1024 * 1024 },
  }) as RawSession;
  session.tlsSocket = tlsSocket;
  session.on('error', () => {});
  return session;
}

/** Send a request on a raw session and resolve with the response status and the stream. */
export async function rawRequest(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; stream: http2.ClientHttp2Stream }> {
  const stream = session.request(headers, { endStream: false });
  stream.on('error', () => {});
  const [res] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
  return { status: Number(res[':status']), headers: res, stream };
}

/**
 * Read a stream to its end; resolves with the bytes. Unlike `for await`, this does not destroy
 * the stream at the end, so a half-closed socket can still be written.
 */
export function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return consume(s, (c) => chunks.push(c)).then(() => Buffer.concat(chunks));
}

/** Feed every chunk to `onChunk` until 'end' (rejects on 'error'); leaves the stream open. */
export function consume(s: NodeJS.ReadableStream, onChunk: (c: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    s.on('data', (c: Buffer) => onChunk(c));
    s.once('end', () => resolve());
    s.once('error', reject);
  });
}

/** Resolve on 'close' (unlike events.once, an 'error' before it does not reject). */
export function closeOf(e: NodeJS.EventEmitter): Promise<void> {
  return new Promise((r) => e.once('close', () => r()));
}

/** How a client connection ended: its first error message, or 'closed'. */
export function endOf(e: NodeJS.EventEmitter): Promise<string> {
  return new Promise((r) => {
    e.once('error', (err: Error) => r(err.message));
    e.once('close', () => r('closed'));
  });
}

/** Resolve or reject with `p`, or reject after `ms` naming what was awaited. */
export async function withinMs<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** Deterministic pseudo-random bytes, generated in chunks, with their SHA-256. */
export function* patternChunks(total: number, seed: number, chunk = 256 * 1024): Generator<Buffer> {
  let x = seed >>> 0 || 1;
  let left = total;
  while (left > 0) {
    const n = Math.min(chunk, left);
    const b = Buffer.allocUnsafe(n + 3);
    for (let i = 0; i < n; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b.writeUInt32LE(x >>> 0, i);
    }
    left -= n;
    yield b.subarray(0, n);
  }
}

export function sha256Of(total: number, seed: number): string {
  const h = createHash('sha256');
  for (const c of patternChunks(total, seed)) h.update(c);
  return h.digest('hex');
}
