/**
 * A two-node local mesh with a waypoint, for the waypoint's end-to-end tests: two real
 * `meshd ztunnel` processes (node-a, node-b), one `meshd waypoint` process for Gateway
 * shop/waypoint (its pod on node-b), and sample apps bound to the pods' IPs in the test process.
 * Namespace `shop` is ambient and uses the waypoint; clients enter through client-0's SOCKS5.
 *
 * Each test file passes its own address prefixes (127.0.5x.y pods, 127.10.5x.y VIPs) so files
 * never collide. Config edits go through `apply`, which waits until the waypoint runs them.
 */
import http from 'node:http';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEchoApp, type RunningApp } from '../../src/demo/sample-apps.js';
import { socksAgent } from '../../src/demo/socks5-client.js';
import { startDaemon, stopAll, type Daemon } from '../helpers/process.js';

export interface FixtureOptions {
  /** Pod/node prefix on node-a, e.g. 127.0.51 (node at .1). */
  a: string;
  /** Pod/node prefix on node-b, e.g. 127.0.52. */
  b: string;
  /** VIP prefix, e.g. 127.10.51. */
  vip: string;
  /** Extra YAML documents that stay for the whole file (pods, services). */
  base?: string[];
  /** The Gateway's istio.io/waypoint-for label (absent: Istio's default, service traffic). */
  waypointFor?: 'service' | 'workload' | 'all';
  /** The HBONE listener admits Services and pods of every namespace (allowedRoutes from All). */
  allNamespaces?: boolean;
}

export const WAYPOINT_ID = 'spiffe://cluster.local/ns/shop/sa/waypoint';
export const CLIENT_ID = 'spiffe://cluster.local/ns/shop/sa/client';

export function pod(
  name: string,
  ns: string,
  node: string,
  ip: string,
  labels: Record<string, string>,
  sa: string,
  ready = true,
): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: ${JSON.stringify(labels)}}
spec: {nodeName: ${node}, serviceAccountName: ${sa}}
status: {podIP: ${ip}, conditions: [{type: Ready, status: "${ready ? 'True' : 'False'}"}]}`;
}

export function service(
  name: string,
  ns: string,
  vip: string,
  selector: Record<string, string>,
  port: number,
  targetPort: number,
  portName = 'http',
): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec: {clusterIP: ${vip}, selector: ${JSON.stringify(selector)}, ports: [{name: ${portName}, port: ${port}, targetPort: ${targetPort}}]}`;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: { pod?: string; version?: string; path?: string; headers?: Record<string, string> };
}

export class WaypointMesh {
  readonly dir = mkdtempSync(join(tmpdir(), 'meshd-waypoint-'));
  readonly configPath = join(this.dir, 'mesh.yaml');
  readonly caDir = join(this.dir, 'ca');
  readonly ztunnels = new Map<string, Daemon>();
  waypoint: Daemon | undefined;
  /** Whether the waypoint's pod is declared Ready (an unready pod is no instance to route to). */
  waypointReady = true;
  private generation = 0;
  private written = '';
  private agents: http.Agent[] = [];

  constructor(readonly o: FixtureOptions) {
    this.write([]);
  }

  get waypointIp(): string {
    return `${this.o.b}.30`;
  }

  get clientIp(): string {
    return `${this.o.a}.10`;
  }

