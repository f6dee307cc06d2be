// Latency and throughput bench: what the mesh adds over direct traffic, next to a native
// reference of the same shape, all measured in one session so the ratios hold on a noisy machine.
//
// Scenarios (client pod on node A, server pod on node B):
//   direct       client → server
//   HAProxy pair client → haproxy A → mTLS (TLS 1.3) → haproxy B → server (TCP mode, 1 thread each)
//   meshd L4     client → SOCKS5 of ztunnel A → HBONE (mTLS, HTTP/2 CONNECT) → ztunnel B → server
//   meshd L7     client → ztunnel A → HBONE → waypoint → HBONE → ztunnel B → server (when
//                `meshd waypoint` exists; otherwise reported as pending)
// For each: a fixed 1,000 rps of 1 KB requests and 1 KB responses (HTTP/1.1 keep-alive) over 1, 4
// and 16 connections, from a constant-rate generator in its own process (see lib/loadgen.mjs):
// p50/p90/p99, the latency added over direct, CPU per 1,000 rps per proxy process; the capacity
// of the path (closed loop over 16 connections: requests/s and CPU per 1,000 rps per proxy at
// saturation); then one single-stream bulk download, as a ratio to direct.
//
// Run with `npm run bench -- latency [--quick]`. Addresses: nodes 127.0.61.1 / 127.0.62.1, client
// pod 127.0.61.10, server pod 127.0.62.10, waypoint pod 127.0.62.30, HAProxy 127.0.61.20 /
// 127.0.62.20, service VIPs 127.10.6.10 (L4) and 127.10.6.11 (through the waypoint).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpuMark, cpuSince } from './lib/procfs.mjs';
import { haproxyVersion, startHaproxyPair } from './lib/haproxy.mjs';
import { startLoadgen } from './lib/loadgen.mjs';
import { createMeshDir, setLogLevel, startWaypoint, startZtunnel } from './lib/mesh.mjs';
import { ProcessGroup, request, requireDist } from './lib/processes.mjs';
import { chartPath, machine, machineLine, mdTable, ms, signedMs, writeChart } from './lib/report.mjs';
import { groupedBarPanels } from './lib/svg.mjs';

const SERVER = fileURLToPath(new URL('./lib/http-server.mjs', import.meta.url));
const WAYPOINT_CLI = new URL('../dist/cli/waypoint.js', import.meta.url);
const APP_PORT = 8080;
const SERVICE_PORT = 80;
/** Istio 1.22 "Performance and Scalability": two ztunnels add 0.17 ms at p90; 0.06 vCPU per 1000 rps. */
const ISTIO_L4_P90_MS = 0.17;
const ISTIO_ZTUNNEL_VCPU = 0.06;
/** Istio 1.24: a waypoint (Envoy, 2 workers) at 1000 rps, 1 KB, ~0.25 vCPU. */
const ISTIO_WAYPOINT_VCPU = 0.25;

const FULL = {
  connections: [1, 4, 16],
  rounds: 3,
  warmupMs: 2_000,
  durationMs: 6_000,
  capacityWarmupMs: 1_000,
  capacityMs: 5_000,
  bulkBytes: 256e6,
  bulkRepeats: 3,
};
const QUICK = {
  connections: [1, 4, 16],
  rounds: 1,
  warmupMs: 500,
  durationMs: 1_500,
  capacityWarmupMs: 300,
  capacityMs: 1_000,
  bulkBytes: 16e6,
  bulkRepeats: 1,
};
const COMMON = {
  rps: 1000,
  /** Connections of the closed-loop capacity run. */
  capacityConnections: 16,
  requestBytes: 1024,
  responseBytes: 1024,
  subnets: [61, 62],
  vip: '127.10.6.10',
  vipL7: '127.10.6.11',
};

const SCENARIOS = [
  { key: 'direct', label: 'direct', color: '#7f7f7f' },
  { key: 'haproxy', label: 'HAProxy pair (L4, mTLS)', color: '#e08a1e' },
  { key: 'meshd-l4', label: 'meshd L4 (2 ztunnels)', color: '#1f6fb4' },
  { key: 'meshd-l7', label: 'meshd L7 (ztunnels + waypoint)', color: '#8e44ad' },
];

