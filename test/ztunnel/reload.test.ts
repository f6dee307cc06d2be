/**
 * Hot reload of the YAML file under two real ztunnels (127.0.31.1 and 127.0.32.1): a pod added
 * becomes reachable; a DENY added closes a live connection; an invalid edit keeps the last good
 * config and is reported.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTcpEcho, type RunningApp } from '../../src/demo/sample-apps.js';
import { TestMesh, buildMeshYaml, type MeshSpec } from '../helpers/mesh.js';
import { eventually, metricSum, scrape } from '../helpers/prom.js';
import { stopAll } from '../helpers/process.js';

const base: MeshSpec = {
  nodes: [
    { name: 'node-a', ip: '127.0.31.1' },
    { name: 'node-b', ip: '127.0.32.1' },
  ],
  namespaces: { shop: true },
  pods: [
    {
      name: 'client-0',
      namespace: 'shop',
      node: 'node-a',
      ip: '127.0.31.10',
      sa: 'client',
      labels: { app: 'client' },
    },
    { name: 'db-0', namespace: 'shop', node: 'node-b', ip: '127.0.32.11', sa: 'db', labels: { app: 'db' } },
  ],
};
const newPod = {
  name: 'cache-0',
  namespace: 'shop',
  node: 'node-b',
  ip: '127.0.32.12',
  sa: 'cache',
  labels: { app: 'cache' },
};
const denyClientToDb = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: db-deny-client
  namespace: shop
spec:
  selector:
    matchLabels: { app: db }
  action: DENY
  rules:
    - from:
        - source:
            principals: [cluster.local/ns/shop/sa/client]
`;

const mesh = new TestMesh(base);
const apps: RunningApp[] = [];

beforeAll(async () => {
  apps.push(await startTcpEcho({ host: '127.0.32.11', port: 9000 }));
  apps.push(await startTcpEcho({ host: '127.0.32.12', port: 9000 }));
  await mesh.start();
});

afterAll(async () => {
  await stopAll();
  await Promise.all(apps.map((a) => a.close()));
  mesh.cleanup();
});

function generationOf(node: string): Promise<number> {
  return scrape(mesh.metricsUrl(node)).then((s) => metricSum(s, 'meshd_config_generation'));
}

describe('ztunnel hot reload', () => {
  it('makes a pod added to the file reachable', async () => {
    expect(await mesh.roundTrip('client-0', '127.0.32.11:9000', 'before')).toBe('before');
    const b = mesh.ztunnel('node-b');
    const gen = await generationOf('node-b');
    mesh.writeAtomically(buildMeshYaml({ ...base, pods: [...base.pods, newPod] }));
    await b.waitForLog((l) => l.msg === 'workload proxy started' && l.workload === 'shop/cache-0');
    expect(await generationOf('node-b')).toBe(gen + 1);
    // node-a learns about the pod from the same file: until then it would pass the bytes through
    // as plain TCP, so wait for its new generation too.
    await eventually(async () => expect(await generationOf('node-a')).toBe(gen + 1));
    expect(await mesh.roundTrip('client-0', '127.0.32.12:9000', 'new pod')).toBe('new pod');
    const line = await b.waitForLog((l) => l.direction === 'inbound' && l['dst.workload'] === 'cache-0');
    expect(line['src.identity']).toBe('spiffe://cluster.local/ns/shop/sa/client');
    expect(line['dst.identity']).toBe('spiffe://cluster.local/ns/shop/sa/cache');
  });

  it('closes a live connection when a DENY policy is added, and refuses new ones', async () => {
    const s = await mesh.connect('client-0', '127.0.32.11:9000');
    const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
    const firstEcho = new Promise<string>((resolve) => s.once('data', (c: Buffer) => resolve(c.toString())));
    s.write('still open');
    expect(await firstEcho).toBe('still open');

    mesh.writeAtomically(buildMeshYaml({ ...base, pods: [...base.pods, newPod], extra: [denyClientToDb] }));
    await closed;
    const b = mesh.ztunnel('node-b');
    const line = await b.waitForLog(
      (l) => l.direction === 'inbound' && l['dst.workload'] === 'db-0' && l.response_flags === 'DENY',
    );
    expect(String(line.error)).toMatch(
      /^connection closed due to policy change: explicitly denied by: shop\/db-deny-client/,
    );
    expect(line.bytes_recv).toBe(10);
    await eventually(async () => {
      const mb = await scrape(mesh.metricsUrl('node-b'));
      expect(
        metricSum(mb, 'istio_tcp_connections_closed_total', {
          reporter: 'destination',
          destination_workload: 'db',
          response_flags: 'DENY',
        }),
      ).toBe(1);
    });
    await expect(mesh.connect('client-0', '127.0.32.11:9000')).rejects.toThrow(/not allowed/);
  });

  it('keeps the last good config after an invalid edit and reports the error', async () => {
    const b = mesh.ztunnel('node-b');
    const gen = await generationOf('node-b');
    const failures = async () =>
      metricSum(await scrape(mesh.metricsUrl('node-b')), 'meshd_config_reload_failures_total');
    const before = await failures();
    // A typo that would silently widen a policy if ignored: `principal` instead of `principals`.
    mesh.writeAtomically(
      buildMeshYaml({
        ...base,
        pods: [...base.pods, newPod],
        extra: [denyClientToDb.replace('principals:', 'principal:')],
      }),
    );
    const rejected = await b.waitForMsg(/^config reload rejected/);
    expect(String(rejected.msg)).toMatch(
      /mesh\.yaml: document \d+.*AuthorizationPolicy shop\/db-deny-client.*principal/,
    );
    expect(String(rejected.msg)).toMatch(/fix:/);
    expect(await failures()).toBe(before + 1);
    expect(await generationOf('node-b')).toBe(gen);
    // The DENY still applies, and other traffic still flows.
    await expect(mesh.connect('client-0', '127.0.32.11:9000')).rejects.toThrow(/not allowed/);
    expect(await mesh.roundTrip('client-0', '127.0.32.12:9000', 'unaffected')).toBe('unaffected');
    const dump = (await (await fetch(mesh.adminUrl('node-b', '/config_dump'))).json()) as {
      generation: number;
    };
    expect(dump.generation).toBe(gen);
  });
});