  yaml(extra: readonly string[]): string {
    const { a, b, vip } = this.o;
    return [
      `apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\nstatus: {addresses: [{type: InternalIP, address: ${a}.1}]}`,
      `apiVersion: v1\nkind: Node\nmetadata: {name: node-b}\nstatus: {addresses: [{type: InternalIP, address: ${b}.1}]}`,
      `apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}`,
      `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: waypoint, namespace: shop${this.o.waypointFor ? `, labels: {istio.io/waypoint-for: ${this.o.waypointFor}}` : ''}}\nspec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE${this.o.allNamespaces ? ', allowedRoutes: {namespaces: {from: All}}' : ''}}]}`,
      pod(
        'waypoint-0',
        'shop',
        'node-b',
        `${b}.30`,
        { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
        'waypoint',
        this.waypointReady,
      ),
      pod('client-0', 'shop', 'node-a', `${a}.10`, { app: 'client' }, 'client'),
      pod('reviews-v1-0', 'shop', 'node-a', `${a}.21`, { app: 'reviews', version: 'v1' }, 'reviews'),
      pod('reviews-v2-0', 'shop', 'node-b', `${b}.22`, { app: 'reviews', version: 'v2' }, 'reviews'),
      service('reviews', 'shop', `${vip}.1`, { app: 'reviews' }, 80, 8080),
      service('reviews-v1', 'shop', `${vip}.2`, { app: 'reviews', version: 'v1' }, 80, 8080),
      service('reviews-v2', 'shop', `${vip}.3`, { app: 'reviews', version: 'v2' }, 80, 8080),
      ...(this.o.base ?? []),
      ...extra,
    ].join('\n---\n');
  }

  /** Start both ztunnels (node-a first: it creates the CA) and the waypoint. */
  async start(): Promise<void> {
    for (const node of ['node-a', 'node-b']) {
      const d = startDaemon(`ztunnel-${node}`, [
        'ztunnel',
        '--config',
        this.configPath,
        '--node',
        node,
        '--ca-dir',
        this.caDir,
      ]);
      this.ztunnels.set(node, d);
      await d.waitForMsg('ztunnel started');
    }
    await this.startWaypoint();
  }

  async startWaypoint(): Promise<Daemon> {
    const w = startDaemon('waypoint', [
      'waypoint',
      '--config',
      this.configPath,
      '--name',
      'waypoint',
      '--namespace',
      'shop',
      '--ca-dir',
      this.caDir,
      '--drain-timeout',
      '3s',
    ]);
    this.waypoint = w;
    await w.waitForMsg('waypoint started');
    return w;
  }

  ztunnel(node: 'node-a' | 'node-b'): Daemon {
    const d = this.ztunnels.get(node);
    if (!d) throw new Error(`no ztunnel ${node}`);
    return d;
  }

  wp(): Daemon {
    if (!this.waypoint) throw new Error('the waypoint is not running');
    return this.waypoint;
  }

  /**
   * Replace the file's extra documents and wait until the waypoint applied them (or, with
   * `rejected`, until it refused them and kept its last good config).
   */
  async apply(extra: readonly string[], opts: { rejected?: boolean } = {}): Promise<void> {
    const want = this.write(extra);
    const msg = opts.rejected ? /^waypoint config rejected/ : /^waypoint config applied$/;
    if (this.waypoint && this.waypoint.exitCode === null) {
      await this.waypoint.waitForLog(
        (l) => msg.test(String(l.msg)) && Number(l.generation) >= want,
        20_000,
        `waypoint config generation ${want}`,
      );
    }
    for (const z of this.ztunnels.values()) {
      await z.waitForLog(
        (l) => l.msg === 'config loaded' && Number(l.generation) >= want,
        20_000,
        `config generation ${want}`,
      );
    }
  }

  /** A keep-alive HTTP agent whose connections enter the mesh through client-0's SOCKS5. */
  agent(maxSockets = 16): http.Agent {
    const agent = socksAgent(
      { host: this.clientIp, port: 15080, localAddress: this.clientIp },
      { maxSockets },
    );
    this.agents.push(agent);
    return agent;
  }

  request(
    agent: http.Agent,
    target: string,
    path: string,
    opts: { headers?: Record<string, string>; method?: string } = {},
  ): Promise<Reply> {
    const [host = '', port = '80'] = target.split(/:(?=\d+$)/);
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host, port: Number(port), path, method: opts.method ?? 'GET', headers: opts.headers, agent },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            let json: Reply['json'] = {};
            try {
              json = JSON.parse(text) as Reply['json'];
            } catch {
              // not JSON
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  metricsUrl(): string {
    return `http://${this.waypointIp}:15020/metrics`;
  }

  /** The waypoint's access-log lines (one per request). */
  requests(): Array<Record<string, unknown>> {
    return this.wp()
      .accessLogs()
      .filter((l) => l.msg === 'request complete');
  }

  /** Echo apps for the two reviews pods every mesh declares (v1 on node-a, v2 on node-b). */
  async startReviews(): Promise<{ v1: RunningApp; v2: RunningApp }> {
    const v1 = await startEchoApp({ host: `${this.o.a}.21`, port: 8080, pod: 'reviews-v1-0', version: 'v1' });
    const v2 = await startEchoApp({ host: `${this.o.b}.22`, port: 8080, pod: 'reviews-v2-0', version: 'v2' });
    return { v1, v2 };
  }

  /** After a file: the daemons, any other daemon a test started, the apps, the directory. */
  async teardown(apps: Iterable<RunningApp>): Promise<void> {
    await this.stop();
    await stopAll();
    await Promise.all([...apps].map((a) => a.close()));
    this.cleanup();
  }

  async stop(): Promise<void> {
    for (const a of this.agents.splice(0)) a.destroy();
    await Promise.all(
      [...this.ztunnels.values(), ...(this.waypoint ? [this.waypoint] : [])].map((d) => d.kill()),
    );
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private write(extra: readonly string[]): number {
    const text = this.yaml(extra);
    if (text === this.written) return this.generation;
    const tmp = `${this.configPath}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, this.configPath);
    this.written = text;
    return ++this.generation;
  }
}

export const httpRoute = (
  name: string,
  parent: string,
  rules: string,
): string => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: ${parent}, port: 80}]
  rules:
${rules}`;