async function setUp(group, s, log) {
  const [a, b] = s.subnets;
  const ip = {
    nodeA: `127.0.${a}.1`,
    nodeB: `127.0.${b}.1`,
    client: `127.0.${a}.10`,
    server: `127.0.${b}.10`,
    waypoint: `127.0.${b}.30`,
  };
  const mesh = await createMeshDir();
  mesh.configPath = mesh.writeConfig({
    nodes: [
      { name: 'node-a', ip: ip.nodeA },
      { name: 'node-b', ip: ip.nodeB },
    ],
    pods: [
      { name: 'client-0', app: 'client', node: 'node-a', ip: ip.client },
      { name: 'server-0', app: 'server', node: 'node-b', ip: ip.server },
      {
        name: 'waypoint-0',
        app: 'waypoint',
        node: 'node-b',
        ip: ip.waypoint,
        labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
      },
    ],
    gateways: [{ name: 'waypoint' }],
    // The same pods behind two Services: `server` straight to the pod (L4), `server-l7` through
    // the waypoint (istio.io/use-waypoint), so both scenarios reach the same server process.
    services: [
      { name: 'server', vip: s.vip, app: 'server', port: SERVICE_PORT, targetPort: APP_PORT },
      {
        name: 'server-l7',
        vip: s.vipL7,
        app: 'server',
        port: SERVICE_PORT,
        targetPort: APP_PORT,
        labels: { 'istio.io/use-waypoint': 'waypoint' },
      },
    ],
  });
  const server = group.fork('server', SERVER);
  await request(server, { type: 'listen', addresses: [{ host: ip.server, port: APP_PORT }] }, 'listening');
  const scenarios = {};
  scenarios.direct = {
    endpoint: { host: ip.server, port: APP_PORT, localAddress: ip.client },
    proxies: [],
  };

  const hv = s.skipHaproxy ? undefined : haproxyVersion();
  if (hv) {
    const pair = await startHaproxyPair(group, mesh, {
      aIp: `127.0.${a}.20`,
      bIp: `127.0.${b}.20`,
      app: { host: ip.server, port: APP_PORT },
    });
    scenarios.haproxy = {
      endpoint: { ...pair.entry, localAddress: ip.client },
      proxies: pair.procs.map((p, i) => ({ name: `haproxy ${'AB'[i]}`, pid: p.pid })),
      version: hv,
    };
  } else {
    scenarios.haproxy = {
      skipped: s.skipHaproxy ? 'skipped by option' : 'haproxy is not installed (apt-get install haproxy)',
    };
  }

  const [zA, zB] = await Promise.all([
    startZtunnel(group, mesh, { name: 'ztunnel A', node: 'node-a', readinessAddress: ip.nodeA }),
    startZtunnel(group, mesh, { name: 'ztunnel B', node: 'node-b', readinessAddress: ip.nodeB }),
  ]);
  scenarios['meshd-l4'] = {
    endpoint: {
      host: s.vip,
      port: SERVICE_PORT,
      socks: { host: ip.client, port: 15080, localAddress: ip.client },
    },
    proxies: [
      { name: 'ztunnel A', pid: zA.pid },
      { name: 'ztunnel B', pid: zB.pid },
    ],
  };
  if (existsSync(WAYPOINT_CLI)) {
    const wp = await startWaypoint(group, mesh, { name: 'waypoint' });
    scenarios['meshd-l7'] = {
      endpoint: {
        host: s.vipL7,
        port: SERVICE_PORT,
        socks: { host: ip.client, port: 15080, localAddress: ip.client },
      },
      proxies: [
        { name: 'ztunnel A', pid: zA.pid },
        { name: 'waypoint', pid: wp.pid },
        { name: 'ztunnel B', pid: zB.pid },
      ],
    };
  } else {
    scenarios['meshd-l7'] = { skipped: 'pending: `meshd waypoint` has not landed yet' };
  }
  // No access logs while measuring, as in Istio's default install.
  for (const admin of [ip.nodeA, ip.nodeB, ...(scenarios['meshd-l7'].skipped ? [] : [ip.waypoint])])
    await setLogLevel(admin, 'warn');
  log(
    `scenarios: ${Object.entries(scenarios)
      .map(([k, v]) => `${k}${v.skipped ? ' (skipped)' : ''}`)
      .join(', ')}`,
  );
  return { mesh, server, scenarios };
}

