/**
 * `meshd demo`: run the mesh described by a YAML file on loopback. One real `meshd ztunnel`
 * process per Node (and one `meshd waypoint` per waypoint instance pod), sharing a mesh CA created
 * first; the sample apps the pods ask for run in this process, each bound to its pod's IP. Then
 * either print commands to try and wait for Ctrl-C, or (--check) send traffic, verify it, and exit.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadOrCreateCa } from '../app.js';
import { compileObjects, parseKubeYaml } from '../config-source/index.js';
import { DEFAULT_TRUST_DOMAIN } from '../identity/index.js';
import { silentLogger } from '../telemetry/index.js';
import { spawnMeshd, type ChildDaemon } from './children.js';
import { runDemoChecks, type RunningDemo } from './check.js';
import { buildDemoPlan } from './plan.js';
import { startEchoApp, startFrontendApp } from './sample-apps.js';

export interface DemoOptions {
  configPath: string;
  /** Working directory for the CA and logs. */
  dir: string;
  /** Path of dist/main.js, to start the daemons with. */
  main: string;
  check: boolean;
  logLevel: string;
  out: (text: string) => void;
  /** Resolves when the user asks to stop (Ctrl-C). */
  untilInterrupted: () => Promise<void>;
}

async function startDemo(opts: DemoOptions): Promise<RunningDemo> {
  const text = await readFile(opts.configPath, 'utf8');
  const objects = parseKubeYaml(text, opts.configPath);
  const compiled = compileObjects(objects, {});
  const plan = buildDemoPlan(objects, compiled.nodes);
  const logs = join(opts.dir, 'logs');
  const caDir = join(opts.dir, 'ca');
  await mkdir(logs, { recursive: true });
  // One CA for every daemon, created before any of them starts.
  await loadOrCreateCa(caDir, DEFAULT_TRUST_DOMAIN, silentLogger());
  const running: RunningDemo = { plan, ztunnels: new Map(), waypoints: [], apps: [] };
  const common = ['--log-level', opts.logLevel];
  for (const node of plan.nodes) {
    running.ztunnels.set(
      node.name,
      spawnMeshd(`ztunnel ${node.name}`, {
        main: opts.main,
        args: [...common, 'ztunnel', '--config', opts.configPath, '--node', node.name, '--ca-dir', caDir],
        logPath: join(logs, `ztunnel-${node.name}.log`),
      }),
    );
  }
  for (const w of plan.waypoints) {
    running.waypoints.push(
      spawnMeshd(`waypoint ${w.namespace}/${w.pod}`, {
        main: opts.main,
        args: [
          ...common,
          'waypoint',
          '--config',
          opts.configPath,
          '--name',
          w.gateway,
          '--namespace',
          w.namespace,
          '--pod',
          w.pod,
          '--ca-dir',
          caDir,
        ],
        logPath: join(logs, `waypoint-${w.namespace}-${w.pod}.log`),
      }),
    );
  }
  try {
    await Promise.all([...running.ztunnels.values()].map((z) => z.waitForMsg('ztunnel started', 30_000)));
    await Promise.all(running.waypoints.map((w) => w.waitForMsg('waypoint started', 30_000)));
    for (const app of plan.apps) {
      if (app.kind === 'echo') {
        running.apps.push(
          await startEchoApp({ host: app.ip, port: app.port, pod: app.pod, version: app.version }),
        );
      } else {
        running.apps.push(
          await startFrontendApp({
            host: app.ip,
            port: app.port,
            pod: app.pod,
            socks: { host: app.ip, port: 15080 },
            upstream: app.upstream ?? 'backend:80',
          }),
        );
      }
    }
  } catch (err) {
    await stopDemo(running);
    throw err;
  }
  return running;
}

async function stopDemo(d: RunningDemo): Promise<void> {
  // Apps first: their keep-alive connections would otherwise hold the ztunnels' drain open.
  await Promise.all(d.apps.map((a) => a.close()));
  await Promise.all([...d.ztunnels.values(), ...d.waypoints].map((c) => c.stop()));
}

