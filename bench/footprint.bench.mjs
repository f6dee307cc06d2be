// Footprint bench: ambient (one ztunnel per node) against the sidecar model (one dedicated proxy
// per pod, `meshd ztunnel --dedicated`), for N meshed pods on one node plus a peer node.
//
// Both models carry the same traffic: every pod keeps one connection open through its own
// SOCKS5 entry and sends ~10 rps of 1 KB requests (1 KB responses) to a server pod on the peer
// node. The peer node runs the same thing in both models (one node-mode ztunnel for the server
// pod), so only the node under test differs, and only its proxies are measured:
// total RSS, anonymous RSS and PSS (idle, and the peak under traffic), and CPU per 1,000 rps.
//
// Run with `npm run bench:footprint` (or `npm run bench -- footprint [--quick]`).
// Addresses: node under test 127.0.65.1 with pods 127.0.65.10+, peer node 127.0.66.1 with the
// server pod 127.0.66.10.
import { clearInterval, setInterval } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { cpuMark, cpuSince, maxMemory, procfsAvailable, sumMemory } from './lib/procfs.mjs';
import { startLoadgen } from './lib/loadgen.mjs';
import { NAMESPACE, createMeshDir, startZtunnel } from './lib/mesh.mjs';
import { ProcessGroup, mapLimit, request, requireDist } from './lib/processes.mjs';
import { chartPath, machine, machineLine, mdTable, mib, pct, sleep, writeChart } from './lib/report.mjs';
import { logLineChart, mibLabel } from './lib/svg.mjs';

const SERVER = fileURLToPath(new URL('./lib/http-server.mjs', import.meta.url));
const APP_PORT = 8080;
/** Istio 1.24 "Performance and Scalability": per Envoy sidecar and per ztunnel, at 1000 rps. */
const ISTIO_SIDECAR_MB = 60;
const ISTIO_ZTUNNEL_MB = 12;
const ISTIO_ZTUNNEL_VCPU = 0.06;

const FULL = { counts: [1, 10, 50, 100], idleMs: 5_000, warmupMs: 5_000, durationMs: 20_000 };
const QUICK = { counts: [1, 10], idleMs: 1_000, warmupMs: 1_000, durationMs: 3_000 };
const COMMON = { ratePerPod: 10, sampleMs: 1_000, startConcurrency: 4, subnets: [65, 66] };

function topology(n, [a, b]) {
  const pods = Array.from({ length: n }, (_, i) => ({
    name: `client-${i}`,
    app: 'client',
    node: 'node-a',
    ip: `127.0.${a}.${10 + i}`,
  }));
  if (n > 240) throw new Error('at most 240 pods per node (one /24)');
  const server = { name: 'server-0', app: 'server', node: 'node-b', ip: `127.0.${b}.10` };
  return {
    nodes: [
      { name: 'node-a', ip: `127.0.${a}.1` },
      { name: 'node-b', ip: `127.0.${b}.1` },
    ],
    pods,
    server,
  };
}

/**
 * One model at one N: start the peer and the proxies, measure idle, then under traffic, then stop
 * them. The HTTP server and the load generator live for the whole bench (`shared`).
 */
