/**
 * Test support for the waypoint runtime (not used by production code): a mesh from YAML, echo
 * backends on loopback pod IPs (127.0.53.x), a WaypointListener whose upstream connector is
 * plain TCP, and clients (HTTP/1.1 agent, HTTP/2 session) whose connections are in-process
 * tunnels into the listener, as HBONE streams would be.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { type Duplex, Writable } from 'node:stream';
import { compileObjects } from '../../config-source/index.js';
import type { RunningApp } from '../../demo/sample-apps.js';
import { startEchoApp, startTcpEcho } from '../../demo/sample-apps.js';
import { createLogger, Registry } from '../../telemetry/index.js';
import { compileWaypointConfig } from '../config.js';
import { createDuplexPair } from './duplex-pair.js';
import type { InboundAuthority, WaypointSelf } from '../inbound.js';
import { buildInboundTarget, isServedBy } from '../inbound.js';
import { WaypointListener } from '../listener.js';
import { createWaypointRequestMetrics } from '../metrics.js';
import type { InboundContext } from '../proxy.js';
import { defaultClock, seededRandom } from '../random.js';
import { UpstreamClusterSet } from '../upstream-cluster.js';
import { UpstreamConnections } from '../upstream-pool.js';
import type { UpstreamEndpoint } from '../upstream-types.js';
import type { WaypointView } from '../view.js';
import { locatedObjects } from './index.js';

export const CLIENT_IDENTITY = 'spiffe://cluster.local/ns/shop/sa/frontend';
export const CLIENT_IP = '127.0.53.100';
export const SELF: WaypointSelf = {
  name: 'waypoint',
  namespace: 'shop',
  hostname: 'waypoint.shop.svc.cluster.local',
};

function pod(name: string, ip: string, labels: Record<string, string>, sa: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: shop, labels: ${JSON.stringify(labels)}}
spec: {nodeName: node-a, serviceAccountName: ${sa}}
status: {podIP: ${ip}}`;
}

function service(
  name: string,
  vip: string,
  port: number,
  target: number,
  selector: object,
  extra = '',
): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: shop}
spec: {clusterIP: ${vip}, selector: ${JSON.stringify(selector)}, ports: [{name: p, port: ${port}, targetPort: ${target}${extra}}]}`;
}

/** The base mesh: reviews (v1 at .1, v2 at .2) on 8080, its v1/v2 subsets, and a TCP echo. */
export const BASE_YAML = [
  `apiVersion: v1
kind: Node
metadata: {name: node-a}
status: {addresses: [{type: InternalIP, address: 127.0.53.254}]}`,
  `apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}`,
  `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: shop}
spec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}`,
  pod('waypoint-0', '127.0.53.250', { 'gateway.networking.k8s.io/gateway-name': 'waypoint' }, 'waypoint'),
  pod('frontend-0', CLIENT_IP, { app: 'frontend' }, 'frontend'),
  pod('reviews-v1-0', '127.0.53.1', { app: 'reviews', version: 'v1' }, 'reviews'),
  pod('reviews-v2-0', '127.0.53.2', { app: 'reviews', version: 'v2' }, 'reviews'),
  pod('tcp-echo-0', '127.0.53.3', { app: 'tcp-echo' }, 'tcp-echo'),
  service('reviews', '127.10.53.1', 9080, 8080, { app: 'reviews' }),
  service('reviews-v1', '127.10.53.2', 9080, 8080, { app: 'reviews', version: 'v1' }),
  service('reviews-v2', '127.10.53.3', 9080, 8080, { app: 'reviews', version: 'v2' }),
  service('tcp-echo', '127.10.53.4', 7000, 7000, { app: 'tcp-echo' }, ', appProtocol: tcp'),
].join('\n---\n');

/** BASE_YAML with the waypoint serving `all` traffic: the namespace's pods use it too. */
export const BASE_YAML_ALL_TRAFFIC = BASE_YAML.replace(
  'metadata: {name: waypoint, namespace: shop}',
  'metadata: {name: waypoint, namespace: shop, labels: {istio.io/waypoint-for: all}}',
);

