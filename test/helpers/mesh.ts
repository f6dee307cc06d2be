/**
 * A small local mesh for integration tests: write a YAML file of Kubernetes objects, start real
 * `meshd ztunnel` processes for its nodes, and send traffic through a pod's SOCKS5 entry.
 * Each test file uses its own loopback range so files never collide.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type net from 'node:net';
import { socksConnect } from '../../src/demo/socks5-client.js';
import { startDaemon, type Daemon } from './process.js';

export interface NodeSpec {
  name: string;
  ip: string;
}

export interface PodSpec {
  name: string;
  namespace: string;
  node: string;
  ip: string;
  sa?: string;
  labels?: Record<string, string>;
  /** Named container ports. */
  ports?: Record<string, number>;
}

export interface ServiceSpec {
  name: string;
  namespace: string;
  vip: string;
  selector: Record<string, string>;
  ports: Array<{ port: number; targetPort: number | string; name?: string }>;
  labels?: Record<string, string>;
}

export interface MeshSpec {
  nodes: NodeSpec[];
  /** Namespace name → enrolled in ambient? */
  namespaces: Record<string, boolean>;
  pods: PodSpec[];
  services?: ServiceSpec[];
  /** Extra raw YAML documents (policies, …). */
  extra?: string[];
}

const labelsYaml = (labels: Record<string, string> | undefined, indent: string) =>
  labels && Object.keys(labels).length > 0
    ? `${indent}labels:\n${Object.entries(labels)
        .map(([k, v]) => `${indent}  ${k}: ${JSON.stringify(v)}`)
        .join('\n')}\n`
    : '';

export function buildMeshYaml(spec: MeshSpec): string {
  const docs: string[] = [];
  for (const n of spec.nodes) {
    docs.push(
      `apiVersion: v1\nkind: Node\nmetadata:\n  name: ${n.name}\nstatus:\n  addresses:\n    - type: InternalIP\n      address: ${n.ip}\n`,
    );
  }
  for (const [ns, ambient] of Object.entries(spec.namespaces)) {
    docs.push(
      `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n${ambient ? '  labels:\n    istio.io/dataplane-mode: ambient\n' : ''}`,
    );
  }
  for (const p of spec.pods) {
    const ports = p.ports
      ? `  containers:\n    - name: app\n      ports:\n${Object.entries(p.ports)
          .map(([name, port]) => `        - name: ${name}\n          containerPort: ${port}`)
          .join('\n')}\n`
      : '';
    docs.push(
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${p.name}\n  namespace: ${p.namespace}\n${labelsYaml(p.labels, '  ')}spec:\n  nodeName: ${p.node}\n  serviceAccountName: ${p.sa ?? 'default'}\n${ports}status:\n  podIP: ${p.ip}\n`,
    );
  }
  for (const s of spec.services ?? []) {
    const sel = Object.entries(s.selector)
      .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`)
      .join('\n');
    const ports = s.ports
      .map(
        (p, i) =>
          `    - name: ${p.name ?? `p${i}`}\n      port: ${p.port}\n      targetPort: ${typeof p.targetPort === 'number' ? p.targetPort : JSON.stringify(p.targetPort)}`,
      )
      .join('\n');
    docs.push(
      `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${s.name}\n  namespace: ${s.namespace}\n${labelsYaml(s.labels, '  ')}spec:\n  clusterIP: ${s.vip}\n  selector:\n${sel}\n  ports:\n${ports}\n`,
    );
  }
  docs.push(...(spec.extra ?? []));
  return docs.join('---\n');
}

export class TestMesh {
  readonly dir: string;
  readonly configPath: string;
  readonly caDir: string;
  readonly ztunnels = new Map<string, Daemon>();

  constructor(public spec: MeshSpec) {
    this.dir = mkdtempSync(join(tmpdir(), 'meshd-test-'));
    this.configPath = join(this.dir, 'mesh.yaml');
    this.caDir = join(this.dir, 'ca');
    this.write(spec);
  }

  write(spec: MeshSpec): void {
    this.spec = spec;
    writeFileSync(this.configPath, buildMeshYaml(spec));
  }

  /** Replace the config in one rename, as an editor or a ConfigMap update does. */
  writeAtomically(text: string): void {
    const tmp = `${this.configPath}.tmp`;
    writeFileSync(tmp, text);
    // rename is atomic: the watcher never sees a half-written file.
    renameSync(tmp, this.configPath);
  }

  node(name: string): NodeSpec {
    const n = this.spec.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  pod(name: string): PodSpec {
    const p = this.spec.pods.find((x) => x.name === name);
    if (!p) throw new Error(`no pod ${name}`);
    return p;
  }

  /** Start ztunnels (one per node, in order; the first creates the CA) and wait until each is started. */
  async start(nodes = this.spec.nodes.map((n) => n.name), extraArgs: string[] = []): Promise<void> {
    for (const name of nodes) {
      const d = startDaemon(`ztunnel-${name}`, [
        'ztunnel',
        '--config',
        this.configPath,
        '--node',
        name,
        '--ca-dir',
        this.caDir,
        ...extraArgs,
      ]);
      this.ztunnels.set(name, d);
      await d.waitForMsg('ztunnel started');
    }
  }

  ztunnel(node: string): Daemon {
    const d = this.ztunnels.get(node);
    if (!d) throw new Error(`no ztunnel for ${node}`);
    return d;
  }

  metricsUrl(node: string): string {
    return `http://${this.node(node).ip}:15020/metrics`;
  }

  adminUrl(node: string, path: string): string {
    return `http://${this.node(node).ip}:15000${path}`;
  }

  /** Open a connection from `fromPod` to `target` through the pod's SOCKS5 entry. */
  connect(fromPod: string, target: string): Promise<net.Socket> {
    return socksConnect({ host: this.pod(fromPod).ip, port: 15080 }, target);
  }

  /** Send `payload`, half-close, and collect everything echoed back. */
  async roundTrip(fromPod: string, target: string, payload: string): Promise<string> {
    const s = await this.connect(fromPod, target);
    return new Promise((resolve, reject) => {
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString()));
      s.on('end', () => resolve(got));
      s.on('error', reject);
      s.end(payload);
    });
  }

  async stop(): Promise<void> {
    await Promise.all([...this.ztunnels.values()].map((d) => d.kill()));
    this.ztunnels.clear();
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Access-log lines of a daemon with the given direction, optionally filtered by destination workload. */
export function accessLines(d: Daemon, direction: 'inbound' | 'outbound'): Array<Record<string, unknown>> {
  return d.accessLogs().filter((l) => l.direction === direction);
}
