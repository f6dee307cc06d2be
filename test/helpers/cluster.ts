/**
 * A small cluster made of network namespaces, built the way ztunnel's own namespaced tests build
 * theirs (reference 10.2), for capture-mode integration tests:
 *
 *   hub netns:  bridge br0 (no address)
 *   node n:     netns, eth0 = 10.77.0.<n>/24 (veth to br0); bridge cbr0 = 10.77.<n>.1/24 for its
 *               pods; forwarding on; a route to every other node's pod /24 via that node
 *   pod k on n: netns, eth0 = 10.77.<n>.<k>/24 (veth to cbr0), default route via 10.77.<n>.1;
 *               captured pods get Istio's in-pod iptables rules (scripts/meshd-redirect-inpod.sh)
 *
 * Invariants: every address lives only inside these namespaces: nothing is created in the host's
 * network namespace (veth pairs are created directly between two of ours), so deleting the
 * namespaces removes every interface, route and iptables rule with them. All names start with
 * `mcap-<pid>-`; `removeLeftovers()` deletes namespaces of that prefix whose process is gone
 * (a crashed run), and nothing else.
 */
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { listenSocket, openSocket } from '../../src/capture/index.js';
import { REPO } from './process.js';

export const REDIRECT_SCRIPT = join(REPO, 'scripts', 'meshd-redirect-inpod.sh');
const PREFIX = 'mcap';
const NETNS_DIR = '/var/run/netns';

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

const ipn = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Delete namespaces left by crashed runs: prefix `mcap-<pid>-` with that pid no longer running. */
export function removeLeftovers(): string[] {
  const removed: string[] = [];
  for (const line of run('ip', ['netns', 'list']).split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${PREFIX}-(\\d+)-`).exec(name);
    if (!m || alive(Number(m[1]))) continue;
    run('ip', ['netns', 'del', name]);
    removed.push(name);
  }
  return removed;
}

/** Our namespaces (this process's), for the cleanup assertion. */
export function listOwnNamespaces(): string[] {
  return run('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${PREFIX}-${process.pid}-`));
}

export interface Netns {
  /** The `ip netns` name. */
  name: string;
  /** Path for setns (the meshd.io/netns annotation value could be either). */
  path: string;
}

export interface ClusterNode extends Netns {
  id: number;
  ip: string;
}

export interface ClusterPod extends Netns {
  node: ClusterNode;
  ip: string;
  captured: boolean;
}

export class NetnsCluster {
  readonly hub: Netns;
  readonly nodes: ClusterNode[] = [];
  readonly pods: ClusterPod[] = [];
  private readonly all: Netns[] = [];
  private readonly tag: string;

  constructor(tag: string) {
    this.tag = `${PREFIX}-${process.pid}-${tag}`;
    this.hub = this.addNetns('hub');
    ipn(this.hub.name, 'link', 'add', 'br0', 'type', 'bridge');
    ipn(this.hub.name, 'link', 'set', 'br0', 'up');
  }

  private addNetns(suffix: string): Netns {
    const name = `${this.tag}-${suffix}`;
    run('ip', ['netns', 'add', name]);
    const ns = { name, path: `${NETNS_DIR}/${name}` };
    this.all.push(ns);
    ipn(name, 'link', 'set', 'lo', 'up');
    return ns;
  }

  private sysctl(ns: Netns, settings: string[]): void {
    run('ip', ['netns', 'exec', ns.name, 'sysctl', '-qw', ...settings]);
  }