async function rateRun(loadgen, sc, conns, s, serverPid) {
  let mark;
  let cpu;
  const pids = [...sc.proxies.map((p) => p.pid), serverPid];
  const result = await loadgen.rate(
    {
      endpoints: Array.from({ length: conns }, () => sc.endpoint),
      ratePerConnection: s.rps / conns,
      warmupMs: s.warmupMs,
      durationMs: s.durationMs,
      requestBytes: s.requestBytes,
      responseBytes: s.responseBytes,
    },
    {
      onWindowStart: () => (mark = cpuMark(pids)),
      onWindowEnd: () => (cpu = cpuSince(mark)),
    },
  );
  const seconds = s.durationMs / 1000;
  const per1000 = (pid) => (cpu.get(pid) ?? 0) / seconds / (result.achievedRps / 1000);
  return {
    ...result,
    proxyCpuPer1000: sc.proxies.map((p) => ({ name: p.name, vcpu: per1000(p.pid) })),
    serverCpuPer1000: per1000(serverPid),
  };
}

/** Closed loop at saturation: requests/s, and each proxy's CPU per 1,000 requests completed. */
async function capacityRun(loadgen, sc, s) {
  let mark;
  let cpu;
  const result = await loadgen.closed(
    {
      endpoints: Array.from({ length: s.capacityConnections }, () => sc.endpoint),
      warmupMs: s.capacityWarmupMs,
      durationMs: s.capacityMs,
      requestBytes: s.requestBytes,
      responseBytes: s.responseBytes,
    },
    {
      onWindowStart: () => (mark = cpuMark(sc.proxies.map((p) => p.pid))),
      onWindowEnd: () => (cpu = cpuSince(mark)),
    },
  );
  const per1000 = (pid) => (result.completed > 0 ? ((cpu.get(pid) ?? 0) / result.completed) * 1000 : 0);
  return { ...result, proxyCpuPer1000: sc.proxies.map((p) => ({ name: p.name, vcpu: per1000(p.pid) })) };
}

export async function run({ quick = false, log = () => {}, options = {} } = {}) {
  requireDist();
  const s = { ...COMMON, ...(quick ? QUICK : FULL), ...options };
  const m = machine();
  const group = new ProcessGroup();
  let env;
  try {
    env = await setUp(group, s, log);
    const loadgen = await startLoadgen(group);
    const active = SCENARIOS.filter((x) => !env.scenarios[x.key].skipped);
    const rounds = {};
    const capacityRounds = {};
    for (let round = 0; round < s.rounds; round++) {
      for (const [ci, conns] of s.connections.entries()) {
        // Rotate the order per round and connection count, so no scenario always runs first or last.
        const order = active.map((_, i) => active[(i + ci + round) % active.length]);
        for (const x of order) {
          const r = await rateRun(loadgen, env.scenarios[x.key], conns, s, env.server.pid);
          ((rounds[x.key] ??= {})[conns] ??= []).push(r);
          log(
            `round ${round + 1} ${x.key} ×${conns}: p50 ${ms(r.latency.p50Ms)} p90 ${ms(r.latency.p90Ms)} p99 ${ms(r.latency.p99Ms)} ms, ` +
              `${r.achievedRps.toFixed(0)} rps${r.errors ? `, ${r.errors} errors` : ''}${r.missed ? `, ${r.missed} missed` : ''}`,
          );
        }
      }
      for (const x of active.map((_, i) => active[(i + round) % active.length])) {
        const r = await capacityRun(loadgen, env.scenarios[x.key], s);
        (capacityRounds[x.key] ??= []).push(r);
        log(
          `round ${round + 1} ${x.key} capacity ×${s.capacityConnections}: ${r.achievedRps.toFixed(0)} rps` +
            `${r.errors ? `, ${r.errors} errors` : ''}`,
        );
      }
    }
    const capacity = Object.fromEntries(
      Object.entries(capacityRounds).map(([k, rs]) => [k, combineCapacity(rs)]),
    );
    const results = Object.fromEntries(
      Object.entries(rounds).map(([k, byConns]) => [
        k,
        Object.fromEntries(Object.entries(byConns).map(([c, rs]) => [c, combineRounds(rs)])),
      ]),
    );
    const bulk = {};
    for (const x of active) {
      try {
        const runs = await loadgen.bulk({
          endpoint: env.scenarios[x.key].endpoint,
          bytes: s.bulkBytes,
          repeats: s.bulkRepeats,
        });
        bulk[x.key] = { runs, mbps: median(runs) };
        log(`${x.key} bulk: ${bulk[x.key].mbps.toFixed(0)} MB/s`);
      } catch (err) {
        bulk[x.key] = { error: String(err.message ?? err).split('\n')[0] };
        log(`${x.key} bulk failed: ${bulk[x.key].error}`);
      }
    }
    const svg = writeChart(
      chartPath('latency.svg', { quick, outDir: s.outDir }),
      chart(results, s, m, env.scenarios),
    );
    return {
      title: 'Latency and throughput: direct, HAProxy pair, meshd L4, meshd L7',
      markdown: report(results, capacity, bulk, s, m, env.scenarios, svg),
      data: {
        machine: m,
        settings: s,
        skipped: Object.fromEntries(
          Object.entries(env.scenarios)
            .filter(([, v]) => v.skipped)
            .map(([k, v]) => [k, v.skipped]),
        ),
        haproxyVersion: env.scenarios.haproxy.version,
        results,
        rounds,
        capacity,
        capacityRounds,
        bulk,
        chart: svg,
      },
    };
  } finally {
    await group.close();
    env?.mesh.cleanup();
  }
}

