// Waypoint bench: HTTP through one waypoint against the same traffic L4 only and direct, in the
// same run (the machine is shared and noisy: read the ratios).
//
// Scenarios (client pod on node-a, server pod on node-b, 1 KB request body, 1 KB response,
// HTTP/1.1 keep-alive):
//   direct  client → server
//   L4      client → SOCKS5 of ztunnel A → HBONE → ztunnel B → server     (Service opted out)
//   L7      client → ztunnel A → HBONE → waypoint → HBONE → ztunnel B → server
// Measures, per scenario:
//   1. throughput: closed loop over 16 connections; requests/s and CPU per 1,000 rps of each
//      mesh process (from /proc/<pid>/stat over the window);
//   2. latency at a fixed 1,000 rps over 16 connections: an open-loop generator on a fixed
//      schedule with no catch-up (a slot more than 5 ms late is skipped and counted, never sent
//      in a burst), latency from the scheduled time, p50/p90/p99 from an HDR histogram
//      (hdr-histogram-js).
// The load generator and the server each run in their own process.
//
// Run with `npm run bench -- waypoint [--quick]`. Addresses: nodes 127.0.63.1 / 127.0.64.1,
// client pod 127.0.63.10, server pod 127.0.64.10, waypoint pod 127.0.64.30, VIPs 127.10.63.x.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = fileURLToPath(import.meta.url);
const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const SOCKS = new URL('../dist/demo/socks5-client.js', import.meta.url).href;
const CLK_TCK = 100;
/** Istio's published waypoint cost: about 0.25 vCPU per 1,000 rps. */
const ISTIO_WAYPOINT_VCPU = 0.25;

const IP = {
  nodeA: '127.0.63.1',
  nodeB: '127.0.64.1',
  client: '127.0.63.10',
  server: '127.0.64.10',
  waypoint: '127.0.64.30',
  vipL4: '127.10.63.1',
  vipL7: '127.10.63.2',
};
const APP_PORT = 8080;
/** A scheduled request later than this is skipped: timer jitter on a busy machine, no bursts. */
const LATE_SLOT_MS = 5;
const BODY = 1024;

const FULL = { rounds: 3, warmupMs: 2000, throughputMs: 5000, latencyMs: 8000, connections: 16, rps: 1000 };
const QUICK = { rounds: 1, warmupMs: 500, throughputMs: 1500, latencyMs: 2000, connections: 16, rps: 1000 };

function meshYaml() {
  const pod = (name, node, ip, labels, sa) =>
    `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: bench, labels: ${JSON.stringify(labels)}}\nspec: {nodeName: ${node}, serviceAccountName: ${sa}}\nstatus: {podIP: ${ip}}`;
  const svc = (name, vip, labels) =>
    `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: bench, labels: ${JSON.stringify(labels)}}\nspec: {clusterIP: ${vip}, selector: {app: server}, ports: [{name: http, port: 80, targetPort: ${APP_PORT}}]}`;
  return [
    `apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\nstatus: {addresses: [{type: InternalIP, address: ${IP.nodeA}}]}`,
    `apiVersion: v1\nkind: Node\nmetadata: {name: node-b}\nstatus: {addresses: [{type: InternalIP, address: ${IP.nodeB}}]}`,
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: bench, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}`,
    `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: waypoint, namespace: bench}\nspec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}`,
    pod(
      'waypoint-0',
      'node-b',
      IP.waypoint,
      { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
      'waypoint',
    ),
    pod('client-0', 'node-a', IP.client, { app: 'client' }, 'client'),
    pod('server-0', 'node-b', IP.server, { app: 'server' }, 'server'),
    svc('server-l4', IP.vipL4, { 'istio.io/use-waypoint': 'none' }),
    svc('server-l7', IP.vipL7, {}),
    // An L7 route, so the waypoint does real routing work (match, filter) on every request.
    `apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: server-l7, namespace: bench}\nspec:\n  parentRefs: [{group: "", kind: Service, name: server-l7, port: 80}]\n  rules:\n  - matches: [{path: {type: PathPrefix, value: /}}]\n    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-bench, value: "1"}]}}]\n    backendRefs: [{name: server-l7, port: 80}]`,
  ].join('\n---\n');
}

// ---------------------------------------------------------------- child processes

function spawnNode(args, name, log) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters = [];
  child.stdout.setEncoding('utf8').on('data', (c) => {
    out += c;
    if (out.length > 1e6) out = out.slice(-1e5);
    for (const w of [...waiters]) w();
  });
  child.stderr.setEncoding('utf8').on('data', (c) => log(`${name}: ${c.trim()}`));
  const exited = new Promise((r) => child.once('exit', r));
  return {
    child,
    name,
    exited,
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: timed out waiting for ${re}`)), timeoutMs);
        const check = () => {
          const m = re.exec(out);
          if (!m) return;
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(check), 1);
          resolve(m);
        };
        waiters.push(check);
        check();
        void exited.then(() => reject(new Error(`${name} exited before ${re}`)));
      });
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

