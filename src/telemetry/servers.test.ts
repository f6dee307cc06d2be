import type http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { Counter } from 'prom-client';
import { createAdminServer } from './admin.js';
import { DrainController } from './drain.js';
import { closeServer, listen } from './http-server.js';
import { createLogger } from './logger.js';
import { createRegistry } from './metrics.js';
import { createMetricsServer } from './metrics-server.js';
import { Readiness, createReadinessServer } from './readiness.js';
import { Writable } from 'node:stream';

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => closeServer(s)));
});

async function start(server: http.Server): Promise<string> {
  servers.push(server);
  const addr = await listen(server, { host: '127.0.0.1', port: 0 }, 'test');
  return `http://127.0.0.1:${addr.port}`;
}

function sink(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { stream, lines };
}

describe('admin server', () => {
  it('serves config_dump, sets the log level, rejects bad methods and levels, and quits', async () => {
    const out = sink();
    const logger = createLogger({ level: 'info', destination: out.stream });
    let quits = 0;
    const base = await start(
      createAdminServer({ logger, configDump: () => ({ workloads: [{ name: 'a' }] }), quit: () => quits++ }),
    );
    const dump = await fetch(`${base}/config_dump`);
    expect(dump.status).toBe(200);
    expect(await dump.json()).toEqual({ workloads: [{ name: 'a' }] });

    expect((await fetch(`${base}/logging?level=debug`)).status).toBe(405);
    const show = await fetch(`${base}/logging`, { method: 'POST' });
    expect(await show.text()).toBe('current log level is info\n');
    const set = await fetch(`${base}/logging?level=debug`, { method: 'POST' });
    expect(set.status).toBe(200);
    expect(logger.level).toBe('debug');
    const child = logger.child({ component: 'x' });
    expect(child.isLevelEnabled('debug')).toBe(true);
    const bad = await fetch(`${base}/logging?level=verbose`, { method: 'POST' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/invalid level "verbose": use one of fatal, error/);
    expect(logger.level).toBe('debug');

    expect((await fetch(`${base}/quitquitquit`)).status).toBe(405);
    expect(quits).toBe(0);
    const quit = await fetch(`${base}/quitquitquit`, { method: 'POST' });
    expect(await quit.text()).toBe('shutdown now\n');
    expect(quits).toBe(1);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect(out.lines.some((l) => l.includes('log level changed'))).toBe(true);
  });
});

describe('readiness server', () => {
  it('reports pending tasks until all are done', async () => {
    const r = new Readiness();
    const doneConfig = r.register('config');
    r.register('certificates');
    const base = await start(createReadinessServer(r));
    let res = await fetch(`${base}/healthz/ready`);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe('not ready, pending: certificates, config\n');
    doneConfig();
    r.done('certificates');
    res = await fetch(`${base}/healthz/ready`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ready\n');
    expect((await fetch(`${base}/healthz/ready`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/other`)).status).toBe(404);
  });
});

describe('metrics server', () => {
  it('serves the injected registry on both paths, gzip on request', async () => {
    const registry = createRegistry({ component: 'ztunnel', version: 'test' });
    new Counter({ name: 'meshd_test_total', help: 'test', registers: [registry] }).inc(3);
    const base = await start(createMetricsServer(registry));
    for (const path of ['/metrics', '/stats/prometheus']) {
      const res = await fetch(`${base}${path}`, { headers: { 'accept-encoding': 'identity' } });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toContain('meshd_test_total 3');
      expect(text).toContain('istio_build{component="ztunnel",tag="test"} 1');
    }
    const raw = await new Promise<{ enc: string | undefined; body: Buffer }>((resolve, reject) => {
      void import('node:http').then(({ get }) =>
        get(`${base}/metrics`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ enc: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
        }).on('error', reject),
      );
    });
    expect(raw.enc).toBe('gzip');
    expect(gunzipSync(raw.body).toString()).toContain('meshd_test_total 3');
    expect((await fetch(`${base}/`)).status).toBe(404);
  });

  it('reports a port in use with a fix', async () => {
    const registry = createRegistry();
    const a = createMetricsServer(registry);
    servers.push(a);
    const addr = await listen(a, { host: '127.0.0.1', port: 0 }, 'metrics');
    const b = createMetricsServer(registry);
    await expect(listen(b, { host: '127.0.0.1', port: addr.port }, 'metrics')).rejects.toThrow(
      /cannot listen for metrics on 127\.0\.0\.1:\d+: EADDRINUSE/,
    );
  });
});

describe('drain', () => {
  it('finishes early when every part drains, and force-closes at the deadline otherwise', async () => {
    const events: string[] = [];
    const quick = new DrainController();
    quick.add({
      drain: () => Promise.resolve(events.push('drained')).then(() => undefined),
      forceClose: () => void events.push('forced'),
    });
    const r1 = await quick.drain(5_000);
    expect(r1.graceful).toBe(true);
    expect(events).toEqual(['drained', 'forced']);

    const slow = new DrainController();
    let release: () => void = () => undefined;
    slow.add({
      drain: () => new Promise<void>((resolve) => (release = resolve)),
      forceClose: () => {
        events.push('slow forced');
        release();
      },
    });
    const p = slow.drain(50);
    expect(slow.draining).toBe(true);
    expect(slow.drain(50)).toBe(p);
    const r2 = await p;
    expect(r2.graceful).toBe(false);
    expect(r2.durationMs).toBeGreaterThanOrEqual(45);
    expect(events).toContain('slow forced');
  });
});
