/**
 * HTTP/1.1 Upgrade through the waypoint runtime over real sockets: WebSocket is routed, authorized
 * and joined end to end; h2c is stripped and served as HTTP/1.1; other upgrades get Envoy's 403.
 */
import http from 'node:http';
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readMetric } from '../telemetry/index.js';
import {
  buildAcceptKey,
  buildClientKey,
  encodeFrame,
  FrameReader,
  OPCODE,
  parseResponseHead,
  type Frame,
} from '../demo/websocket.js';
import { readBody, RuntimeHarness } from './test-helpers/runtime.js';

let h: RuntimeHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Reads a response head off a raw connection, then hands the rest to frame parsing. */
class RawClient {
  private buf = Buffer.alloc(0);
  private readonly frames: Frame[] = [];
  private readonly reader = new FrameReader();
  private headDone = false;
  private waiter: (() => void) | undefined;
  ended = false;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      if (this.headDone) this.frames.push(...this.reader.feed(c));
      else this.buf = Buffer.concat([this.buf, c]);
      this.waiter?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.waiter?.();
    });
  }

  private until(ok: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out')), 5_000);
      const check = () => {
        if (!ok()) return;
        clearTimeout(timer);
        this.waiter = undefined;
        resolve();
      };
      this.waiter = check;
      check();
    });
  }

  async head(): Promise<{ status: number; headers: Record<string, string> }> {
    await this.until(() => this.buf.includes('\r\n\r\n') || this.ended);
    const end = this.buf.indexOf('\r\n\r\n');
    const rest = this.buf.subarray(end + 4);
    this.headDone = true;
    if (rest.length > 0) this.frames.push(...this.reader.feed(rest));
    return parseResponseHead(this.buf.subarray(0, end));
  }

  async frame(): Promise<Frame> {
    await this.until(() => this.frames.length > 0);
    return this.frames.shift()!;
  }
}

function upgradeRequest(path: string, key: string, extra: Record<string, string> = {}): string {
  const headers = {
    host: 'reviews.shop:9080',
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': key,
    ...extra,
  };
  return `GET ${path} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n')}\r\n\r\n`;
}