// ---------------------------------------------------------------- load generator (own process)

/** A minimal HTTP/1.1 keep-alive connection: one request in flight, fixed-length responses. */
class Conn {
  constructor(socket, request) {
    this.socket = socket;
    this.request = request;
    this.busy = false;
    this.buf = Buffer.alloc(0);
    this.done = undefined;
    socket.setNoDelay(true);
    socket.on('data', (c) => this.onData(c));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }
  send() {
    this.busy = true;
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed) {
        reject(new Error('connection closed'));
        return;
      }
      this.done = { resolve, reject };
      this.socket.write(this.request);
    });
  }
  onData(c) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, c]) : c;
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buf.subarray(0, end).toString('latin1');
    const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.buf.length < end + 4 + len) return;
    const status = Number(head.slice(9, 12));
    this.buf = this.buf.subarray(end + 4 + len);
    const d = this.done;
    this.done = undefined;
    this.busy = false;
    d?.resolve(status);
  }
  fail(err) {
    const d = this.done;
    this.done = undefined;
    this.busy = false;
    d?.reject(err);
  }
}

async function loadgen(spec) {
  const hdr = await import('hdr-histogram-js');
  const { socksConnect } = await import(SOCKS);
  const request = Buffer.concat([
    Buffer.from(
      `POST /bench HTTP/1.1\r\nhost: ${spec.host}\r\ncontent-type: application/octet-stream\r\ncontent-length: ${BODY}\r\n\r\n`,
    ),
    Buffer.alloc(BODY, 97),
  ]);
  const open = async () => {
    const socket = spec.socks
      ? await socksConnect({ host: IP.client, port: 15080, localAddress: IP.client }, `${spec.host}:80`)
      : net.connect({ host: spec.host, port: APP_PORT });
    if (!spec.socks) await new Promise((r, j) => socket.once('connect', r).once('error', j));
    return new Conn(socket, request);
  };
  const conns = await Promise.all(Array.from({ length: spec.connections }, open));
  const send = (status) => {
    if (status !== 200) throw new Error(`status ${status}`);
  };
  // Warm up: pools, JIT, TLS sessions.
  const warmEnd = performance.now() + spec.warmupMs;
  await Promise.all(
    conns.map(async (c) => {
      while (performance.now() < warmEnd) send(await c.send());
    }),
  );
  process.send({ phase: 'measuring' });
  let result;
  if (spec.mode === 'throughput') {
    let n = 0;
    const t0 = performance.now();
    const end = t0 + spec.durationMs;
    await Promise.all(
      conns.map(async (c) => {
        while (performance.now() < end) {
          send(await c.send());
          n++;
        }
      }),
    );
    result = { requests: n, seconds: (performance.now() - t0) / 1000 };
  } else {
    const h = hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: 60_000_000,
      numberOfSignificantValueDigits: 3,
    });
    const interval = 1000 / spec.rps;
    const t0 = performance.now();
    const total = Math.floor(spec.durationMs / interval);
    const idle = [...conns];
    const queue = [];
    let sent = 0;
    let skipped = 0;
    let completed = 0;
    let errors = 0;
    const dispatch = () => {
      while (queue.length > 0 && idle.length > 0) {
        const scheduled = queue.shift();
        // FIFO, so every connection stays in use (none idles long enough to be closed).
        const c = idle.shift();
        c.send().then(
          (status) => {
            if (status !== 200) errors++;
            h.recordValue(Math.max(1, Math.round((performance.now() - scheduled) * 1000)));
            completed++;
            idle.push(c);
            dispatch();
          },
          () => {
            errors++;
            completed++;
            dispatch();
          },
        );
      }
    };
    await new Promise((resolve) => {
      let slot = 0;
      const tick = () => {
        const now = performance.now();
        while (slot < total && t0 + slot * interval <= now) {
          const due = t0 + slot * interval;
          // No catch-up: a slot more than LATE_SLOT_MS late is skipped (and counted), so a stalled
          // generator never sends a burst to make up for lost time.
          if (now - due > LATE_SLOT_MS) skipped++;
          else {
            queue.push(due);
            sent++;
          }
          slot++;
        }
        dispatch();
        if (slot >= total) {
          const wait = () => (completed + skipped >= total ? resolve() : setTimeout(wait, 5));
          wait();
          return;
        }
        setTimeout(tick, Math.max(0, t0 + slot * interval - performance.now()));
      };
      tick();
    });
    result = {
      sent,
      skipped,
      errors,
      p50: h.getValueAtPercentile(50) / 1000,
      p90: h.getValueAtPercentile(90) / 1000,
      p99: h.getValueAtPercentile(99) / 1000,
      max: h.maxValue / 1000,
      seconds: (performance.now() - t0) / 1000,
    };
  }
  for (const c of conns) c.socket.destroy();
  process.send({ phase: 'done', result });
}