/**
 * A cell whose path could not keep up: fewer responses in the window than scheduled, or latency
 * from the schedule far above the time each request spent on the wire (a growing queue).
 */
function saturated(r) {
  return r.achievedRps < 0.97 * r.targetRps || r.latency.p50Ms > 10 * Math.max(1, r.service.p50Ms);
}

const rps = (x) => x.toLocaleString('en-US', { maximumFractionDigits: 0 });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/**
 * One cell from its rounds: the median of each percentile across rounds (one stall caused by
 * other work on a shared machine then moves one round, not the figure), summed errors and misses.
 */
function combineRounds(rs) {
  const first = rs[0];
  return {
    rounds: rs.length,
    connections: first.connections,
    targetRps: first.targetRps,
    achievedRps: median(rs.map((r) => r.achievedRps)),
    completed: rs.reduce((a, r) => a + r.completed, 0),
    missed: rs.reduce((a, r) => a + r.missed, 0),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    errorSamples: [...new Set(rs.flatMap((r) => r.errorSamples))].slice(0, 3),
    latency: Object.fromEntries(
      Object.keys(first.latency).map((k) => [k, median(rs.map((r) => r.latency[k]))]),
    ),
    service: Object.fromEntries(
      Object.keys(first.service).map((k) => [k, median(rs.map((r) => r.service[k]))]),
    ),
    proxyCpuPer1000: first.proxyCpuPer1000.map((p, i) => ({
      name: p.name,
      vcpu: median(rs.map((r) => r.proxyCpuPer1000[i].vcpu)),
    })),
    serverCpuPer1000: median(rs.map((r) => r.serverCpuPer1000)),
  };
}

/** Capacity from its rounds: the median requests/s and the median CPU per proxy. */
function combineCapacity(rs) {
  return {
    rounds: rs.length,
    connections: rs[0].connections,
    achievedRps: median(rs.map((r) => r.achievedRps)),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    errorSamples: [...new Set(rs.flatMap((r) => r.errorSamples))].slice(0, 3),
    proxyCpuPer1000: rs[0].proxyCpuPer1000.map((p, i) => ({
      name: p.name,
      vcpu: median(rs.map((r) => r.proxyCpuPer1000[i].vcpu)),
    })),
  };
}