  addNode(id: number): ClusterNode {
    const ns = this.addNetns(`n${id}`);
    const node: ClusterNode = { ...ns, id, ip: `10.77.0.${id}` };
    ipn(ns.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `n${id}`, 'netns', this.hub.name);
    ipn(this.hub.name, 'link', 'set', `n${id}`, 'master', 'br0', 'up');
    ipn(ns.name, 'addr', 'add', `${node.ip}/24`, 'dev', 'eth0');
    ipn(ns.name, 'link', 'set', 'eth0', 'up');
    ipn(ns.name, 'link', 'add', 'cbr0', 'type', 'bridge');
    ipn(ns.name, 'addr', 'add', `10.77.${id}.1/24`, 'dev', 'cbr0');
    ipn(ns.name, 'link', 'set', 'cbr0', 'up');
    this.sysctl(ns, [
      'net.ipv4.ip_forward=1',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
    ]);
    for (const other of this.nodes) {
      ipn(ns.name, 'route', 'add', `10.77.${other.id}.0/24`, 'via', other.ip);
      ipn(other.name, 'route', 'add', `10.77.${id}.0/24`, 'via', node.ip);
    }
    this.nodes.push(node);
    return node;
  }

  /** A pod on `node` with IP 10.77.<node>.<id>; `captured` installs the in-pod redirect rules. */
  addPod(node: ClusterNode, id: number, opts: { captured: boolean }): ClusterPod {
    const ns = this.addNetns(`n${node.id}-p${id}`);
    const pod: ClusterPod = { ...ns, node, ip: `10.77.${node.id}.${id}`, captured: opts.captured };
    ipn(ns.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${id}`, 'netns', node.name);
    ipn(node.name, 'link', 'set', `p${id}`, 'master', 'cbr0', 'up');
    ipn(ns.name, 'addr', 'add', `${pod.ip}/24`, 'dev', 'eth0');
    ipn(ns.name, 'link', 'set', 'eth0', 'up');
    ipn(ns.name, 'route', 'add', 'default', 'via', `10.77.${node.id}.1`);
    if (opts.captured) run('ip', ['netns', 'exec', ns.name, REDIRECT_SCRIPT]);
    this.pods.push(pod);
    return pod;
  }

  /** `iptables-save` of a namespace (to check the rules are there). */
  iptablesSave(ns: Netns): string {
    return run('ip', ['netns', 'exec', ns.name, 'iptables-save']);
  }

  /** Remove every namespace (and so every interface, route and rule) this cluster made. */
  remove(): void {
    for (const ns of this.all.splice(0).reverse()) {
      try {
        run('ip', ['netns', 'del', ns.name]);
      } catch {
        /* already gone */
      }
    }
  }
}

/** A TCP server whose listening socket lives in `ns` (an app in a pod). */
export async function listenIn(
  ns: Netns,
  port: number,
  onConnection: (socket: net.Socket) => void,
): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd: listenSocket(ns.path, '0.0.0.0', port) }, () => resolve());
  });
  return server;
}

/** A TCP connection opened from inside `ns` (an app in a pod: unmarked, so it is captured). */
export function connectIn(ns: Netns, host: string, port: number): net.Socket {
  const socket = new net.Socket({ fd: openSocket(ns.path, 4, 0), allowHalfOpen: true });
  return socket.connect({ host, port });
}

/** Send `payload`, half-close, and collect everything until the peer closes. */
export function exchangeIn(
  ns: Netns,
  host: string,
  port: number,
  payload: string,
): Promise<{ data: string; error?: string }> {
  return new Promise((resolve) => {
    const socket = connectIn(ns, host, port);
    let data = '';
    let error: string | undefined;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => resolve(error === undefined ? { data } : { data, error }));
    socket.once('connect', () => socket.end(payload));
  });
}

/**
 * HTTP GET from inside `ns` (the node daemon's metrics live in the node's namespace), written by
 * hand on a socket made in `ns`, so the request cannot leave through the host's network.
 */
export function httpGetIn(ns: Netns, host: string, port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectIn(ns, host, port);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.once('connect', () =>
      socket.end(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`),
    );
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const status = /^HTTP\/1\.1 (\d+)/.exec(text)?.[1];
      if (status === '200' && split >= 0) resolve(text.slice(split + 4));
      else reject(new Error(`GET ${path} from ${ns.name}: ${text.slice(0, 200) || 'no response'}`));
    });
  });
}
