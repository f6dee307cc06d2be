/**
 * The waypoint runtime with HTTP/2 clients (prior knowledge), gRPC-shaped: a real grpc-js server
 * behind it (unary call, trailers, trailers-only errors) and a raw h2c server for bidirectional
 * streaming, which only works if neither direction is buffered.
 */
import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { readMetric } from '../telemetry/index.js';
import { RuntimeHarness } from './test-helpers/runtime.js';

const GRPC_YAML = `apiVersion: v1
kind: Pod
metadata: {name: grpc-0, namespace: shop, labels: {app: grpc}}
spec: {nodeName: node-a, serviceAccountName: grpc}
status: {podIP: 127.0.53.5}
---
apiVersion: v1
kind: Service
metadata: {name: grpc, namespace: shop}
spec: {clusterIP: 127.10.53.5, selector: {app: grpc}, ports: [{name: grpc, port: 9090, targetPort: 9090}]}
---
apiVersion: v1
kind: Pod
metadata: {name: chat-0, namespace: shop, labels: {app: chat}}
spec: {nodeName: node-a, serviceAccountName: chat}
status: {podIP: 127.0.53.6}
---
apiVersion: v1
kind: Service
metadata: {name: chat, namespace: shop}
spec: {clusterIP: 127.10.53.6, selector: {app: chat}, ports: [{name: grpc, port: 9090, targetPort: 9090}]}`;

const raw = (b: Buffer): Buffer => b;
const ECHO_SERVICE: grpc.ServiceDefinition = {
  Echo: {
    path: '/test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};

function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

let h: RuntimeHarness | undefined;
let grpcServer: grpc.Server | undefined;
afterEach(async () => {
  grpcServer?.forceShutdown();
  grpcServer = undefined;
  await h?.close();
  h = undefined;
});

async function startGrpc(): Promise<void> {
  grpcServer = new grpc.Server();
  grpcServer.addService(ECHO_SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const text = call.request.toString();
      if (text === 'fail') cb({ code: grpc.status.UNAVAILABLE, details: 'asked to fail' });
      else cb(null, Buffer.from(`echo:${text}`), new grpc.Metadata(), 0);
    },
  });
  const server = grpcServer;
  await new Promise<void>((resolve, reject) =>
    server.bindAsync('127.0.53.5:9090', grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
}

interface GrpcReply {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
}

function call(session: http2.ClientHttp2Session, message: string): Promise<GrpcReply> {
  return new Promise((resolve, reject) => {
    const st = session.request({
      ':method': 'POST',
      ':path': '/test.Echo/Echo',
      ':authority': 'grpc.shop:9090',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    st.on('response', (hd) => (headers = hd));
    st.on('trailers', (t: http2.IncomingHttpHeaders) => (trailers = t));
    st.on('data', (c: Buffer) => chunks.push(c));
    st.on('end', () => resolve({ headers, body: Buffer.concat(chunks), trailers }));
    st.on('error', reject);
    st.end(frame(Buffer.from(message)));
  });
}

describe('waypoint runtime, HTTP/2 (gRPC)', () => {
  it('passes a unary gRPC call with trailers, and many concurrent calls share one session each way', async () => {
    h = new RuntimeHarness(GRPC_YAML);
    await startGrpc();
    const session = h.h2session(h.context({ kind: 'ip', ip: '127.10.53.5', port: 9090 }));
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => call(session, `m${i}`)));
    replies.forEach((r, i) => {
      expect(r.headers[':status']).toBe(200);
      expect(r.headers['content-type']).toMatch(/^application\/grpc/);
      expect(r.body.equals(frame(Buffer.from(`echo:m${i}`)))).toBe(true);
      expect(r.trailers?.['grpc-status']).toBe('0');
    });
    expect([...h.opened.values()]).toEqual([1]);
    session.close();
    expect(
      await readMetric(h.registry, 'istio_requests_total', {
        request_protocol: 'grpc',
        grpc_response_status: '0',
        response_code: '200',
        destination_service_name: 'grpc',
      }),
    ).toBe(20);
  });

  it('keeps a trailers-only gRPC error trailers-only, and records its status', async () => {
    h = new RuntimeHarness(GRPC_YAML);
    await startGrpc();
    const session = h.h2session(h.context({ kind: 'ip', ip: '127.10.53.5', port: 9090 }));
    const r = await call(session, 'fail');
    const status = r.headers['grpc-status'] ?? r.trailers?.['grpc-status'];
    expect(status).toBe(String(grpc.status.UNAVAILABLE));
    expect(r.body.length).toBe(0);
    session.close();
    // gRPC UNAVAILABLE is retried by Istio's default policy: the backend saw 3 attempts.
    expect(h.access()[0]).toMatchObject({ grpc_status: 14, attempts: 3, response_code: 200 });
  });

  it('streams both directions: each message is answered before the next is sent', async () => {
    h = new RuntimeHarness(GRPC_YAML);
    const backend = http2.createServer();
    backend.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.on('data', (c: Buffer) => stream.write(c));
      stream.on('end', () => stream.end());
    });
    await new Promise<void>((resolve, reject) => {
      backend.once('error', reject);
      backend.listen(9090, '127.0.53.6', resolve);
    });
    try {
      const session = h.h2session(h.context({ kind: 'ip', ip: '127.10.53.6', port: 9090 }));
      const st = session.request({
        ':method': 'POST',
        ':path': '/test.Echo/Chat',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      const received: Buffer[] = [];
      let waiting: (() => void) | undefined;
      st.on('data', (c: Buffer) => {
        received.push(c);
        waiting?.();
      });
      const trailers = new Promise<http2.IncomingHttpHeaders>((r) => st.once('trailers', r));
      for (let i = 0; i < 10; i++) {
        const got = new Promise<void>((r) => (waiting = r));
        st.write(frame(Buffer.from(`ping ${i}`)));
        await got;
      }
      st.end();
      expect((await trailers)['grpc-status']).toBe('0');
      expect(Buffer.concat(received).length).toBe(10 * frame(Buffer.from('ping 0')).length);
      session.close();
    } finally {
      // The waypoint's upstream session keeps the backend open until the waypoint closes.
      await h.close();
      h = undefined;
      await new Promise<void>((r) => backend.close(() => r()));
    }
  });
});
