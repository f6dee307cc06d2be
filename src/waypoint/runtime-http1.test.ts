/**
 * The waypoint runtime over real sockets (echo backends on loopback), HTTP/1.1 clients through
 * in-process tunnels: keep-alive on both sides, streaming bodies, header handling, telemetry.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { readMetric } from '../telemetry/index.js';
import { readBody, RuntimeHarness } from './test-helpers/runtime.js';

let h: RuntimeHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

interface Echo {
  pod: string;
  version: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  bodyBytes: number;
}

function get(
  agent: http.Agent,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
  body?: Buffer,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: 'reviews.shop', port: 9080, path, method, headers, agent }, (res) => {
      readBody(res).then(
        (text) => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }),
        reject,
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('waypoint runtime, HTTP/1.1', () => {
  it('forwards requests with keep-alive on both sides and reports them', async () => {
    h = new RuntimeHarness();
    const { v1, v2 } = await h.startBackends();
    const agent = h.agent();
    for (let i = 0; i < 20; i++) {
      const r = await get(agent, `/hello?i=${i}`, { 'x-test': 'yes' });
      expect(r.status).toBe(200);
      const echo = JSON.parse(r.text) as Echo;
      expect(echo.path).toBe(`/hello?i=${i}`);
      expect(echo.headers['x-test']).toBe('yes');
      expect(echo.headers.host).toBe('reviews.shop:9080');
      expect(echo.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(echo.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    }
    expect(v1.count() + v2.count()).toBe(20);
    // One client tunnel, and at most one upstream connection per endpoint (sequential requests).
    expect(agent.tunnels).toBe(1);
    for (const n of h.opened.values()) expect(n).toBe(1);
    agent.destroy();
    const lines = h.access();
    expect(lines).toHaveLength(20);
    expect(lines[0]).toMatchObject({
      msg: 'request complete',
      method: 'GET',
      protocol: 'HTTP/1.1',
      response_code: 200,
      response_flags: '-',
      response_code_details: 'via_upstream',
      'src.identity': 'spiffe://cluster.local/ns/shop/sa/frontend',
      'src.workload': 'frontend-0',
      'dst.service': 'reviews.shop.svc.cluster.local',
      'dst.identity': 'spiffe://cluster.local/ns/shop/sa/reviews',
      attempts: 1,
    });
    expect(
      await readMetric(h.registry, 'istio_requests_total', {
        reporter: 'waypoint',
        response_code: '200',
        source_workload: 'frontend',
        destination_service_name: 'reviews',
        connection_security_policy: 'mutual_tls',
      }),
    ).toBe(20);
  });

  it('keeps the incoming trace id with a new span id, and an incoming x-request-id', async () => {
    h = new RuntimeHarness();
    await h.startBackends();
    const agent = h.agent();
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const r = await get(agent, '/', { traceparent: tp, tracestate: 'a=b', 'x-request-id': 'req-1' });
    const echo = JSON.parse(r.text) as Echo;
    expect(echo.headers.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(echo.headers.traceparent).not.toBe(tp);
    expect(echo.headers.tracestate).toBe('a=b');
    expect(echo.headers['x-request-id']).toBe('req-1');
    expect(h.access()[0]).toMatchObject({
      'request.id': 'req-1',
      'trace.id': '0af7651916cd43dd8448eb211c80319c',
    });
    agent.destroy();
  });

  it('streams a large request body up and a large response down without buffering them whole', async () => {
    h = new RuntimeHarness();
    await h.startBackends();
    const agent = h.agent();
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    const r = await get(agent, '/upload', { 'content-type': 'application/octet-stream' }, 'POST', big);
    expect(r.status).toBe(200);
    expect((JSON.parse(r.text) as Echo).bodyBytes).toBe(big.length);
    expect(h.access()[0]).toMatchObject({ bytes_received: big.length, method: 'POST' });
    agent.destroy();
  });

  it('drops hop-by-hop headers and answers 400 to a malformed path', async () => {
    h = new RuntimeHarness();
    await h.startBackends();
    const agent = h.agent();
    const r = await get(agent, '/x', {
      connection: 'keep-alive, x-secret',
      'x-secret': 's',
      'keep-alive': '5',
    });
    const echo = JSON.parse(r.text) as Echo;
    expect(echo.headers['x-secret']).toBeUndefined();
    expect(echo.headers['keep-alive']).toBeUndefined();
    const bad = await get(agent, '/a%zz');
    expect(bad.status).toBe(400);
    expect(h.access()[1]).toMatchObject({ response_code: 400, response_flags: 'DPE' });
    agent.destroy();
  });

  it('answers 431 to request headers over 60 KiB and 400 to a malformed request, then closes', async () => {
    h = new RuntimeHarness();
    const { v1, v2 } = await h.startBackends();
    const ctx = () => h!.context({ kind: 'ip', ip: '127.10.53.1', port: 9080 });
    const big = h.tunnel(ctx());
    big.write(`GET / HTTP/1.1\r\nhost: reviews.shop\r\nx-big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    expect(await readBody(big)).toMatch(/^HTTP\/1.1 431 Request Header Fields Too Large\r\n/);
    const bad = h.tunnel(ctx());
    bad.write('GET / HTTP/1.1\r\nhost reviews.shop\r\n\r\n');
    expect(await readBody(bad)).toMatch(/^HTTP\/1.1 400 Bad Request\r\n/);
    expect(v1.count() + v2.count()).toBe(0);
  });

  it('passes non-HTTP bytes through to the service (L4) and logs the connection', async () => {
    h = new RuntimeHarness();
    await h.startBackends();
    const socket = h.tunnel(h.context({ kind: 'ip', ip: '127.10.53.1', port: 9080 }));
    // Not an HTTP request line: passthrough to the echo app, which then fails to parse it and
    // answers 400 itself: the bytes reached the backend untouched.
    socket.write('HELLO THERE\r\n\r\n');
    const text = await readBody(socket);
    expect(text).toMatch(/^HTTP\/1.1 400/);
    const line = (await h.waitForAccess(1))[0];
    expect(line).toMatchObject({ protocol: 'TCP' });
    expect(line?.['upstream.host']).toMatch(/:8080$/);
  });

  it('copies a port declared TCP without sniffing', async () => {
    h = new RuntimeHarness();
    await h.startBackends();
    const socket = h.tunnel(h.context({ kind: 'ip', ip: '127.10.53.4', port: 7000 }), true);
    socket.end('GET / HTTP/1.1\r\n\r\n');
    expect(await readBody(socket)).toBe('GET / HTTP/1.1\r\n\r\n');
    expect((await h.waitForAccess(1))[0]).toMatchObject({
      protocol: 'TCP',
      bytes_received: 18,
      bytes_sent: 18,
    });
  });
});
