/**
 * Two real `meshd ztunnel` processes on loopback (node-a 127.0.21.1, node-b 127.0.22.1) with
 * echo apps bound to their pods' IPs. Each test asserts the bytes, then the metrics and access
 * logs on both sides.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Socks5Error } from '../../src/demo/socks5-client.js';
import { startEchoApp, startTcpEcho, type RunningApp } from '../../src/demo/sample-apps.js';
import { Reply } from '../../src/ztunnel/index.js';
import { TestMesh, accessLines } from '../helpers/mesh.js';
import { eventually, metricSum, scrape } from '../helpers/prom.js';
import { stopAll } from '../helpers/process.js';

const run = promisify(execFile);

const mesh = new TestMesh({
  nodes: [
    { name: 'node-a', ip: '127.0.21.1' },
    { name: 'node-b', ip: '127.0.22.1' },
  ],
  namespaces: { shop: true, legacy: false },
  pods: [
    {
      name: 'client-0',
      namespace: 'shop',
      node: 'node-a',
      ip: '127.0.21.10',
      sa: 'client',
      labels: { app: 'client' },
    },
    {
      name: 'echo-a',
      namespace: 'shop',
      node: 'node-a',
      ip: '127.0.21.11',
      sa: 'echo',
      labels: { app: 'echo' },
      ports: { tcp: 9000 },
    },
    {
      name: 'echo-b',
      namespace: 'shop',
      node: 'node-b',
      ip: '127.0.22.11',
      sa: 'echo',
      labels: { app: 'echo' },
      ports: { tcp: 9000 },
    },
    {
      name: 'web-0',
      namespace: 'shop',
      node: 'node-b',
      ip: '127.0.22.12',
      sa: 'web',
      labels: { app: 'web' },
    },
    {
      name: 'guarded-0',
      namespace: 'shop',
      node: 'node-b',
      ip: '127.0.22.13',
      sa: 'guarded',
      labels: { app: 'guarded' },
    },
    {
      name: 'outsider-0',
      namespace: 'shop',
      node: 'node-a',
      ip: '127.0.21.12',
      sa: 'outsider',
      labels: { app: 'outsider' },
    },
    { name: 'legacy-0', namespace: 'legacy', node: 'node-b', ip: '127.0.22.30', labels: { app: 'legacy' } },
  ],
  services: [
    {
      name: 'echo',
      namespace: 'shop',
      vip: '127.10.2.10',
      selector: { app: 'echo' },
      ports: [{ port: 7000, targetPort: 'tcp', name: 'tcp' }],
    },
    {
      name: 'web',
      namespace: 'shop',
      vip: '127.10.2.11',
      selector: { app: 'web' },
      ports: [{ port: 80, targetPort: 8080, name: 'http' }],
    },
  ],
  extra: [
    `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: guarded-only-client
  namespace: shop
spec:
  selector:
    matchLabels: { app: guarded }
  action: ALLOW
  rules:
    - from:
        - source:
            principals: [cluster.local/ns/shop/sa/client]
`,
  ],
});

const apps: RunningApp[] = [];

beforeAll(async () => {
  apps.push(await startTcpEcho({ host: '127.0.21.11', port: 9000 }));
  apps.push(await startTcpEcho({ host: '127.0.22.11', port: 9000 }));
  apps.push(await startTcpEcho({ host: '127.0.22.13', port: 9000 }));
  apps.push(await startTcpEcho({ host: '127.0.22.30', port: 9000 }));
  apps.push(await startEchoApp({ host: '127.0.22.12', port: 8080, pod: 'web-0', version: 'v1' }));
  await mesh.start();
});

afterAll(async () => {
  await stopAll();
  await Promise.all(apps.map((a) => a.close()));
  mesh.cleanup();
});

describe('ztunnel traffic between two nodes', () => {
  it('carries cross-node traffic over mTLS and reports it on both sides', async () => {
    const echoed = await mesh.roundTrip('client-0', '127.0.22.11:9000', 'hello world');
    expect(echoed).toBe('hello world');

    const a = mesh.ztunnel('node-a');
    const b = mesh.ztunnel('node-b');
    const inbound = await b.waitForLog(
      (l) => l.direction === 'inbound' && l['dst.workload'] === 'echo-b' && l.bytes_recv === 11,
    );
    expect(inbound).toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/shop/sa/client',
      'dst.identity': 'spiffe://cluster.local/ns/shop/sa/echo',
      'src.workload': 'client-0',
      'dst.addr': '127.0.22.11:15008',
      'dst.hbone_addr': '127.0.22.11:9000',
      bytes_sent: 11,
      status: 200,
    });
    const outbound = await a.waitForLog((l) => l.direction === 'outbound' && l['dst.workload'] === 'echo-b');
    expect(outbound).toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/shop/sa/client',
      'dst.hbone_addr': '127.0.22.11:9000',
      bytes_sent: 11,
      bytes_recv: 11,
    });

    const labels = {
      source_principal: 'spiffe://cluster.local/ns/shop/sa/client',
      destination_principal: 'spiffe://cluster.local/ns/shop/sa/echo',
      destination_workload: 'echo',
      connection_security_policy: 'mutual_tls',
    };
    const mb = await scrape(mesh.metricsUrl('node-b'));
    expect(
      metricSum(mb, 'istio_tcp_connections_closed_total', {
        ...labels,
        reporter: 'destination',
        response_flags: '-',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      metricSum(mb, 'istio_tcp_received_bytes_total', { ...labels, reporter: 'destination' }),
    ).toBeGreaterThanOrEqual(11);
    const ma = await scrape(mesh.metricsUrl('node-a'));
    expect(
      metricSum(ma, 'istio_tcp_sent_bytes_total', { ...labels, reporter: 'source' }),
    ).toBeGreaterThanOrEqual(11);
  });

  it('carries same-node traffic through HBONE too', async () => {
    expect(await mesh.roundTrip('client-0', '127.0.21.11:9000', 'same node')).toBe('same node');
    const line = await mesh
      .ztunnel('node-a')
      .waitForLog((l) => l.direction === 'inbound' && l['dst.workload'] === 'echo-a' && l.bytes_recv === 9);
    expect(line['src.identity']).toBe('spiffe://cluster.local/ns/shop/sa/client');
  });

  it('spreads 50 connections to a service VIP over endpoints on both nodes', async () => {
    const svc = {
      reporter: 'destination',
      destination_workload: 'echo',
      destination_service: 'echo.shop.svc.cluster.local',
    };
    const closedOn = async (node: string) =>
      metricSum(await scrape(mesh.metricsUrl(node)), 'istio_tcp_connections_closed_total', svc);
    const openedBySource = async () =>
      metricSum(await scrape(mesh.metricsUrl('node-a')), 'istio_tcp_connections_opened_total', {
        reporter: 'source',
        destination_service: 'echo.shop.svc.cluster.local',
      });
    const [a0, b0, s0] = [await closedOn('node-a'), await closedOn('node-b'), await openedBySource()];
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => mesh.roundTrip('client-0', '127.10.2.10:7000', `c${i}`)),
    );
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => `c${i}`));
    // Each node's ztunnel reports (as destination) the connections its own echo pod received.
    const [toA, toB] = await eventually(async () => {
      const counts = [(await closedOn('node-a')) - a0, (await closedOn('node-b')) - b0] as const;
      expect(counts[0] + counts[1]).toBe(50);
      return counts;
    });
    expect(toA).toBeGreaterThan(5);
    expect(toB).toBeGreaterThan(5);
    expect((await openedBySource()) - s0).toBe(50);
  });

  it('resolves service names from the client namespace, as curl does through SOCKS5', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '--max-time',
      '10',
      '--socks5-hostname',
      '127.0.21.10:15080',
      'http://web:80/hello?x=1',
    ]);
    expect(JSON.parse(stdout)).toMatchObject({ pod: 'web-0', path: '/hello?x=1' });
    const { stdout: fqdn } = await run('curl', [
      '-sS',
      '--max-time',
      '10',
      '--socks5-hostname',
      '127.0.21.10:15080',
      'http://web.shop.svc.cluster.local/',
    ]);
    expect(JSON.parse(fqdn)).toMatchObject({ pod: 'web-0' });
    const err = await run('curl', [
      '-sS',
      '--max-time',
      '10',
      '--socks5-hostname',
      '127.0.21.10:15080',
      'http://no-such-svc:80/',
    ]).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(97);
    expect((err as { stderr: string }).stderr).toMatch(/SOCKS5/);
  });

  it('passes traffic to a pod outside the mesh as plain TCP', async () => {
    expect(await mesh.roundTrip('client-0', '127.0.22.30:9000', 'plain')).toBe('plain');
    const line = await mesh
      .ztunnel('node-a')
      .waitForLog((l) => l.direction === 'outbound' && l['dst.workload'] === 'legacy-0');
    expect(line['dst.addr']).toBe('127.0.22.30:9000');
    expect(line['src.identity']).toBeUndefined();
    expect(line['dst.hbone_addr']).toBeUndefined();
    expect(accessLines(mesh.ztunnel('node-b'), 'inbound').some((l) => l['dst.workload'] === 'legacy-0')).toBe(
      false,
    );
    const ma = await scrape(mesh.metricsUrl('node-a'));
    expect(
      metricSum(ma, 'istio_tcp_connections_closed_total', {
        reporter: 'source',
        destination_workload: 'legacy',
        connection_security_policy: 'unknown',
      }),
    ).toBe(1);
  });

  it('denies by policy: the client is refused, the destination logs 401 and DENY', async () => {
    expect(await mesh.roundTrip('client-0', '127.0.22.13:9000', 'allowed')).toBe('allowed');
    const err = await mesh.connect('outsider-0', '127.0.22.13:9000').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Socks5Error);
    expect((err as Socks5Error).reply).toBe(Reply.NotAllowed);
    const denied = await mesh
      .ztunnel('node-b')
      .waitForLog((l) => l.direction === 'inbound' && l['dst.workload'] === 'guarded-0' && l.status === 401);
    expect(denied).toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/shop/sa/outsider',
      response_flags: 'DENY',
      error: 'connection closed due to policy rejection: allow policies exist, but none allowed',
    });
    const mb = await scrape(mesh.metricsUrl('node-b'));
    expect(
      metricSum(mb, 'istio_tcp_connections_closed_total', {
        reporter: 'destination',
        destination_workload: 'guarded',
        response_flags: 'DENY',
        source_principal: 'spiffe://cluster.local/ns/shop/sa/outsider',
      }),
    ).toBe(1);
    const ma = await scrape(mesh.metricsUrl('node-a'));
    expect(
      metricSum(ma, 'istio_tcp_connections_failed_total', {
        reporter: 'source',
        destination_workload: 'guarded',
      }),
    ).toBe(1);
  });

  it('refuses loops to mesh ports and names unknown destinations', async () => {
    const loop = await mesh.connect('client-0', '127.0.21.10:15008').catch((e: unknown) => e);
    expect((loop as Socks5Error).reply).toBe(Reply.NotAllowed);
    const line = await mesh
      .ztunnel('node-a')
      .waitForLog((l) => l.msg === 'connection failed' && String(l['dst.addr']) === '127.0.21.10:15008');
    expect(String(line.error)).toMatch(/15008/);
  });

  it('exposes config_dump with workloads, certificates and the effective config, and readiness', async () => {
    const dump = (await (await fetch(mesh.adminUrl('node-b', '/config_dump'))).json()) as {
      workloads: Array<{ name: string }>;
      certificates: Array<{
        identity: string;
        state: string;
        certChain: Array<{ expirationTime: string; serialNumber: string }>;
      }>;
      workloadState: Record<string, { state: string }>;
      config: { ports: { hbone: number } };
    };
    expect(dump.workloads.map((w) => w.name)).toContain('echo-b');
    const echoCert = dump.certificates.find((c) => c.identity === 'spiffe://cluster.local/ns/shop/sa/echo');
    expect(echoCert?.state).toBe('Available');
    expect(Date.parse(echoCert?.certChain[0]?.expirationTime ?? '')).toBeGreaterThan(Date.now());
    expect(Object.values(dump.workloadState).every((w) => w.state === 'Up')).toBe(true);
    expect(dump.config.ports.hbone).toBe(15008);
    const ready = await fetch('http://127.0.22.1:15021/healthz/ready');
    expect(ready.status).toBe(200);
    const expiry = metricSum(
      await scrape(mesh.metricsUrl('node-b')),
      'meshd_certificate_expiration_timestamp_seconds',
      { identity: 'spiffe://cluster.local/ns/shop/sa/echo' },
    );
    expect(expiry * 1000).toBeGreaterThan(Date.now());
  });
});