function banner(d: RunningDemo, dir: string): string {
  const { plan } = d;
  const lines: string[] = [];
  const out = (cmd: string, note: string) => lines.push(`  ${cmd.padEnd(84)} # ${note}`);
  lines.push(
    `meshd demo: ${plan.nodes.length} nodes, ${plan.apps.length} sample apps, ${plan.waypoints.length} waypoint(s): the mesh is up.`,
  );
  for (const n of plan.nodes)
    lines.push(`  ${n.name}: ztunnel on ${n.address} (admin :15000, metrics :15020, ready :15021)`);
  for (const w of plan.waypoints)
    lines.push(`  waypoint ${w.namespace}/${w.gateway}: ${w.pod} on ${w.ip} (HBONE :15008, metrics :15020)`);
  const frontend = plan.apps.find((a) => a.kind === 'frontend');
  const legacy = plan.apps.find((a) => a.namespace === 'legacy');
  const intruder = plan.pods.find((p) => p.name.startsWith('intruder'));
  const backendPod = plan.apps.find((a) => a.kind === 'echo' && a.namespace === frontend?.namespace);
  lines.push('', 'Try (each pod enters the mesh through its own SOCKS5 port, <pod-ip>:15080):');
  if (frontend?.upstream) {
    const via = `--socks5-hostname ${frontend.ip}:15080`;
    const svc = `http://${frontend.upstream}`;
    out(
      `curl ${via} ${svc}/`,
      `${frontend.pod} → backend over mTLS${plan.waypoints.length ? ', via the waypoint (90/10 canary split)' : ''}`,
    );
    if (plan.waypoints.length > 0) {
      out(`curl -H 'x-canary: true' ${via} ${svc}/`, 'the waypoint routes this header to v2');
      out(`curl ${via} ${svc}/admin`, '403 RBAC: access denied (L7 policy at the waypoint)');
    }
    out(
      `curl ${via} http://frontend.${frontend.namespace}/`,
      'the frontend app calls the backend through the mesh',
    );
    if (intruder) {
      out(
        `curl --socks5-hostname ${intruder.ip}:15080 ${svc}/`,
        `${intruder.name}: denied by policy${plan.waypoints.length ? ' (403 at the waypoint)' : ''}`,
      );
      if (backendPod)
        out(
          `curl --socks5-hostname ${intruder.ip}:15080 http://${backendPod.ip}:${backendPod.port}/`,
          `${intruder.name} → a pod IP, bypassing the waypoint: refused at L4`,
        );
    }
    if (legacy)
      out(`curl ${via} http://legacy-web.legacy:${legacy.port}/`, 'to a pod outside the mesh: plain TCP');
  }
  const first = plan.nodes[0];
  if (first) {
    lines.push('', 'Look inside:');
    out(`curl -s http://${first.address}:15020/metrics | grep istio_tcp`, "Istio's TCP metrics");
    for (const w of plan.waypoints)
      out(`curl -s http://${w.ip}:15020/metrics | grep istio_requests`, "the waypoint's HTTP metrics");
    out(`curl -s http://${first.address}:15000/config_dump`, 'workloads, services, policies, certificates');
    out(
      `tail -f ${join(dir, 'logs')}/*.log`,
      'access logs: one line per connection (ztunnel) or request (waypoint)',
    );
  }
  lines.push('', 'Ctrl-C stops everything.');
  return lines.join('\n') + '\n';
}

/**
 * What to tell the user when a daemon of the demo exits while the demo runs (a crash, or someone
 * killing it to see what the mesh does): the rest keeps running, and traffic that needed it fails
 * closed.
 */
export function describeUnexpectedExit(c: ChildDaemon): string {
  const how = c.exitSignal ? `was killed by ${c.exitSignal}` : `exited with code ${String(c.exitCode)}`;
  return (
    `meshd demo: ${c.name} ${how}; the rest of the mesh keeps running, and connections that need it ` +
    `now fail closed.${c.logPath ? ` Its log: ${c.logPath}` : ''} Ctrl-C stops the demo.\n`
  );
}

/** Run the demo; resolves with the process exit code. */
export async function runDemo(opts: DemoOptions): Promise<number> {
  const demo = await startDemo(opts);
  try {
    if (opts.check) {
      const results = await runDemoChecks(demo);
      for (const r of results) opts.out(`${r.ok ? '✓' : '✗'} ${r.name}${r.ok ? '' : `\n    ${r.detail}`}\n`);
      const failed = results.filter((r) => !r.ok).length;
      opts.out(
        failed === 0
          ? `demo check passed: ${results.length} checks\n`
          : `demo check FAILED: ${failed} of ${results.length} checks\n`,
      );
      return failed === 0 ? 0 : 1;
    }
    opts.out(banner(demo, opts.dir));
    let stopping = false;
    for (const c of [...demo.ztunnels.values(), ...demo.waypoints])
      void c.exited.then(() => {
        if (!stopping) opts.out(describeUnexpectedExit(c));
      });
    await opts.untilInterrupted();
    stopping = true;
    opts.out('stopping the demo mesh…\n');
    return 0;
  } finally {
    await stopDemo(demo);
  }
}