function runLoadgen(spec, onMeasuring) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HERE, '--loadgen', JSON.stringify(spec)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (m) => {
      if (m.phase === 'measuring') onMeasuring();
      else if (m.phase === 'done') resolve(m.result);
    });
    const limit = setTimeout(
      () => {
        child.kill('SIGKILL');
        reject(
          new Error(`load generator did not finish within ${spec.warmupMs + spec.durationMs + 30_000} ms`),
        );
      },
      spec.warmupMs + spec.durationMs + 30_000,
    );
    child.once('exit', (code) => {
      clearTimeout(limit);
      if (code !== 0) reject(new Error(`load generator exited ${code}`));
    });
  });
}

// ---------------------------------------------------------------- server (own process)

function server(host, port) {
  const body = Buffer.alloc(BODY, 98);
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-length': BODY }).end(body));
  });
  // Keep idle client connections open across phases (Node closes them after 5 s by default).
  srv.keepAliveTimeout = 0;
  srv.listen(port, host, () => console.log('listening'));
}

// ---------------------------------------------------------------- the bench

function setLogLevel(ip, level) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: ip, port: 15000, method: 'POST', path: `/logging?level=${level}` },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`set log level: ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function measure(scenario, mode, cfg, procs) {
  const spec = {
    mode,
    host: scenario.host,
    socks: scenario.socks,
    connections: cfg.connections,
    warmupMs: cfg.warmupMs,
    durationMs: mode === 'throughput' ? cfg.throughputMs : cfg.latencyMs,
    rps: cfg.rps,
  };
  let before;
  let t0;
  const result = await runLoadgen(spec, () => {
    t0 = performance.now();
    before = procs.map((p) => cpuTicks(p.child.pid));
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = procs.map((p, i) => (cpuTicks(p.child.pid) - before[i]) / CLK_TCK / seconds);
  return { ...result, cpu: Object.fromEntries(procs.map((p, i) => [p.name, cpu[i]])) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const f0 = (x) => Math.round(x).toLocaleString('en-US');
const f2 = (x) => x.toFixed(2);
const f3 = (x) => x.toFixed(3);

export async function run({ quick, log }) {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
  const cfg = quick ? QUICK : FULL;
  const dir = mkdtempSync(join(tmpdir(), 'meshd-waypoint-bench-'));
  const configPath = join(dir, 'mesh.yaml');
  writeFileSync(configPath, meshYaml());
  const caDir = join(dir, 'ca');
  const procs = [];
  try {
    const srv = spawnNode([HERE, '--server', IP.server, String(APP_PORT)], 'server', log);
    procs.push(srv);
    await srv.waitFor(/listening/);
    const daemon = (name, ...args) => spawnNode([MAIN, '--log-level', 'info', ...args], name, log);
    const files = ['--config', configPath, '--ca-dir', caDir];
    const za = daemon('ztunnel-a', 'ztunnel', ...files, '--node', 'node-a');
    procs.push(za);
    await za.waitFor(/ztunnel started/);
    const zb = daemon('ztunnel-b', 'ztunnel', ...files, '--node', 'node-b');
    procs.push(zb);
    await zb.waitFor(/ztunnel started/);
    const wp = daemon('waypoint', 'waypoint', ...files, '--name', 'waypoint', '--namespace', 'bench');
    procs.push(wp);
    await wp.waitFor(/waypoint started/);
    // Access logs off for the measurement, as in Istio's default install (no access log file).
    for (const ip of [IP.nodeA, IP.nodeB, IP.waypoint]) await setLogLevel(ip, 'warn');
    const mesh = [za, wp, zb];
    const scenarios = [
      { key: 'direct', label: 'direct', host: IP.server, socks: false },
      { key: 'l4', label: 'L4 (2 ztunnels)', host: IP.vipL4, socks: true },
      { key: 'l7', label: 'L7 (2 ztunnels + waypoint)', host: IP.vipL7, socks: true },
    ];
    const results = Object.fromEntries(scenarios.map((s) => [s.key, { throughput: [], latency: [] }]));
    for (let round = 0; round < cfg.rounds; round++) {
      for (const s of scenarios) {
        log(`round ${round + 1}/${cfg.rounds}: ${s.label} throughput`);
        results[s.key].throughput.push(await measure(s, 'throughput', cfg, mesh));
        log(`round ${round + 1}/${cfg.rounds}: ${s.label} at ${cfg.rps} rps`);
        results[s.key].latency.push(await measure(s, 'latency', cfg, mesh));
      }
    }
    return report(scenarios, results, cfg);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(scenarios, results, cfg) {
  const rows = [];
  const data = {};
  for (const s of scenarios) {
    const tp = results[s.key].throughput;
    const lat = results[s.key].latency;
    const rps = median(tp.map((r) => r.requests / r.seconds));
    const per1k = (name) => median(tp.map((r) => (r.cpu[name] / (r.requests / r.seconds)) * 1000));
    const lp = (k) => median(lat.map((r) => r[k]));
    const cpuAt1k = (name) => median(lat.map((r) => r.cpu[name]));
    data[s.key] = {
      rps,
      cpuPer1kRps: {
        ztunnelA: per1k('ztunnel-a'),
        waypoint: per1k('waypoint'),
        ztunnelB: per1k('ztunnel-b'),
      },
      at1000: {
        p50: lp('p50'),
        p90: lp('p90'),
        p99: lp('p99'),
        skipped: median(lat.map((r) => r.skipped)),
        sent: median(lat.map((r) => r.sent)),
        errors: lat.reduce((a, r) => a + r.errors, 0),
        cpu: {
          ztunnelA: cpuAt1k('ztunnel-a'),
          waypoint: cpuAt1k('waypoint'),
          ztunnelB: cpuAt1k('ztunnel-b'),
        },
      },
      rounds: { throughput: tp, latency: lat },
    };
    const d = data[s.key];
    const mesh = s.key === 'direct' ? '—' : f3(d.cpuPer1kRps.ztunnelA + d.cpuPer1kRps.ztunnelB);
    const wpCost = s.key === 'l7' ? f3(d.cpuPer1kRps.waypoint) : '—';
    rows.push(
      `| ${s.label} | ${f0(rps)} | ${mesh} | ${wpCost} | ${f2(d.at1000.p50)} | ${f2(d.at1000.p90)} | ${f2(d.at1000.p99)} | ${d.at1000.skipped} |`,
    );
  }
  const l7 = data.l7;
  const markdown = [
    `${cfg.connections} keep-alive connections, POST with a ${BODY} B body, ${BODY} B response. Throughput: closed loop, median of ${cfg.rounds} round(s) of ${cfg.throughputMs / 1000} s. Latency: open loop at a fixed ${cfg.rps} rps (no catch-up: slots more than ${LATE_SLOT_MS} ms late are skipped and counted), ${cfg.latencyMs / 1000} s per round, from the scheduled send time, HDR histogram. CPU from /proc over the measured window; access logs off.`,
    '',
    '| scenario | requests/s | ztunnels vCPU per 1,000 rps | waypoint vCPU per 1,000 rps | p50 ms @1k rps | p90 ms | p99 ms | skipped slots (median round) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `Waypoint CPU at a steady 1,000 rps: ${f3(l7.at1000.cpu.waypoint)} vCPU (Istio's reference: ${ISTIO_WAYPOINT_VCPU} vCPU per 1,000 rps per waypoint).`,
  ].join('\n');
  return { title: 'Waypoint: L7 through one waypoint vs L4 only vs direct', markdown, data };
}

// ---------------------------------------------------------------- child entry points

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  if (process.argv[2] === '--loadgen') {
    loadgen(JSON.parse(process.argv[3])).then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  } else if (process.argv[2] === '--server') {
    server(process.argv[3], Number(process.argv[4]));
  }
}
