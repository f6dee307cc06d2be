/**
 * HTTP/1.1 upstreams over HTTP/2 CONNECT tunnels (what HBONE gives the waypoint): request heads
 * and bodies arrive intact, and connections are reused. Guards against a Node 20 Http2Stream
 * writev bug that corrupted the first 16 bytes of every request with a body (see asSocketLike).
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { readBody, RuntimeHarness } from './test-helpers/runtime.js';
import type { UpstreamEndpoint } from './upstream-types.js';

let h: RuntimeHarness | undefined;
let tunnels: http2.Http2Server | undefined;
let client: http2.ClientHttp2Session | undefined;
afterEach(async () => {
  client?.destroy();
  await h?.close();
  await new Promise<void>((r) => (tunnels ? tunnels.close(() => r()) : r()));
  h = undefined;
  tunnels = undefined;
});

/** An h2c CONNECT proxy: each stream is piped to its :authority. Resolves with a connector. */
async function startTunnelServer(): Promise<(ep: UpstreamEndpoint) => Promise<Duplex>> {
  const server = http2.createServer();
  tunnels = server;
  server.on('stream', (stream, headers) => {
    const [host = '', port = '0'] = String(headers[':authority']).split(':');
    const up = net.connect({ host, port: Number(port) }, () => {
      stream.respond({ ':status': 200 });
      stream.pipe(up).pipe(stream);
    });
    up.on('error', () => stream.close());
    stream.on('error', () => up.destroy());
  });
  server.on('session', (s) => s.on('error', () => undefined));
  await new Promise<void>((r) => server.listen(0, '127.0.53.200', r));
  const { port } = server.address() as net.AddressInfo;
  const session = http2.connect(`http://127.0.53.200:${port}`);
  client = session;
  return (ep) =>
    new Promise((resolve, reject) => {
      const st = session.request({ ':method': 'CONNECT', ':authority': `${ep.ip}:${ep.port}` });
      st.once('response', () => resolve(st));
      st.once('error', reject);
    });
}

describe('HTTP/1.1 upstream over HTTP/2 CONNECT tunnels', () => {
  it('delivers request heads and bodies intact, reusing the tunnel', async () => {
    h = new RuntimeHarness('', await startTunnelServer());
    await h.startBackends();
    const agent = h.agent();
    for (let i = 0; i < 10; i++) {
      const body = Buffer.alloc(1024 * (i + 1), 97);
      const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = http.request(
          { host: 'reviews.shop', port: 9080, method: 'POST', path: `/bench/${i}`, agent },
          (res) => void readBody(res).then((text) => resolve({ status: res.statusCode ?? 0, text }), reject),
        );
        req.on('error', reject);
        req.end(body);
      });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.text)).toMatchObject({
        method: 'POST',
        path: `/bench/${i}`,
        bodyBytes: body.length,
      });
    }
    expect([...h.opened.values()].reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(2);
    agent.destroy();
  });
});