const route = (rules: string): string => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
${rules}`;

describe('waypoint runtime, WebSocket', () => {
  it('routes the upgrade, joins both sides, echoes messages, and logs one 101 request', async () => {
    h = new RuntimeHarness(
      route(`  - matches: [{headers: [{name: x-canary, value: "true"}]}]
    backendRefs: [{name: reviews-v2, port: 9080}]
  - backendRefs: [{name: reviews-v1, port: 9080}]`),
    );
    await h.startBackends();
    const key = buildClientKey();
    const c = new RawClient(h.tunnel());
    c.socket.write(upgradeRequest('/chat?room=1', key, { 'x-canary': 'true' }));
    const head = await c.head();
    expect(head.status).toBe(101);
    expect(head.headers).toMatchObject({
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-accept': buildAcceptKey(key),
      'x-pod': 'reviews-v2-0',
    });
    c.socket.write(encodeFrame(OPCODE.text, Buffer.from('hello through the waypoint'), true));
    expect(await c.frame()).toMatchObject({
      opcode: OPCODE.text,
      payload: Buffer.from('hello through the waypoint'),
    });
    const big = Buffer.alloc(200_000, 7);
    c.socket.write(encodeFrame(OPCODE.binary, big, true));
    const back = await c.frame();
    expect(back.opcode).toBe(OPCODE.binary);
    expect(back.payload.equals(big)).toBe(true);
    c.socket.write(encodeFrame(OPCODE.close, Buffer.from([0x03, 0xe8]), true));
    expect((await c.frame()).opcode).toBe(OPCODE.close);
    c.socket.end();
    const [line] = await h.waitForAccess(1);
    expect(line).toMatchObject({
      method: 'GET',
      path: '/chat?room=1',
      response_code: 101,
      response_flags: '-',
      route: 'shop/reviews[0]',
      'dst.workload': 'reviews-v2-0',
    });
    expect(Number(line?.bytes_received)).toBeGreaterThan(200_000);
    expect(Number(line?.bytes_sent)).toBeGreaterThan(200_000);
    expect(
      await readMetric(h.registry, 'istio_requests_total', { response_code: '101', reporter: 'waypoint' }),
    ).toBe(1);
  });

  it('applies L7 authorization to the upgrade request (403 before any backend is reached)', async () => {
    h = new RuntimeHarness(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-ws, namespace: shop}
spec:
  targetRefs: [{kind: Service, group: "", name: reviews}]
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin/*"]}}]`);
    const { v1, v2 } = await h.startBackends();
    const c = new RawClient(h.tunnel());
    c.socket.write(upgradeRequest('/admin/socket', buildClientKey()));
    expect((await c.head()).status).toBe(403);
    expect(await readBody(c.socket)).toBe('');
    expect(v1.count() + v2.count()).toBe(0);
    expect((await h.waitForAccess(1))[0]).toMatchObject({ response_code: 403 });
  });

  it('answers 503 (UF) when the backend cannot be reached, and the connection closes', async () => {
    h = new RuntimeHarness();
    const c = new RawClient(h.tunnel());
    c.socket.write(upgradeRequest('/', buildClientKey()));
    expect((await c.head()).status).toBe(503);
    expect((await h.waitForAccess(1))[0]).toMatchObject({ response_code: 503, response_flags: 'UF' });
  });

  it('a client that leaves while the backend has not answered the upgrade: DC, backend connection closed', async () => {
    h = new RuntimeHarness();
    let backendClosed!: () => void;
    const closed = new Promise<void>((r) => (backendClosed = r));
    const silent = http.createServer();
    const upgraded = new Set<net.Socket>();
    // Accepts the upgrade request and never answers it; notes when the waypoint's side goes away.
    silent.on('upgrade', (_req, sock: net.Socket) => {
      upgraded.add(sock);
      sock.once('end', () => backendClosed()).resume();
    });
    await new Promise<void>((r) => silent.listen(8080, '127.0.53.1', r));
    h.track({
      address: { address: '127.0.53.1', port: 8080, family: 'IPv4' },
      count: () => upgraded.size,
      close: () => {
        for (const sock of upgraded) sock.destroy();
        return new Promise<void>((r) => silent.close(() => r()));
      },
    });
    const arrived = new Promise<void>((r) => silent.once('upgrade', () => r()));
    const c = new RawClient(h.tunnel(h.context({ kind: 'ip', ip: '127.10.53.2', port: 9080 })));
    c.socket.write(upgradeRequest('/', buildClientKey()));
    await arrived;
    c.socket.destroy();
    await closed;
    expect((await h.waitForAccess(1))[0]).toMatchObject({ response_code: 0, response_flags: 'DC' });
  });

  it('refuses an upgrade to another protocol with 403 upgrade_failed', async () => {
    h = new RuntimeHarness();
    const { v1, v2 } = await h.startBackends();
    const c = new RawClient(h.tunnel());
    c.socket.write(upgradeRequest('/', buildClientKey(), { upgrade: 'foo/1' }));
    expect((await c.head()).status).toBe(403);
    expect(v1.count() + v2.count()).toBe(0);
    expect((await h.waitForAccess(1))[0]).toMatchObject({
      response_code: 403,
      response_code_details: 'upgrade_failed',
    });
  });

  it('serves an h2c upgrade request as plain HTTP/1.1, without the upgrade headers', async () => {
    h = new RuntimeHarness();
    await h.startBackends();
    const socket = h.tunnel();
    socket.write(
      'GET /h2c HTTP/1.1\r\nhost: reviews.shop:9080\r\nconnection: Upgrade, HTTP2-Settings\r\n' +
        'upgrade: h2c\r\nhttp2-settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nx-test: kept\r\n\r\n',
    );
    // No half-close here: the waypoint's HTTP/1 server (node:http) aborts the requests of a
    // connection whose client half-closes.
    let text = '';
    await new Promise<void>((resolve) =>
      socket.on('data', (c: Buffer) => {
        text += c.toString();
        if (text.endsWith('0\r\n\r\n')) resolve();
      }),
    );
    socket.end();
    expect(text).toMatch(/^HTTP\/1.1 200 OK\r\n/);
    const body = JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as {
      path: string;
      headers: Record<string, string>;
    };
    expect(body.path).toBe('/h2c');
    expect(body.headers['x-test']).toBe('kept');
    expect(body.headers.upgrade).toBeUndefined();
    expect(body.headers['http2-settings']).toBeUndefined();
  });
});
