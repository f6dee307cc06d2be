import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileConfigSource } from './file-source.js';
import { ConfigValidationError } from './kube.js';
import type { MeshSnapshot } from './source.js';

const config = (podIp: string, extra = '') => `apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 127.0.0.2}]}
---
apiVersion: v1
kind: Namespace
metadata: {name: ns, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: ns}
spec: {nodeName: n1}
status: {podIP: ${podIp}}
${extra}`;

async function metricValue(registry: Registry, name: string): Promise<number> {
  const m = registry.getSingleMetric(name);
  const data = await m?.get();
  return data?.values[0]?.value ?? 0;
}

describe('FileConfigSource', () => {
  let dir: string;
  let file: string;
  let registry: Registry;
  let logLines: string[];
  let source: FileConfigSource | undefined;

  const make = (path = file, pollIntervalMs = 200) => {
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(chunk.toString());
        cb();
      },
    });
    source = new FileConfigSource({
      path,
      logger: pino({ level: 'info' }, stream),
      registry,
      debounceMs: 20,
      pollIntervalMs,
      now: () => 1_700_000_000_000,
    });
    return source;
  };
  const nextUpdate = (s: FileConfigSource) =>
    new Promise<MeshSnapshot>((res) => {
      const off = s.onUpdate((snap) => {
        off();
        res(snap);
      });
    });
  const nextError = (s: FileConfigSource) =>
    new Promise<unknown>((res) => {
      const off = s.onReloadError((e) => {
        off();
        res(e);
      });
    });
  /** Atomic replace: write a temp file and rename it over the config, as many editors do. */
  const renameReplace = async (content: string) => {
    const tmp = join(dir, `.edit-${Math.random().toString(36).slice(2)}`);
    await writeFile(tmp, content);
    await rename(tmp, file);
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshd-config-'));
    file = join(dir, 'mesh.yaml');
    registry = new Registry();
    logLines = [];
    await writeFile(file, config('127.0.1.1'));
  });

  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('initial load: generation 1, nodes, state and metrics', async () => {
    const s = make();
    const snap = await s.start();
    expect(snap.generation).toBe(1);
    expect(snap.loadedAtMs).toBe(1_700_000_000_000);
    expect(snap.nodes.get('n1')?.address).toBe('127.0.0.2');
    expect(snap.state.findWorkloadByIp('127.0.1.1')?.name).toBe('web-0');
    expect(snap.objects).toHaveLength(3);
    expect(s.current()).toBe(snap);
    expect(await metricValue(registry, 'meshd_config_generation')).toBe(1);
    expect(await metricValue(registry, 'meshd_config_last_reload_success_timestamp_seconds')).toBe(
      1_700_000_000,
    );
  });

  it('an invalid file at start rejects with ConfigValidationError', async () => {
    await writeFile(file, config('not-an-ip'));
    await expect(make().start()).rejects.toBeInstanceOf(ConfigValidationError);
  });

  it('a missing file at start rejects with a MeshError naming the path', async () => {
    await expect(make(join(dir, 'nope.yaml')).start()).rejects.toThrow(
      /cannot read config file .*nope\.yaml/,
    );
  });

  it('current() before start() throws', () => {
    expect(() => make().current()).toThrow(/before the first load/);
  });

  it('an in-place edit is applied', async () => {
    const s = make();
    await s.start();
    const update = nextUpdate(s);
    await writeFile(file, config('127.0.1.7'));
    const snap = await update;
    expect(snap.generation).toBe(2);
    expect(snap.state.findWorkloadByIp('127.0.1.7')?.name).toBe('web-0');
    expect(s.current()).toBe(snap);
    expect(await metricValue(registry, 'meshd_config_generation')).toBe(2);
  });

  it('an invalid edit keeps the last good snapshot, is logged and counted', async () => {
    const s = make();
    const first = await s.start();
    const failed = nextError(s);
    await renameReplace(config('127.0.1.999'));
    const err = await failed;
    expect(err).toBeInstanceOf(ConfigValidationError);
    expect(s.current()).toBe(first);
    expect(await metricValue(registry, 'meshd_config_reload_failures_total')).toBe(1);
    expect(logLines.join('')).toMatch(
      /config reload rejected; keeping generation 1: .*status\.podIP: \\"127\.0\.1\.999\\" is not an IP address/,
    );

    // A later good edit still applies.
    const update = nextUpdate(s);
    await renameReplace(config('127.0.1.8'));
    expect((await update).generation).toBe(2);
  });

  it('rename-replace editing is detected, repeatedly', async () => {
    const s = make();
    await s.start();
    for (const [i, ip] of ['127.0.1.20', '127.0.1.21'].entries()) {
      const update = nextUpdate(s);
      await renameReplace(config(ip));
      const snap = await update;
      expect(snap.generation).toBe(i + 2);
      expect(snap.state.findWorkloadByIp(ip)).toBeDefined();
    }
  });

  it('the directory watch alone sees rename-replace (poll effectively off)', async () => {
    const s = make(file, 3_600_000);
    await s.start();
    const update = nextUpdate(s);
    await renameReplace(config('127.0.1.30'));
    expect((await update).state.findWorkloadByIp('127.0.1.30')).toBeDefined();
  });

  it('unchanged bytes produce no new generation', async () => {
    const s = make();
    await s.start();
    let updates = 0;
    s.onUpdate(() => updates++);
    await writeFile(file, config('127.0.1.1'));
    await s.reload();
    expect(updates).toBe(0);
    expect(s.current().generation).toBe(1);
  });

  it('warnings of a loaded config are logged', async () => {
    await writeFile(
      file,
      config(
        '127.0.1.1',
        '---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: ns}\n',
      ),
    );
    const snap = await make().start();
    expect(snap.warnings).toHaveLength(1);
    expect(logLines.join('')).toMatch(/reads Pods, not controllers/);
  });
});
