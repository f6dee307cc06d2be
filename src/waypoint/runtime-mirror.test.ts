/**
 * HTTPRoute RequestMirror through the waypoint runtime over real sockets: the copy reaches the
 * mirror Service with a `-shadow` host and the whole body, in the configured share, and neither
 * its answer nor its silence touches the real request.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startEchoApp, type RunningApp } from '../demo/sample-apps.js';
import { readBody, RuntimeHarness, startHoldingApp } from './test-helpers/runtime.js';

let h: RuntimeHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

interface Seen {
  host: string | undefined;
  method: string | undefined;
  path: string | undefined;
  bodyBytes: number;
}

/** A mirror target that records what it got and answers 500 (which must not matter). */
async function startRecorder(host: string, port: number): Promise<RunningApp & { seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => (bodyBytes += c.length));
    req.on('end', () => {
      seen.push({ host: req.headers.host, method: req.method, path: req.url, bodyBytes });
      res.writeHead(500, { 'content-length': '4' }).end('oops');
    });
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  return {
    seen,
    address: { address: host, port, family: 'IPv4' },
    count: () => seen.length,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

function post(agent: http.Agent, path: string, body: Buffer): Promise<{ status: number; pod: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: 'reviews.shop', port: 9080, path, method: 'POST', agent }, (res) => {
      readBody(res).then(
        () => resolve({ status: res.statusCode ?? 0, pod: String(res.headers['x-pod']) }),
        reject,
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

const mirrorRoute = (extra = ''): string => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: reviews-v2, port: 9080}${extra}}}]
    backendRefs: [{name: reviews-v1, port: 9080}]`;

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
}

describe('waypoint runtime, RequestMirror', () => {
  it('copies every request with its body to the mirror Service, host + "-shadow", answer ignored', async () => {
    h = new RuntimeHarness(mirrorRoute());
    const v1 = h.track(await startEchoApp({ host: '127.0.53.1', port: 8080, pod: 'reviews-v1-0' }));
    const mirror = h.track(await startRecorder('127.0.53.2', 8080));
    const agent = h.agent();
    const body = Buffer.alloc(300_000, 1);
    for (let i = 0; i < 10; i++)
      expect(await post(agent, `/upload/${i}`, body)).toEqual({ status: 200, pod: 'reviews-v1-0' });
    await until('10 mirrored requests', () => mirror.seen.length === 10);
    expect(v1.count()).toBe(10);
    expect(mirror.seen.map((s) => s.path).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `/upload/${i}`).sort(),
    );
    for (const s of mirror.seen)
      expect(s).toMatchObject({ host: 'reviews.shop-shadow:9080', method: 'POST', bodyBytes: body.length });
    // Only the real requests are logged, each with its own answer.
    expect(h.access().map((l) => l.response_code)).toEqual(Array(10).fill(200));
    agent.destroy();
  });

  it('mirrors the configured share of requests (percent: 30 → 30 % ± 9 of 300)', async () => {
    h = new RuntimeHarness(mirrorRoute(', percent: 30'));
    h.track(await startEchoApp({ host: '127.0.53.1', port: 8080, pod: 'reviews-v1-0' }));
    const mirror = h.track(await startRecorder('127.0.53.2', 8080));
    const agent = h.agent();
    for (let i = 0; i < 300; i++) expect((await post(agent, '/', Buffer.from('x'))).status).toBe(200);
    // Every sampled copy has been started by now; wait until the last ones have landed.
    for (let last = -1; last !== mirror.seen.length;) {
      last = mirror.seen.length;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(mirror.seen.length).toBeGreaterThan(63);
    expect(mirror.seen.length).toBeLessThan(117);
    agent.destroy();
  });

  it('a mirror backend that never answers does not hold up the real requests', async () => {
    h = new RuntimeHarness(mirrorRoute());
    h.track(await startEchoApp({ host: '127.0.53.1', port: 8080, pod: 'reviews-v1-0' }));
    const stuck = h.track(await startHoldingApp('127.0.53.2', 8080));
    const agent = h.agent();
    for (let i = 0; i < 5; i++) expect((await post(agent, '/', Buffer.from('hello'))).status).toBe(200);
    await stuck.waitForRequests(5);
    expect(stuck.count()).toBe(5);
    agent.destroy();
  });
});