async function measure(model, n, s, shared, log) {
  const topo = topology(n, s.subnets);
  const group = new ProcessGroup();
  const mesh = {
    configPath: shared.mesh.writeConfig({ nodes: topo.nodes, pods: [...topo.pods, topo.server] }),
    caDir: shared.mesh.caDir,
  };
  try {
    const peer = await startZtunnel(group, mesh, {
      name: 'peer ztunnel',
      node: 'node-b',
      readinessAddress: topo.nodes[1].ip,
    });
    const t0 = Date.now();
    const proxies =
      model === 'ambient'
        ? [
            await startZtunnel(group, mesh, {
              name: 'ztunnel node-a',
              node: 'node-a',
              readinessAddress: topo.nodes[0].ip,
            }),
          ]
        : await mapLimit(topo.pods, s.startConcurrency, (p) =>
            startZtunnel(group, mesh, {
              name: `sidecar ${p.name}`,
              dedicated: `${NAMESPACE}/${p.name}`,
              readinessAddress: p.ip,
            }),
          );
    const startupMs = Date.now() - t0;
    const pids = proxies.map((p) => p.pid);

    const idleMark = cpuMark(pids);
    await sleep(s.idleMs);
    const idleCpu = sum(cpuSince(idleMark));
    const idle = sumMemory(pids);
    const peerIdle = sumMemory([peer.pid]);

    let mark;
    let peerMark;
    let cpu = 0;
    let peerCpu = 0;
    let load;
    let peerLoad;
    let sampler;
    const sample = () => {
      load = maxMemory(load, sumMemory(pids));
      peerLoad = maxMemory(peerLoad, sumMemory([peer.pid]));
    };
    const result = await shared.loadgen.rate(
      {
        endpoints: topo.pods.map((p) => ({
          host: topo.server.ip,
          port: APP_PORT,
          socks: { host: p.ip, port: 15080, localAddress: p.ip },
        })),
        ratePerConnection: s.ratePerPod,
        warmupMs: s.warmupMs,
        durationMs: s.durationMs,
      },
      {
        onWindowStart: () => {
          mark = cpuMark(pids);
          peerMark = cpuMark([peer.pid]);
          sampler = setInterval(sample, s.sampleMs);
        },
        onWindowEnd: () => {
          clearInterval(sampler);
          cpu = sum(cpuSince(mark));
          peerCpu = sum(cpuSince(peerMark));
          sample();
        },
      },
    );
    clearInterval(sampler);
    const seconds = s.durationMs / 1000;
    const row = {
      model,
      n,
      processes: pids.length,
      startupMs,
      idle,
      load,
      idleVcpu: idleCpu / (s.idleMs / 1000),
      vcpu: cpu / seconds,
      cpuPer1000: cpu / seconds / (result.achievedRps / 1000),
      rps: result.achievedRps,
      targetRps: n * s.ratePerPod,
      missed: result.missed,
      errors: result.errors,
      errorSamples: result.errorSamples,
      latencyP50Ms: result.latency.p50Ms,
      latencyP99Ms: result.latency.p99Ms,
      peer: { idle: peerIdle, load: peerLoad, vcpu: peerCpu / seconds },
    };
    log(
      `${model} N=${n}: ${pids.length} proxies, private+shared-once idle ${mib(idle.shared1)} MiB, load ${mib(load.shared1)} MiB, ` +
        `RSS load ${mib(load.rss)} MiB, ${result.achievedRps.toFixed(0)} rps, CPU/1000 rps ${row.cpuPer1000.toFixed(3)}`,
    );
    return row;
  } finally {
    await group.close();
  }
}

const sum = (m) => [...m.values()].reduce((a, b) => a + b, 0);

/** A Node process doing nothing, for scale: how much of a proxy's RSS is just Node. */
async function bareNode() {
  const group = new ProcessGroup();
  try {
    const p = group.spawn('bare node', process.execPath, [
      '-e',
      'setInterval(() => {}, 1e6); console.log("up")',
    ]);
    await p.waitFor((l) => l.msg === 'up', 'up');
    await sleep(300);
    return sumMemory([p.pid]);
  } finally {
    await group.close();
  }
}

export async function run({ quick = false, log = () => {}, options = {} } = {}) {
  if (!procfsAvailable()) throw new Error('the footprint bench reads /proc/<pid>/smaps_rollup: Linux only');
  requireDist();
  const s = { ...COMMON, ...(quick ? QUICK : FULL), ...options };
  const m = machine();
  const bare = await bareNode();
  const rows = [];
  const group = new ProcessGroup();
  const mesh = await createMeshDir();
  try {
    const server = group.fork('server', SERVER);
    const serverIp = topology(1, s.subnets).server.ip;
    await request(server, { type: 'listen', addresses: [{ host: serverIp, port: APP_PORT }] }, 'listening');
    const shared = { mesh, loadgen: await startLoadgen(group) };
    for (const n of s.counts)
      for (const model of ['ambient', 'sidecar']) rows.push(await measure(model, n, s, shared, log));
  } finally {
    await group.close();
    mesh.cleanup();
  }

  const svgPath = writeChart(chartPath('footprint.svg', { quick, outDir: s.outDir }), chart(rows, s, m));
  const markdown = report(rows, s, m, bare, svgPath);
  return {
    title: 'Footprint: ambient (one ztunnel per node) against sidecars (one dedicated proxy per pod)',
    markdown,
    data: { machine: m, settings: s, bareNode: bare, rows, chart: svgPath },
  };
}

function find(rows, model, n) {
  return rows.find((r) => r.model === model && r.n === n);
}

