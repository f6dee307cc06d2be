/**
 * Dedicated mode (`meshd ztunnel --dedicated NAMESPACE/POD`, the sidecar model): two real
 * processes, each serving one pod, with their daemon ports on the pod's IP. Traffic between the
 * two pods crosses both over HBONE with each pod's own identity.
 *
 * Addresses (used by no other test or bench): nodes 127.0.60.1 / 127.0.60.2, pods 127.0.60.10-30.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTcpEcho, type RunningApp } from '../../src/demo/sample-apps.js';
import { socksConnect } from '../../src/demo/socks5-client.js';
import { runCli, startDaemon, stopAll, type Daemon } from '../helpers/process.js';
import { metricSum, scrape } from '../helpers/prom.js';

const CLIENT_IP = '127.0.60.10';
const NEIGHBOUR_IP = '127.0.60.11';
const SERVER_IP = '127.0.60.20';
const APP_PORT = 8080;

const pod = (name: string, node: string, ip: string, ns = 'ded') => `---
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, labels: { app: ${name.replace(/-\d+$/, '')} } }
spec: { nodeName: ${node}, serviceAccountName: ${name.replace(/-\d+$/, '')} }
status: { podIP: ${ip} }
`;

const MESH = `apiVersion: v1
kind: Node
metadata: { name: node-a }
status: { addresses: [{ type: InternalIP, address: 127.0.60.1 }] }
---
apiVersion: v1
kind: Node
metadata: { name: node-b }
status: { addresses: [{ type: InternalIP, address: 127.0.60.2 }] }
---
apiVersion: v1
kind: Namespace
metadata: { name: ded, labels: { istio.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Namespace
metadata: { name: plain }
${pod('client-0', 'node-a', CLIENT_IP)}
${pod('neighbour-0', 'node-a', NEIGHBOUR_IP)}
${pod('server-0', 'node-b', SERVER_IP)}
${pod('outside-0', 'node-a', '127.0.60.30', 'plain')}
`;

let dir = '';
let configPath = '';
let caDir = '';
let client: Daemon;
let server: Daemon;
let echo: RunningApp;

async function exchange(payload: string): Promise<string> {
  const socket = await socksConnect(
    { host: CLIENT_IP, port: 15080, localAddress: CLIENT_IP },
    `${SERVER_IP}:${APP_PORT}`,
  );
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<void>((resolve, reject) => {
    socket.once('close', () => resolve());
    socket.once('error', reject);
  });
  socket.end(payload);
  await closed;
  return Buffer.concat(chunks).toString();
}

function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshd-dedicated-'));
  configPath = join(dir, 'mesh.yaml');
  caDir = join(dir, 'ca');
  writeFileSync(configPath, MESH);
  // One CA for both processes, created up front (as an operator would).
  const init = await runCli(['ca', 'init', '--dir', caDir]);
  expect(init.code, init.stderr).toBe(0);
  echo = await startTcpEcho({ host: SERVER_IP, port: APP_PORT });
  const args = (p: string) => ['ztunnel', '--config', configPath, '--ca-dir', caDir, '--dedicated', p];
  client = startDaemon('dedicated client-0', args('ded/client-0'));
  server = startDaemon('dedicated server-0', args('ded/server-0'));
  await Promise.all([client.waitForMsg('ztunnel started'), server.waitForMsg('ztunnel started')]);
});

afterAll(async () => {
  await stopAll();
  await echo?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('meshd ztunnel --dedicated', () => {
  it('carries bytes between two dedicated proxies over HBONE, with each pod identity', async () => {
    const payload = 'x'.repeat(10_000) + 'end';
    expect(await exchange(payload)).toBe(payload);

    const out = await client.waitForLog(
      (l) => l.scope === 'access' && l.direction === 'outbound',
      10_000,
      'outbound access log',
    );
    expect(out).toMatchObject({
      'src.workload': 'client-0',
      'src.identity': 'spiffe://cluster.local/ns/ded/sa/client',
      'dst.addr': `${SERVER_IP}:15008`,
      'dst.hbone_addr': `${SERVER_IP}:${APP_PORT}`,
      'dst.workload': 'server-0',
      'dst.identity': 'spiffe://cluster.local/ns/ded/sa/server',
      bytes_sent: payload.length,
    });
    const inb = await server.waitForLog(
      (l) => l.scope === 'access' && l.direction === 'inbound',
      10_000,
      'inbound access log',
    );
    expect(inb).toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/ded/sa/client',
      'dst.workload': 'server-0',
      bytes_recv: payload.length,
    });

    // Metrics are scraped from each proxy's own pod IP.
    const srcMetrics = await scrape(`http://${CLIENT_IP}:15020/metrics`);
    expect(
      metricSum(srcMetrics, 'istio_tcp_connections_opened_total', {
        reporter: 'source',
        source_workload: 'client',
        destination_workload: 'server',
        connection_security_policy: 'mutual_tls',
      }),
    ).toBe(1);
    const dstMetrics = await scrape(`http://${SERVER_IP}:15020/metrics`);
    expect(
      metricSum(dstMetrics, 'istio_tcp_received_bytes_total', {
        reporter: 'destination',
        source_principal: 'spiffe://cluster.local/ns/ded/sa/client',
      }),
    ).toBe(payload.length);
  });

  it("binds its daemon ports on the pod's IP, not the node's, and serves no other pod", async () => {
    for (const ip of [CLIENT_IP, SERVER_IP]) {
      const ready = await fetch(`http://${ip}:15021/healthz/ready`);
      expect(ready.status).toBe(200);
    }
    expect(await refused('127.0.60.1', 15021)).toBe(true);
    expect(await refused('127.0.60.1', 15020)).toBe(true);
    // The neighbour on the same node is not this proxy's pod: nothing listens for it.
    expect(await refused(NEIGHBOUR_IP, 15080)).toBe(true);
    expect(await refused(NEIGHBOUR_IP, 15008)).toBe(true);

    const dump = (await (await fetch(`http://${CLIENT_IP}:15000/config_dump`)).json()) as {
      node: string;
      dedicated: string;
      workloadState: Record<string, { state: string; info: { name: string } }>;
      workloads: unknown[];
    };
    expect(dump.node).toBe('node-a');
    expect(dump.dedicated).toBe('ded/client-0');
    expect(Object.values(dump.workloadState).map((w) => [w.info.name, w.state])).toEqual([
      ['client-0', 'Up'],
    ]);
    // It still knows the whole mesh, to route to any destination.
    expect(dump.workloads).toHaveLength(4);
  });

  it.each<[string, string[], RegExp]>([
    ['an unknown pod', ['--dedicated', 'ded/nope-0'], /pod ded\/nope-0 is not declared .*client-0/],
    ['a pod that is not enrolled', ['--dedicated', 'plain/outside-0'], /plain\/outside-0 is not enrolled/],
    ['neither --node nor --dedicated', [], /either --node NAME .* or --dedicated NAMESPACE\/POD/],
    ['--dedicated with --capture', ['--dedicated', 'ded/client-0', '--capture'], /local mode only/],
  ])('exits 1 with what to fix for %s', async (_name, extra, message) => {
    const r = await runCli(['ztunnel', '--config', configPath, '--ca-dir', caDir, ...extra]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/fix: /);
  });
});
