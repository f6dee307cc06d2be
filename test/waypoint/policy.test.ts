/**
 * End to end through a real waypoint: L7 authorization (deny, path-based allow) with the client's
 * identity, the destination ztunnel seeing the waypoint's identity, and gRPC over HTTP/2 passing
 * through to a grpc-js server.
 */
import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socksConnect } from '../../src/demo/socks5-client.js';
import type { RunningApp } from '../../src/demo/sample-apps.js';
import { metricSum, scrape } from '../helpers/prom.js';
import { CLIENT_ID, pod, service, WAYPOINT_ID, WaypointMesh } from './fixture.js';

const A = '127.0.57';
const B = '127.0.58';
const VIP = '127.10.57';

const mesh = new WaypointMesh({
  a: A,
  b: B,
  vip: VIP,
  base: [
    pod('grpc-0', 'shop', 'node-b', `${B}.50`, { app: 'grpc' }, 'grpc'),
    service('grpc', 'shop', `${VIP}.6`, { app: 'grpc' }, 9090, 9090, 'grpc'),
  ],
});

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

const apps: RunningApp[] = [];
const grpcServer = new grpc.Server();

beforeAll(async () => {
  apps.push(...Object.values(await mesh.startReviews()));
  grpcServer.addService(ECHO_SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      cb(null, Buffer.concat([Buffer.from('echo:'), call.request])),
  });
  await new Promise<void>((resolve, reject) =>
    grpcServer.bindAsync(`${B}.50:9090`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  await mesh.start();
});

afterAll(async () => {
  grpcServer.forceShutdown();
  await mesh.teardown(apps);
});

const ALLOW_PUBLIC = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-public, namespace: shop}
spec:
  targetRefs: [{kind: Service, group: "", name: reviews}]
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/shop/sa/client]}}]
    to: [{operation: {methods: [GET], paths: ["/public/*"]}}]`;
const DENY_SECRET = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-secret, namespace: shop}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: DENY
  rules:
  - to: [{operation: {paths: ["*/secret"]}}]`;
/** One request per upstream connection, so the destination ztunnel logs each one as it closes. */
const ONE_REQUEST_PER_CONNECTION = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec: {host: reviews, trafficPolicy: {connectionPool: {http: {maxRequestsPerConnection: 1}}}}`;

function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

describe('waypoint L7 authorization and gRPC end to end', () => {
  it('denies with 403, allows by path, and the destination ztunnel sees the waypoint identity', async () => {
    await mesh.apply([ALLOW_PUBLIC, DENY_SECRET, ONE_REQUEST_PER_CONNECTION]);
    const agent = mesh.agent();
    const ok = await mesh.request(agent, 'reviews.shop:80', '/public/page');
    expect(ok.status).toBe(200);
    const secret = await mesh.request(agent, 'reviews.shop:80', '/public/secret');
    expect(secret).toMatchObject({ status: 403, text: 'RBAC: access denied' });
    expect((await mesh.request(agent, 'reviews.shop:80', '/private')).status).toBe(403);
    expect((await mesh.request(agent, 'reviews.shop:80', '/public/page', { method: 'DELETE' })).status).toBe(
      403,
    );
    await mesh.wp().waitForLog((l) => l.method === 'DELETE' && l.response_code === 403);
    const denials = mesh.requests().filter((l) => l.response_code === 403);
    expect(denials).toHaveLength(3);
    expect(denials[0]).toMatchObject({
      'src.identity': CLIENT_ID,
      response_code_details: 'rbac_access_denied_matched_policy[ns[shop]-policy[reviews-secret]-rule[0]]',
    });
    // The backend's ztunnel sees the waypoint as the source, never the original client.
    const pod = ok.json.pod;
    const node = pod === 'reviews-v1-0' ? 'node-a' : 'node-b';
    const inbound = await mesh
      .ztunnel(node)
      .waitForLog((l) => l.direction === 'inbound' && l['dst.workload'] === pod);
    expect(inbound).toMatchObject({ 'src.identity': WAYPOINT_ID, 'src.workload': 'waypoint-0', status: 200 });
    const m = await scrape(`http://${node === 'node-a' ? A : B}.1:15020/metrics`);
    expect(
      metricSum(m, 'istio_tcp_connections_opened_total', {
        reporter: 'destination',
        source_principal: CLIENT_ID,
      }),
    ).toBe(0);
  });

  it('passes gRPC (HTTP/2 with prior knowledge) through the waypoint', async () => {
    await mesh.apply([]);
    const socket = await socksConnect(
      { host: mesh.clientIp, port: 15080, localAddress: mesh.clientIp },
      `grpc.shop:9090`,
    );
    const session = http2.connect('http://grpc.shop:9090', { createConnection: () => socket });
    try {
      const call = (msg: string) =>
        new Promise<{ status: string | undefined; body: Buffer; grpcStatus: string | undefined }>(
          (resolve, reject) => {
            const st = session.request({
              ':method': 'POST',
              ':path': '/test.Echo/Echo',
              'content-type': 'application/grpc',
              te: 'trailers',
            });
            let status: string | undefined;
            let grpcStatus: string | undefined;
            const chunks: Buffer[] = [];
            st.on('response', (h) => (status = String(h[':status'])));
            st.on('trailers', (t: http2.IncomingHttpHeaders) => (grpcStatus = t['grpc-status'] as string));
            st.on('data', (c: Buffer) => chunks.push(c));
            st.on('end', () => resolve({ status, body: Buffer.concat(chunks), grpcStatus }));
            st.on('error', reject);
            st.end(frame(Buffer.from(msg)));
          },
        );
      const replies = await Promise.all(['a', 'b', 'c'].map(call));
      replies.forEach((r, i) => {
        expect(r.status).toBe('200');
        expect(r.grpcStatus).toBe('0');
        expect(r.body.equals(frame(Buffer.from(`echo:${'abc'[i] ?? ''}`)))).toBe(true);
      });
    } finally {
      session.close();
    }
    const m = await scrape(mesh.metricsUrl());
    expect(
      metricSum(m, 'istio_requests_total', {
        request_protocol: 'grpc',
        grpc_response_status: '0',
        destination_service_name: 'grpc',
      }),
    ).toBe(3);
  });
});