export interface AccessLine {
  [k: string]: unknown;
  msg?: string;
}

export class RuntimeHarness {
  readonly registry = new Registry();
  readonly metrics = createWaypointRequestMetrics(this.registry);
  readonly accessLines: AccessLine[] = [];
  readonly listener: WaypointListener;
  readonly connections: UpstreamConnections;
  readonly clusters = new UpstreamClusterSet({ clock: defaultClock, random: seededRandom(7) });
  /** Upstream connections opened, per endpoint key. */
  readonly opened = new Map<string, number>();
  view: WaypointView;
  private readonly apps: RunningApp[] = [];
  private readonly waiters = new Set<() => void>();
  private generation = 0;

  constructor(
    extraYaml = '',
    private readonly connector?: (ep: UpstreamEndpoint) => Promise<Duplex>,
    /** The mesh the extra YAML is added to (BASE_YAML, or a variant of it). */
    private readonly baseYaml = BASE_YAML,
  ) {
    this.view = this.compile(extraYaml);
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          this.accessLines.push(JSON.parse(line) as AccessLine);
        for (const w of [...this.waiters]) w();
        cb();
      },
    });
    const log = createLogger({ level: 'info', destination: sink });
    this.connections = new UpstreamConnections((ep) => {
      this.opened.set(ep.key, (this.opened.get(ep.key) ?? 0) + 1);
      return this.connector ? this.connector(ep) : this.connect(ep);
    });
    this.listener = new WaypointListener({
      view: () => this.view,
      clusters: this.clusters,
      connections: this.connections,
      metrics: this.metrics,
      accessLog: log,
      log,
      random: seededRandom(11),
      clock: defaultClock,
      copy: pipeBoth,
    });
  }

  setYaml(extraYaml: string): void {
    this.view = this.compile(extraYaml);
  }

  /** Echo backends for reviews v1 and v2 (and the TCP echo). */
  async startBackends(): Promise<{ v1: RunningApp; v2: RunningApp; tcp: RunningApp }> {
    const v1 = await startEchoApp({ host: '127.0.53.1', port: 8080, pod: 'reviews-v1-0', version: 'v1' });
    const v2 = await startEchoApp({ host: '127.0.53.2', port: 8080, pod: 'reviews-v2-0', version: 'v2' });
    const tcp = await startTcpEcho({ host: '127.0.53.3', port: 7000 });
    this.apps.push(v1, v2, tcp);
    return { v1, v2, tcp };
  }

  track<T extends RunningApp>(app: T): T {
    this.apps.push(app);
    return app;
  }

  context(authority: InboundAuthority = { kind: 'ip', ip: '127.10.53.1', port: 9080 }): InboundContext {
    const t = buildInboundTarget(this.view.state, SELF, authority, 'shop');
    if (!t.ok) throw new Error(t.reason);
    return {
      connectionId: `test-${++this.generation}`,
      service: t.destination,
      client: { identity: CLIENT_IDENTITY, ip: CLIENT_IP },
    };
  }

  /** A tunnel into the listener, as ztunnel's HBONE stream would be. */
  tunnel(ctx = this.context(), tcp = false): net.Socket {
    const [client, server] = createDuplexPair();
    void this.listener.serve(server, ctx, { tcp });
    return client as unknown as net.Socket;
  }

  /** An HTTP/1.1 keep-alive agent whose connections are tunnels. Counts them in `agentTunnels`. */
  agent(ctx?: () => InboundContext): http.Agent & { tunnels: number } {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 }) as http.Agent & { tunnels: number };
    agent.tunnels = 0;
    agent.createConnection = () => {
      agent.tunnels++;
      return this.tunnel(ctx ? ctx() : this.context());
    };
    return agent;
  }

  h2session(ctx?: InboundContext): http2.ClientHttp2Session {
    const stream = this.tunnel(ctx);
    const s = http2.connect('http://reviews.shop:9080', { createConnection: () => stream });
    s.on('error', () => undefined);
    return s;
  }

  access(): AccessLine[] {
    return this.accessLines.filter((l) => l.scope === 'access');
  }

  /** Resolves with the access-log lines once there are at least `n`. */
  waitForAccess(n: number): Promise<AccessLine[]> {
    return new Promise((resolve) => {
      const check = (): void => {
        const lines = this.access();
        if (lines.length < n) return;
        this.waiters.delete(check);
        resolve(lines);
      };
      this.waiters.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    this.listener.forceClose();
    this.connections.destroy();
    await Promise.all(this.apps.splice(0).map((a) => a.close()));
  }

  private compile(extraYaml: string): WaypointView {
    const objects = locatedObjects(extraYaml ? `${this.baseYaml}\n---\n${extraYaml}` : this.baseYaml);
    const { state } = compileObjects(objects);
    const { config } = compileWaypointConfig(objects, {
      waypointName: SELF.name,
      waypointNamespace: SELF.namespace,
      serves: (s) => {
        const svc = state.findServiceByKey(`${s.namespace}/${s.name}.${s.namespace}.svc.cluster.local`);
        return svc !== undefined && isServedBy(svc, SELF);
      },
    });
    return { generation: ++this.generation, config, state };
  }

  private connect(ep: UpstreamEndpoint): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: ep.ip, port: ep.port, noDelay: true });
      s.once('connect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
  }
}

