/**
 * SIGTERM drain of real ztunnels (127.0.41.1 and 127.0.42.1), run with --drain-timeout: live
 * connections keep working until the deadline while new ones are refused; the process exits
 * once they end, or closes what remains at the deadline.
 */
import type net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Socks5Error } from '../../src/demo/socks5-client.js';
import { startTcpEcho, type RunningApp } from '../../src/demo/sample-apps.js';
import { Reply } from '../../src/ztunnel/index.js';
import { TestMesh } from '../helpers/mesh.js';
import { stopAll } from '../helpers/process.js';

let mesh: TestMesh;
let app: RunningApp;

beforeEach(async () => {
  mesh = new TestMesh({
    nodes: [
      { name: 'node-a', ip: '127.0.41.1' },
      { name: 'node-b', ip: '127.0.42.1' },
    ],
    namespaces: { shop: true },
    pods: [
      { name: 'client-0', namespace: 'shop', node: 'node-a', ip: '127.0.41.10', sa: 'client' },
      { name: 'db-0', namespace: 'shop', node: 'node-b', ip: '127.0.42.11', sa: 'db' },
    ],
  });
  app = await startTcpEcho({ host: '127.0.42.11', port: 9000 });
  await mesh.start(undefined, ['--drain-timeout', '2s']);
});

afterEach(async () => {
  await stopAll();
  await app.close();
  mesh.cleanup();
});

function echo(s: net.Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    s.once('data', (c: Buffer) => resolve(c.toString()));
    s.once('error', reject);
    s.write(text);
  });
}

describe('ztunnel drain on SIGTERM', () => {
  it('destination: keeps a live tunnel until the deadline, refuses new connections, then exits', async () => {
    const live = await mesh.connect('client-0', '127.0.42.11:9000');
    const liveClosed = new Promise<number>((resolve) => live.on('close', () => resolve(Date.now())));
    expect(await echo(live, 'one')).toBe('one');

    const b = mesh.ztunnel('node-b');
    const signalledAt = Date.now();
    b.signal('SIGTERM');
    await b.waitForMsg('draining');

    // The live tunnel still carries bytes during the drain.
    expect(await echo(live, 'two')).toBe('two');
    // New connections are refused: the destination's HBONE listener is closed.
    const refused = await mesh.connect('client-0', '127.0.42.11:9000').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Socks5Error);
    expect((refused as Socks5Error).reply).toBe(Reply.ConnectionRefused);

    const closedAt = await liveClosed;
    expect(closedAt - signalledAt).toBeGreaterThanOrEqual(1_500);
    expect(await b.exited).toBe(0);
    const drained = await b.waitForMsg('drained');
    expect(drained.graceful).toBe(false);
    const line = await b.waitForLog((l) => l.direction === 'inbound' && l['dst.workload'] === 'db-0');
    expect(line.bytes_recv).toBe(6);
  });

  it('source: exits as soon as the last live connection ends, before the deadline', async () => {
    const live = await mesh.connect('client-0', '127.0.42.11:9000');
    expect(await echo(live, 'hi')).toBe('hi');
    const a = mesh.ztunnel('node-a');
    a.signal('SIGTERM');
    await a.waitForMsg('draining');
    // New SOCKS5 clients are refused at the TCP level: the listener is closed.
    const refused = await mesh.connect('client-0', '127.0.42.11:9000').then(
      () => 'connected',
      (e: Error) => e.message,
    );
    expect(refused).toMatch(/ECONNREFUSED/);
    expect(await echo(live, 'bye')).toBe('bye');
    const endedAt = Date.now();
    live.end();
    expect(await a.exited).toBe(0);
    expect(Date.now() - endedAt).toBeLessThan(1_500);
    const drained = await a.waitForMsg('drained');
    expect(drained.graceful).toBe(true);
  });
});