export function report(rows, s, m, bare, svgPath) {
  const lines = [];
  lines.push(
    `Machine: ${machineLine(m)}.`,
    '',
    `Each of N meshed pods on the node under test keeps one connection open through its own SOCKS5 entry and sends ` +
      `${s.ratePerPod} rps of 1 KB requests (1 KB responses) to a pod on the peer node: N × ${s.ratePerPod} rps in all. ` +
      '**ambient**: one ztunnel serves the N pods; **sidecar**: N dedicated proxies (`meshd ztunnel --dedicated`), ' +
      'the same daemon serving one pod each. The peer node runs one ztunnel in both models and is not counted. ' +
      'Memory is summed over the proxies of the node under test, in MiB. Four measures, because most of a Node ' +
      "process's RSS is the shared node binary: **RSS** counts those shared pages once per process (it overstates N " +
      'sidecars); **anonymous** RSS is private memory only (V8 heap, buffers); **PSS** splits each shared page among all ' +
      'processes that map it (on this machine that includes the load generator, the HTTP server and the peer proxy, ' +
      'which also run Node, so it understates a lone ztunnel); **private + shared once** is anonymous memory plus one ' +
      'copy of the file-backed pages, what the proxies cost the node whatever else runs there (the headline measure).',
    '',
  );
  const mem = (x) => [mib(x.rss), mib(x.anon), mib(x.pss), mib(x.shared1)];
  const head = ['pods N', 'model', 'proxies', 'RSS', 'anonymous', 'PSS', 'private + shared once'];
  lines.push(
    `Idle: every proxy ready with its certificates, then ${s.idleMs / 1000} s without traffic. (V8 keeps start-up garbage — ` +
      'config parsing, certificate issuance — until allocation triggers a collection, so idle can exceed load.)',
    '',
    mdTable(
      head,
      rows.map((r) => [String(r.n), r.model, String(r.processes), ...mem(r.idle)]),
      ['r', 'l', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
    `Under load: the peak of samples every ${s.sampleMs / 1000} s over a ${s.durationMs / 1000} s window, after ${s.warmupMs / 1000} s ` +
      'of warm-up; CPU is utime + stime of the proxies over the window.',
    '',
    mdTable(
      [...head, 'vCPU per 1000 rps', 'rps achieved / target'],
      rows.map((r) => [
        String(r.n),
        r.model,
        String(r.processes),
        ...mem(r.load),
        r.cpuPer1000.toFixed(3),
        `${r.rps.toFixed(0)} / ${r.targetRps}${r.errors || r.missed ? ` (${r.errors} errors, ${r.missed} missed)` : ''}`,
      ]),
      ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  );
  const headlineN = s.counts.includes(50) ? 50 : Math.max(...s.counts);
  const a = find(rows, 'ambient', headlineN);
  const sc = find(rows, 'sidecar', headlineN);
  if (a && sc) {
    const ratio = (k) => `${pct(a.load[k] / sc.load[k])} (${mib(a.load[k])} against ${mib(sc.load[k])})`;
    lines.push(
      `**Headline: at N = ${headlineN} under load, ambient needs ${pct(a.load.shared1 / sc.load.shared1)} of the sidecar model's proxy memory** ` +
        `(private + shared once: ${mib(a.load.shared1)} MiB against ${mib(sc.load.shared1)} MiB). By the other measures: ` +
        `PSS ${ratio('pss')}, anonymous ${ratio('anon')}, RSS ${ratio('rss')}.`,
      '',
    );
    const per = (k) => sc.load[k] / sc.processes;
    lines.push(
      `One dedicated proxy at N = ${headlineN}, under load: RSS ${mib(per('rss'))} MiB, of which ${mib(per('anon'))} anonymous and ` +
        `${mib(per('file'))} file-backed (the node binary and libraries, shared between processes); PSS ${mib(per('pss'))} MiB. ` +
        `Istio publishes ${ISTIO_SIDECAR_MB} MB per Envoy sidecar: a meshd sidecar's private memory is ${(per('anon') / 1024 / ISTIO_SIDECAR_MB).toFixed(2)}× that ` +
        `and its RSS ${(per('rss') / 1024 / ISTIO_SIDECAR_MB).toFixed(2)}×. For scale, an empty Node ${m.node} process here: ` +
        `RSS ${mib(bare.rss)} MiB, anonymous ${mib(bare.anon)} MiB.`,
      '',
    );
  }
  const big = find(rows, 'ambient', Math.max(...s.counts));
  if (big) {
    lines.push(
      `**One ztunnel serving ${big.n} enrolled pods, idle: RSS ${mib(big.idle.rss)} MiB** (anonymous ${mib(big.idle.anon)}, PSS ${mib(big.idle.pss)}); ` +
        `under load ${mib(big.load.rss)} MiB RSS. Istio's ztunnel (Rust) is published at ${ISTIO_ZTUNNEL_MB} MB, and meshd's misses it: ` +
        `${(big.idle.rss / 1024 / ISTIO_ZTUNNEL_MB).toFixed(1)}× that by RSS, ${(big.idle.anon / 1024 / ISTIO_ZTUNNEL_MB).toFixed(1)}× by anonymous memory. ` +
        'A Node process cannot reach 12 MB: the runtime alone (V8 heap, code space, the mapped binary) is several times that, as the empty process shows. ' +
        `CPU: ${big.cpuPer1000.toFixed(3)} vCPU per 1000 rps for that ztunnel at ${big.rps.toFixed(0)} rps, ` +
        `${(big.cpuPer1000 / ISTIO_ZTUNNEL_VCPU).toFixed(1)}× the ${ISTIO_ZTUNNEL_VCPU} vCPU Istio publishes for its ztunnel. At small N the per-1000-rps figure is dominated by fixed per-process costs (timers, HTTP/2 keepalive PINGs) spread over few requests.`,
      '',
    );
  }
  const startup = (model) =>
    rows
      .filter((r) => r.model === model)
      .map((r) => `N=${r.n}: ${(r.startupMs / 1000).toFixed(1)} s`)
      .join(', ');
  lines.push(
    `Start-up of the node's proxies until all are ready: sidecar model (${s.startConcurrency} at a time) ${startup('sidecar')}; ambient ${startup('ambient')}.`,
    '',
    `Chart: \`${svgPath}\` (memory against N, log scale, with Istio's published ${ISTIO_SIDECAR_MB} MB per Envoy sidecar and ${ISTIO_ZTUNNEL_MB} MB per ztunnel).`,
  );
  return lines.join('\n');
}

export function chart(rows, s, m) {
  const series = [];
  const pts = (model, k, phase = 'load') =>
    rows.filter((r) => r.model === model).map((r) => [r.n, r[phase][k] / 1024]);
  const SIDE = '#c0392b';
  const AMB = '#1f6fb4';
  series.push({ label: 'sidecars: RSS', color: SIDE, dash: '7 4', points: pts('sidecar', 'rss') });
  series.push({
    label: 'sidecars: private + shared once',
    color: SIDE,
    width: 2.5,
    points: pts('sidecar', 'shared1'),
  });
  series.push({ label: 'sidecars: anonymous', color: SIDE, dash: '2 3', points: pts('sidecar', 'anon') });
  series.push({ label: 'ambient ztunnel: RSS', color: AMB, dash: '7 4', points: pts('ambient', 'rss') });
  series.push({
    label: 'ambient ztunnel: private + shared once',
    color: AMB,
    width: 2.5,
    points: pts('ambient', 'shared1'),
  });
  series.push({
    label: 'ambient ztunnel: anonymous',
    color: AMB,
    dash: '2 3',
    points: pts('ambient', 'anon'),
  });
  const xTicks = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100].filter((x) => x <= Math.max(100, ...s.counts));
  const ns = Array.from({ length: Math.max(...xTicks) }, (_, i) => i + 1);
  series.push({
    label: `Istio: ${ISTIO_SIDECAR_MB} MB × N Envoy sidecars`,
    color: '#7f7f7f',
    dash: '10 3 2 3',
    width: 1.5,
    marker: false,
    points: ns.map((n) => [n, ISTIO_SIDECAR_MB * n]),
  });
  series.push({
    label: `Istio: ${ISTIO_ZTUNNEL_MB} MB, one ztunnel`,
    color: '#2ca02c',
    dash: '10 3 2 3',
    width: 1.5,
    marker: false,
    points: [
      [1, ISTIO_ZTUNNEL_MB],
      [Math.max(...xTicks), ISTIO_ZTUNNEL_MB],
    ],
  });
  const all = series.flatMap((x) => x.points.map(([, y]) => y)).filter((y) => y > 0);
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const candidates = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const k of [1, 2, 5]) candidates.push(k * 10 ** e);
  // From the largest tick at or below the lowest value to the smallest at or above the highest.
  const first = candidates.findLastIndex((t) => t <= lo);
  const last = candidates.findIndex((t) => t >= hi);
  const yTicks = candidates.slice(Math.max(0, first), last + 1);
  return logLineChart({
    title: 'meshd proxy memory on one node: ambient (one ztunnel) vs sidecars (one proxy per pod)',
    subtitle: [
      `Under load: each pod ${s.ratePerPod} rps of 1 KB requests to a peer node. Sum over the node's proxies; log scale.`,
      `${machineLine(m)}.`,
    ],
    xLabel: 'meshed pods on the node (N)',
    yLabel: 'memory of the proxies (MiB, log scale)',
    xTicks,
    yTicks,
    yFormat: mibLabel,
    series,
    notes: [
      'RSS counts the shared Node binary once per process; anonymous is private memory; private + shared once adds one copy of the binary',
      '(for the single ambient ztunnel, RSS and private + shared once are the same line).',
      'Istio reference lines: Istio 1.24 "Performance and Scalability" (60 MB per Envoy sidecar, 12 MB per ztunnel, at 1000 rps).',
    ],
  });
}