/** A plain bidirectional pipe for the passthrough in tests. */
export function pipeBoth(a: Duplex, b: Duplex): Promise<{ bytesUp: number; bytesDown: number }> {
  let up = 0;
  let down = 0;
  a.on('data', (c: Buffer) => (up += c.length));
  b.on('data', (c: Buffer) => (down += c.length));
  a.pipe(b);
  b.pipe(a);
  const closed = (s: typeof a) =>
    new Promise<void>((resolve) => {
      s.on('error', () => s.destroy());
      s.once('close', () => resolve());
    });
  return Promise.all([closed(a), closed(b)]).then(() => ({ bytesUp: up, bytesDown: down }));
}

/** Collects a response body. */
export async function readBody(res: AsyncIterable<Buffer | string>): Promise<string> {
  let s = '';
  for await (const c of res) s += c.toString();
  return s;
}

/** A backend that holds every request until release(); tests await the requests arriving. */
export interface HoldingApp extends RunningApp {
  /** Resolves once `n` requests have arrived in total. */
  waitForRequests(n: number): Promise<void>;
  /** Answer every held request (200) and the ones that arrive later. */
  release(): void;
  /** Requests whose client went away before they were answered. */
  cancelled(): number;
  /** Resolves when a request is cancelled (at once if one already was). */
  whenCancelled(): Promise<void>;
}

export async function startHoldingApp(host: string, port: number): Promise<HoldingApp> {
  let n = 0;
  let cancelled = 0;
  let released = false;
  let onCancel: (() => void) | undefined;
  const cancelledOnce = new Promise<void>((r) => (onCancel = r));
  const held = new Set<http.ServerResponse>();
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const answer = (res: http.ServerResponse): void => {
    held.delete(res);
    res.writeHead(200, { 'content-length': '2', 'x-pod': 'holding' }).end('ok');
  };
  const server = http.createServer((req, res) => {
    n++;
    req.resume();
    res.on('close', () => {
      if (!res.writableFinished) {
        cancelled++;
        onCancel?.();
      }
      held.delete(res);
    });
    if (released) answer(res);
    else held.add(res);
    for (const w of waiters.filter((x) => n >= x.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  return {
    address: { address: host, port, family: 'IPv4' },
    count: () => n,
    cancelled: () => cancelled,
    whenCancelled: () => cancelledOnce,
    waitForRequests: (want) =>
      want <= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n: want, resolve })),
    release: () => {
      released = true;
      for (const res of [...held]) answer(res);
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
