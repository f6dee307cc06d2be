// Local meshes for the benches: the YAML of Kubernetes objects, a CA, and meshd daemons started
// as separate processes (node mode or dedicated mode) and awaited until ready.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const IDENTITY = new URL('../../dist/identity/index.js', import.meta.url);
export const NAMESPACE = 'bench';

/**
 * YAML for: nodes [{name, ip}], pods [{name, node, ip, app, sa?, labels?}], services [{name, vip,
 * app, port, targetPort, labels?}], gateways [{name}] (istio-waypoint Gateways), all in the
 * enrolled namespace `bench`.
 */
export function meshYaml({ nodes, pods, services = [], gateways = [] }) {
  const docs = [];
  for (const n of nodes)
    docs.push(`apiVersion: v1
kind: Node
metadata: { name: ${n.name} }
status: { addresses: [{ type: InternalIP, address: ${n.ip} }] }`);
  docs.push(`apiVersion: v1
kind: Namespace
metadata: { name: ${NAMESPACE}, labels: { istio.io/dataplane-mode: ambient } }`);
  for (const g of gateways)
    docs.push(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: ${g.name}, namespace: ${NAMESPACE} }
spec: { gatewayClassName: istio-waypoint, listeners: [{ name: mesh, port: 15008, protocol: HBONE }] }`);
  for (const p of pods)
    docs.push(`apiVersion: v1
kind: Pod
metadata: { name: ${p.name}, namespace: ${NAMESPACE}, labels: ${JSON.stringify({ app: p.app, ...p.labels })} }
spec: { nodeName: ${p.node}, serviceAccountName: ${p.sa ?? p.app} }
status: { podIP: ${p.ip} }`);
  for (const s of services)
    docs.push(`apiVersion: v1
kind: Service
metadata: { name: ${s.name}, namespace: ${NAMESPACE}, labels: ${JSON.stringify(s.labels ?? {})} }
spec:
  clusterIP: ${s.vip}
  selector: { app: ${s.app} }
  ports: [{ name: http, port: ${s.port}, targetPort: ${s.targetPort}, appProtocol: http }]`);
  return docs.join('\n---\n') + '\n';
}

/**
 * A temporary directory with a fresh mesh CA (created in-process from dist/identity, as
 * `meshd ca init` would) and the mesh YAML files written into it; cleanup() removes it.
 */
export async function createMeshDir() {
  const { MeshCa, issueWorkloadCertificate } = await import(IDENTITY.href);
  const dir = mkdtempSync(join(tmpdir(), 'meshd-bench-'));
  const caDir = join(dir, 'ca');
  const ca = MeshCa.create();
  await ca.save(caDir);
  let files = 0;
  return {
    dir,
    caDir,
    /** Write `spec` (see meshYaml) to a new file and return its path. */
    writeConfig(spec) {
      const path = join(dir, `mesh-${++files}.yaml`);
      writeFileSync(path, meshYaml(spec));
      return path;
    },
    /** A workload certificate from the mesh CA: { chainPem: string[], keyPem, rootsPem: string[] }. */
    issue: (uri) => issueWorkloadCertificate(ca, uri, 86_400_000),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const isStarted = (l) => l.msg === 'ztunnel started';

/** Start `meshd ztunnel` (node mode: {node}; dedicated mode: {dedicated: 'ns/pod'}) and wait until ready. */
export async function startZtunnel(
  group,
  { configPath, caDir },
  { name, node, dedicated, readinessAddress },
) {
  const args = ['ztunnel', '--config', configPath, '--ca-dir', caDir];
  if (node) args.push('--node', node);
  if (dedicated) args.push('--dedicated', dedicated);
  const proc = group.meshd(name, args);
  const started = await proc.waitFor(isStarted, 'ztunnel started', 120_000);
  if (started.ready !== true) await waitReady(`http://${readinessAddress}:15021/healthz/ready`, proc);
  return proc;
}

/** Start `meshd waypoint` for Gateway `name` of namespace `bench` and wait until it has started. */
export async function startWaypoint(group, { configPath, caDir }, { name }) {
  const proc = group.meshd(`waypoint ${name}`, [
    'waypoint',
    '--config',
    configPath,
    '--name',
    name,
    '--namespace',
    NAMESPACE,
    '--ca-dir',
    caDir,
  ]);
  await proc.waitFor((l) => l.msg === 'waypoint started', 'waypoint started', 120_000);
  return proc;
}

/**
 * `POST /logging?level=` on a daemon's admin port. The latency bench sets `warn` to measure without
 * access logs, as Istio's default install has none (and HAProxy here logs nothing either).
 */
export async function setLogLevel(adminAddress, level) {
  const res = await globalThis.fetch(`http://${adminAddress}:15000/logging?level=${level}`, {
    method: 'POST',
  });
  if (res.status !== 200) throw new Error(`${adminAddress}:15000/logging: HTTP ${res.status}`);
  await res.arrayBuffer();
}

/** Poll a readiness endpoint (as a kubelet does) until 200. */
export async function waitReady(url, proc, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await globalThis.fetch(url)).status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (proc.exitCode !== null) throw new Error(`${proc.name} exited; last output:\n${proc.tail()}`);
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