function report(results, capacity, bulk, s, m, scenarios, svgPath) {
  const lines = [
    `Machine: ${machineLine(m)}.`,
    '',
    `A fixed ${s.rps.toLocaleString('en-US')} rps of ${s.requestBytes} B requests and ${s.responseBytes} B responses (HTTP/1.1 keep-alive, one request ` +
      `in flight per connection) from a constant-rate generator in its own process: every request has a scheduled send ` +
      `time, latency counts from that time (coordinated omission included), the schedule never catches up, HDR histogram. ` +
      `${s.warmupMs / 1000} s warm-up, then ${s.durationMs / 1000} s measured per cell, in ${s.rounds} round(s) with the scenarios interleaved ` +
      'in one session; each figure is the median over the rounds. ' +
      'Node timers fire with 1 ms granularity, so every scenario, direct included, carries up to ~1 ms of send delay: read the ' +
      '*added* columns. CPU is utime + stime of each proxy process over the window, per 1,000 rps achieved. ' +
      "Access logs off (log level warn), as in Istio's default install.",
    '',
  ];
  const rows = [];
  for (const x of SCENARIOS) {
    const sc = scenarios[x.key];
    if (sc.skipped) {
      rows.push([x.label, '—', '—', '—', '—', '—', '—', '—', '—', sc.skipped]);
      continue;
    }
    for (const conns of s.connections) {
      const r = results[x.key][conns];
      const d = results.direct[conns];
      if (r.completed === 0) {
        rows.push([
          x.label,
          String(conns),
          '—',
          '—',
          '—',
          '—',
          '—',
          '—',
          '—',
          `failed: ${r.errorSamples.join('; ')}`,
        ]);
        continue;
      }
      const added = (k) => (x.key === 'direct' ? '—' : signedMs(r.latency[k] - d.latency[k]));
      rows.push([
        x.label,
        String(conns),
        ms(r.latency.p50Ms),
        ms(r.latency.p90Ms),
        ms(r.latency.p99Ms),
        added('p50Ms'),
        added('p90Ms'),
        added('p99Ms'),
        r.proxyCpuPer1000.length ? r.proxyCpuPer1000.map((p) => p.vcpu.toFixed(3)).join(' / ') : '—',
        `${r.achievedRps.toFixed(0)}${r.errors ? `, ${r.errors} errors` : ''}${r.missed ? `, ${r.missed} missed` : ''}` +
          (saturated(r) ? ` — saturated (service time p50 ${ms(r.service.p50Ms)} ms)` : ''),
      ]);
    }
  }
  lines.push(
    mdTable(
      [
        'scenario',
        'conns',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'added p50',
        'added p90',
        'added p99',
        'vCPU per 1000 rps per proxy, in path order',
        'rps',
      ],
      rows,
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  );
  if (
    SCENARIOS.some(
      (x) => !scenarios[x.key].skipped && s.connections.some((c) => saturated(results[x.key][c])),
    )
  )
    lines.push(
      '*Saturated*: with one request in flight per connection, the path cannot carry the fixed rate over that many ' +
        'connections, so a queue builds and latency from the scheduled time grows with the run (coordinated omission ' +
        "counted); the service time is each request's own time on the wire.",
      '',
    );
  const dc = capacity.direct?.achievedRps;
  lines.push(
    `Capacity: a closed loop over ${s.capacityConnections} connections (each sends its next request as soon as a response completes), ` +
      `${s.capacityWarmupMs / 1000} s warm-up, then ${s.capacityMs / 1000} s measured, median of ${s.rounds} round(s). ` +
      'CPU per 1,000 requests at saturation, where work batches better than at a steady rate.',
    '',
    mdTable(
      ['scenario', 'requests/s', 'ratio to direct', 'vCPU per 1000 rps per proxy, in path order'],
      SCENARIOS.map((x) => {
        const c = capacity[x.key];
        if (scenarios[x.key].skipped) return [x.label, '—', '—', scenarios[x.key].skipped];
        if (!c || c.achievedRps === 0) return [x.label, '—', '—', `failed: ${c?.errorSamples.join('; ')}`];
        return [
          x.label,
          `${rps(c.achievedRps)}${c.errors ? `, ${c.errors} errors` : ''}`,
          dc ? (c.achievedRps / dc).toFixed(2) : '—',
          c.proxyCpuPer1000.length ? c.proxyCpuPer1000.map((p) => p.vcpu.toFixed(3)).join(' / ') : '—',
        ];
      }),
      ['l', 'r', 'r', 'r'],
    ),
    '',
  );
  const d = bulk.direct?.mbps;
  lines.push(
    `Single-stream bulk: one connection downloads ${(s.bulkBytes / 1e6).toFixed(0)} MB (median of ${s.bulkRepeats}).`,
    '',
    mdTable(
      ['scenario', 'MB/s', 'ratio to direct'],
      SCENARIOS.map((x) =>
        scenarios[x.key].skipped
          ? [x.label, '—', scenarios[x.key].skipped]
          : bulk[x.key].error
            ? [x.label, '—', `failed: ${bulk[x.key].error}`]
            : [x.label, bulk[x.key].mbps.toFixed(0), d ? `${(bulk[x.key].mbps / d).toFixed(2)}` : '—'],
      ),
      ['l', 'r', 'r'],
    ),
    '',
  );
  const l4 = results['meshd-l4']?.[4] ?? results['meshd-l4']?.[s.connections[0]];
  const conns = results['meshd-l4']?.[4] ? 4 : s.connections[0];
  const dd = results.direct?.[conns];
  if (l4 && dd) {
    const add = (k) => signedMs(l4.latency[k] - dd.latency[k]);
    const p90 = l4.latency.p90Ms - dd.latency.p90Ms;
    const cpus = l4.proxyCpuPer1000.map((p) => p.vcpu);
    const versus = (x, ref) => (x <= ref ? 'within it' : `${(x / ref).toFixed(1)}× it`);
    lines.push(
      `**ztunnel latency run (${conns} connections, ${s.rps} rps, 1 KB):** two ztunnels add ${add('p50Ms')} / ${add('p90Ms')} / ${add('p99Ms')} ms ` +
        `at p50 / p90 / p99 over direct. Istio's ztunnel reference is +${ISTIO_L4_P90_MS} ms at p90 for two hops: meshd is ${versus(p90, ISTIO_L4_P90_MS)}. ` +
        `CPU per 1000 rps per ztunnel: ${l4.proxyCpuPer1000.map((p) => `${p.name} ${p.vcpu.toFixed(3)}`).join(', ')} vCPU; ` +
        `Istio's reference is ${ISTIO_ZTUNNEL_VCPU}: meshd is ${versus(Math.max(...cpus), ISTIO_ZTUNNEL_VCPU)}.`,
      '',
    );
  }
  const l7 = results['meshd-l7']?.[conns];
  if (l7 && dd && l7.completed > 0) {
    const wp = l7.proxyCpuPer1000.find((p) => p.name === 'waypoint');
    lines.push(
      `**Through the waypoint (${conns} connections):** ${saturated(l7) ? 'saturated at this rate; service time' : 'latency'} ` +
        `p50 ${ms(saturated(l7) ? l7.service.p50Ms : l7.latency.p50Ms)} ms against ${ms(dd.latency.p50Ms)} ms direct; the waypoint uses ` +
        `${wp ? wp.vcpu.toFixed(3) : '?'} vCPU per 1000 rps (Istio publishes ${ISTIO_WAYPOINT_VCPU} vCPU per 1000 rps for its Envoy waypoint).`,
      '',
    );
  }
  const c7 = capacity['meshd-l7'];
  const c4 = capacity['meshd-l4'];
  const wpSat = c7?.proxyCpuPer1000.find((p) => p.name === 'waypoint');
  if (c7 && c4 && wpSat && c7.achievedRps > 0 && c4.achievedRps > 0)
    lines.push(
      `**Waypoint capacity (${s.capacityConnections} connections, closed loop):** ${rps(c7.achievedRps)} requests/s through the waypoint ` +
        `against ${rps(c4.achievedRps)} L4 only${dc ? ` and ${rps(dc)} direct` : ''}; at saturation the waypoint uses ` +
        `${wpSat.vcpu.toFixed(3)} vCPU per 1000 rps.`,
      '',
    );
  if (scenarios.haproxy.version)
    lines.push(
      `HAProxy ${scenarios.haproxy.version}, \`nbthread 1\`, TCP mode, mutual TLS 1.3 between the pair.`,
      '',
    );
  lines.push(`Chart: \`${svgPath}\`.`);
  return lines.join('\n');
}

function chart(results, s, m, scenarios) {
  const panel = (k, title) => ({
    title,
    groups: s.connections.map((c) => ({
      label: `${c} conn${c === 1 ? '' : 's'}`,
      values: SCENARIOS.map((x) =>
        scenarios[x.key].skipped
          ? scenarios[x.key].skipped.startsWith('pending')
            ? 'pending'
            : 'skipped'
          : results[x.key][c].completed === 0
            ? 'failed'
            : saturated(results[x.key][c])
              ? 'saturated'
              : results[x.key][c].latency[k],
      ),
    })),
  });
  return groupedBarPanels({
    title: `Latency at a fixed ${s.rps.toLocaleString('en-US')} rps, 1 KB requests and responses`,
    subtitle: [
      "Measured from each request's scheduled send time (coordinated omission counted); lower is better.",
      `${machineLine(m)}.`,
    ],
    yLabel: 'latency (ms)',
    bars: SCENARIOS.map((x) => ({ label: x.label, color: x.color })),
    panels: [panel('p50Ms', 'p50'), panel('p90Ms', 'p90'), panel('p99Ms', 'p99')],
    valueFormat: (v) => `${Math.round(v * 100) / 100}`,
    notes: [
      'Every scenario includes up to about 1 ms of generator send delay (Node timer granularity); compare against direct. Each panel has its own scale.',
      ...Object.entries(scenarios)
        .filter(([, v]) => v.skipped)
        .map(([k, v]) => `${SCENARIOS.find((x) => x.key === k)?.label}: ${v.skipped}.`),
    ],
  });
}
