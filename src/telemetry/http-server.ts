/**
 * Small HTTP/1.1 servers for admin, metrics and readiness. They share one listen helper that
 * resolves with the bound address (or rejects with a MeshError naming the address in use), and
 * a header timeout as ztunnel's (2 s) so an idle scraper cannot hold a socket open.
 */
import http from 'node:http';
import type { AddressInfo, ListenOptions } from 'node:net';
import { MeshError } from '../errors.js';

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void | Promise<void>;

export function createHttpServer(handler: Handler): http.Server {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    Promise.resolve(handler(req, res, url)).catch((err: unknown) => {
      if (!res.headersSent)
        reply(res, 500, `internal error: ${err instanceof Error ? err.message : String(err)}\n`);
      else res.destroy();
    });
  });
  server.headersTimeout = 2_000;
  server.requestTimeout = 10_000;
  return server;
}

export function reply(
  res: http.ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function listen(server: http.Server, opts: ListenOptions, what: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      const where = `${opts.host ?? '*'}:${opts.port ?? 0}`;
      reject(
        new MeshError('MESH_ERR_BIND', `cannot listen for ${what} on ${where}: ${err.code ?? err.message}`, {
          cause: err,
          hint:
            err.code === 'EADDRINUSE'
              ? `stop whatever holds ${where}, or choose another port`
              : 'check the address exists on this host',
        }),
      );
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(opts);
  });
}

/** Close a server and every connection on it. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
