/**
 * Smoke test of the bench harness, so that it cannot rot: CI never runs the full benchmarks, but
 * it runs the footprint and latency benches in a tiny configuration (one pod, one connection
 * count, about a second of load each) and checks the shape of what they produce: non-empty
 * tables, finite positive figures, and charts that are well-formed SVG.
 *
 * Addresses (used by no other test, and not by the full benches, so a bench run and the tests can
 * overlap): footprint 127.0.67.x / 127.0.68.x, latency 127.0.69.x / 127.0.70.x, VIPs 127.10.6.20-21.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/process.js';
import { parseXmlShape } from './xml.js';

interface BenchResult {
  title: string;
  markdown: string;
  data: Record<string, unknown>;
}
interface BenchModule {
  run(opts: {
    quick: boolean;
    log: (...a: unknown[]) => void;
    options: Record<string, unknown>;
  }): Promise<BenchResult>;
}
interface Memory {
  rss: number;
  anon: number;
  pss: number;
  shared1: number;
}
interface FootprintRow {
  model: string;
  n: number;
  processes: number;
  idle: Memory;
  load: Memory;
  cpuPer1000: number;
  rps: number;
  errors: number;
}
interface Latency {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
}
interface CapacityResult {
  achievedRps: number;
  errors: number;
  proxyCpuPer1000: Array<{ name: string; vcpu: number }>;
}
interface RateResult {
  achievedRps: number;
  errors: number;
  latency: Latency;
  proxyCpuPer1000: Array<{ name: string; vcpu: number }>;
}

const haproxyMissing = (() => {
  try {
    execFileSync('haproxy', ['-v'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'haproxy is not installed (apt-get install haproxy)';
  }
})();

// The benches read /proc (memory, CPU) and bind many 127.x addresses: Linux only.
const notLinux =
  process.platform === 'linux' ? undefined : `the benches need Linux /proc (this is ${process.platform})`;

const load = async (name: string) =>
  (await import(pathToFileURL(join(REPO, 'bench', `${name}.bench.mjs`)).href)) as BenchModule;

/** Every number in `value` (recursively) is finite and at least `min`. */
function numbersIn(value: unknown, path = ''): Array<[string, number]> {
  if (typeof value === 'number') return [[path, value]];
  if (value && typeof value === 'object')
    return Object.entries(value).flatMap(([k, v]) => numbersIn(v, `${path}.${k}`));
  return [];
}

function tableRows(markdown: string, header: string): string[][] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.startsWith('|') && l.includes(header));
  expect(start, `table with "${header}"`).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (const l of lines.slice(start + 2)) {
    if (!l.startsWith('|')) break;
    rows.push(
      l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    );
  }
  return rows;
}

let out = '';
const logs: string[] = [];
const log = (...a: unknown[]) => logs.push(a.join(' '));

beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), 'meshd-bench-smoke-'));
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe.skipIf(notLinux !== undefined)(
  `bench harness smoke${notLinux ? ` (skipped: ${notLinux})` : ''}`,
  () => {
    let footprint: BenchResult;
    let latency: BenchResult;

    it('footprint: both models at N=1, memory and CPU figures, table and chart', async () => {
      footprint = await (
        await load('footprint')
      ).run({
        quick: true,
        log,
        options: {
          counts: [1],
          idleMs: 200,
          warmupMs: 300,
          durationMs: 1000,
          subnets: [67, 68],
          outDir: out,
        },
      });
      const rows = footprint.data.rows as FootprintRow[];
      expect(rows.map((r) => [r.model, r.n, r.processes])).toEqual([
        ['ambient', 1, 1],
        ['sidecar', 1, 1],
      ]);
      for (const r of rows) {
        for (const phase of [r.idle, r.load]) {
          for (const [k, v] of numbersIn(phase)) expect(Number.isFinite(v) && v >= 0, k).toBe(true);
          for (const k of ['rss', 'anon', 'pss', 'shared1'] as const) expect(phase[k], k).toBeGreaterThan(0);
        }
        // A Node process is at least several MiB resident, and RSS ≥ anonymous.
        expect(r.load.rss).toBeGreaterThan(8 * 1024);
        expect(r.load.rss).toBeGreaterThanOrEqual(r.load.anon);
        expect(r.rps).toBeGreaterThan(0);
        expect(r.errors).toBe(0);
        expect(Number.isFinite(r.cpuPer1000) && r.cpuPer1000 >= 0).toBe(true);
      }
      expect(tableRows(footprint.markdown, 'private + shared once')).toHaveLength(2);
      expect(tableRows(footprint.markdown, 'vCPU per 1000 rps')).toHaveLength(2);
      expect(footprint.markdown).toMatch(/\*\*Headline: at N = 1 under load, ambient needs \d+ %/);
      expect(footprint.markdown).toMatch(/One ztunnel serving 1 enrolled pods, idle: RSS [\d.]+ MiB/);
      expect(footprint.markdown).toMatch(/Machine: .*Node v\d+/);

      const svg = readFileSync(join(out, 'footprint.svg'), 'utf8');
      const shape = parseXmlShape(svg);
      expect(shape.root).toBe('svg');
      expect(shape.elements.filter((e) => e === 'path').length).toBeGreaterThanOrEqual(8);
      expect(svg).toContain('Istio: 60 MB × N Envoy sidecars');
      expect(svg).toContain('Istio: 12 MB, one ztunnel');
    });

    it('latency: direct, meshd L4 and L7 at a fixed rate, capacity, bulk ratio, table and chart', async () => {
      latency = await (
        await load('latency')
      ).run({
        quick: true,
        log,
        options: {
          connections: [4],
          warmupMs: 200,
          durationMs: 700,
          bulkBytes: 4e6,
          bulkRepeats: 1,
          capacityConnections: 4,
          capacityWarmupMs: 200,
          capacityMs: 500,
          subnets: [69, 70],
          vip: '127.10.6.20',
          vipL7: '127.10.6.21',
          skipHaproxy: haproxyMissing !== undefined,
          outDir: out,
        },
      });
      const results = latency.data.results as Record<string, Record<string, RateResult>>;
      for (const key of ['direct', 'meshd-l4']) {
        const r = results[key]?.['4'];
        expect(r, key).toBeDefined();
        if (!r) continue;
        expect(r.errors).toBe(0);
        expect(r.achievedRps).toBeGreaterThan(0);
        for (const [k, v] of numbersIn(r.latency)) {
          expect(Number.isFinite(v), k).toBe(true);
          expect(v, k).toBeGreaterThan(0);
        }
        expect(r.latency.p99Ms).toBeGreaterThanOrEqual(r.latency.p50Ms);
      }
      expect(results['meshd-l4']?.['4']?.proxyCpuPer1000.map((p) => p.name)).toEqual([
        'ztunnel A',
        'ztunnel B',
      ]);
      const bulk = latency.data.bulk as Record<string, { mbps: number }>;
      expect(bulk.direct?.mbps).toBeGreaterThan(0);
      expect(bulk['meshd-l4']?.mbps).toBeGreaterThan(0);

      const rows = tableRows(latency.markdown, 'added p90');
      expect(rows.find((r) => r[0] === 'meshd L4 (2 ztunnels)')?.[5]).toMatch(/^[+−]\d/);
      // The waypoint scenario is measured when `meshd waypoint` is built, and says why not otherwise.
      const l7 = rows.find((r) => r[0]?.startsWith('meshd L7'));
      const waypointBuilt = existsSync(join(REPO, 'dist', 'cli', 'waypoint.js'));
      expect(l7?.[9] ?? '').toMatch(waypointBuilt ? /^\d/ : /^pending/);
      if (waypointBuilt) {
        const r = results['meshd-l7']?.['4'];
        expect(r?.errors).toBe(0);
        expect(r?.achievedRps).toBeGreaterThan(0);
        expect(r?.proxyCpuPer1000.map((p) => p.name)).toEqual(['ztunnel A', 'waypoint', 'ztunnel B']);
        expect(bulk['meshd-l7']?.mbps).toBeGreaterThan(0);
      }
      const capacity = latency.data.capacity as Record<string, CapacityResult>;
      for (const key of ['direct', 'meshd-l4', ...(waypointBuilt ? ['meshd-l7'] : [])]) {
        expect(capacity[key]?.errors, key).toBe(0);
        expect(capacity[key]?.achievedRps, key).toBeGreaterThan(0);
      }
      expect(capacity['meshd-l4']?.proxyCpuPer1000.every((p) => p.vcpu > 0)).toBe(true);
      const capRows = tableRows(latency.markdown, 'ratio to direct | vCPU');
      expect(capRows.find((r) => r[0] === 'direct')?.[2]).toBe('1.00');
      expect(capRows.find((r) => r[0] === 'meshd L4 (2 ztunnels)')?.[3]).toMatch(/^\d\.\d{3} \/ \d\.\d{3}$/);
      if (waypointBuilt)
        expect(latency.markdown).toMatch(
          /\*\*Waypoint capacity \(4 connections, closed loop\):\*\* [\d,]+ requests\/s/,
        );
      expect(latency.markdown).toMatch(/ztunnel latency run \(4 connections/);
      expect(tableRows(latency.markdown, 'MB/s').length).toBeGreaterThanOrEqual(3);

      const svg = readFileSync(join(out, 'latency.svg'), 'utf8');
      expect(parseXmlShape(svg).root).toBe('svg');
      expect(svg).toContain('meshd L4 (2 ztunnels)');
    });

    it.skipIf(haproxyMissing !== undefined)(
      `latency: the HAProxy pair runs as a scenario${haproxyMissing ? ` (skipped: ${haproxyMissing})` : ''}`,
      () => {
        const r = (latency.data.results as Record<string, Record<string, RateResult>>).haproxy?.['4'];
        expect(r?.errors).toBe(0);
        expect(r?.proxyCpuPer1000).toHaveLength(2);
        expect(r?.latency.p50Ms).toBeGreaterThan(0);
        expect(latency.data.haproxyVersion).toMatch(/^\d/);
      },
    );
  },
);

describe('parseXmlShape', () => {
  it.each([
    ['<svg><g><rect/></g></svg>', undefined],
    ['<?xml version="1.0"?>\n<svg a="1" b=\'2\'>x &amp; y &#215;</svg>', undefined],
    ['<svg><g></svg>', /does not close/],
    ['<svg>a & b</svg>', /bad entity/],
    ['<svg a=1/>', /not quoted/],
    ['<svg a="1" a="2"/>', /duplicate attribute/],
    ['<svg/><svg/>', /second root/],
    ['<svg>', /unclosed/],
  ])('%s', (text, error) => {
    if (error) expect(() => parseXmlShape(text)).toThrow(error);
    else expect(parseXmlShape(text).root).toBe('svg');
  });
});
