/**
 * NetnsSocketFactory: the SocketFactory of capture mode, as Istio's in-pod mode. The daemon runs
 * in its node's network namespace; each pod's sockets are made inside the pod's namespace by the
 * native addon (setns, socket, setns back), so the listeners sit in the pod itself, where the
 * pod's iptables rules redirect its traffic to them.
 *
 * Invariants:
 * - every socket of a workload, listening or dialed, is created inside that workload's network
 *   namespace and carries the mesh mark (0x539), which the pod's redirect rules skip, so the
 *   daemon's own traffic is never captured again;
 * - a dial whose source address is not one of the workload's own IPs (the original client's IP,
 *   towards the app) is IP_TRANSPARENT; the pod's connmark/table-100 rules route the replies back;
 * - listeners bind the wildcard of the pod IP's family (loopback for SOCKS5, as ztunnel) with
 *   SO_REUSEPORT, so a new daemon can take over a pod's ports while the old one drains
 *   (ztunnel's INPOD_PORT_REUSE);
 * - a workload whose namespace is unknown cannot be placed: forWorkload throws a MeshError that
 *   says how to declare it, and its proxy stays Pending.
 */
import net from 'node:net';
import { MESH_PACKET_MARK, getOriginalDst, listenSocket, openSocket } from '../capture/index.js';
import { MeshError, errorMessage } from '../errors.js';
import { TCP_KEEPALIVE_MS } from '../hbone/index.js';
import { canonicalIp, type Workload } from '../state/index.js';
import type {
  DialOptions,
  ListenScope,
  ListenTarget,
  OriginalDestination,
  SocketFactory,
  WorkloadSockets,
} from './socket-factory.js';

/** The native calls this factory makes; injected in unit tests. */
export interface CaptureNative {
  listenSocket: typeof listenSocket;
  openSocket: typeof openSocket;
  getOriginalDst: typeof getOriginalDst;
}

export interface NetnsSocketFactoryOptions {
  /** The network namespace (a path) of a local workload, or undefined when none is declared. */
  findNetns: (workload: Workload) => string | undefined;
  /** What to tell the operator when a workload has no namespace declared. */
  missingNetnsHint: string;
  /** Mark on every socket; Istio's in-pod mark 0x539 by default. */
  mark?: number;
  native?: CaptureNative;
}

const NATIVE: CaptureNative = { listenSocket, openSocket, getOriginalDst };

/** The fd under an accepted or created socket (libuv's TCP handle). */
function fdOf(socket: net.Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

function bindHint(code: string | undefined, netns: string, port: number): string {
  switch (code) {
    case 'ENOENT':
      return `the network namespace ${netns} does not exist: create it (ip netns add) or declare the pod's actual namespace`;
    case 'EADDRINUSE':
      return `something else listens on port ${port} inside the pod's network namespace (the app, or another daemon without SO_REUSEPORT)`;
    case 'EPERM':
    case 'EACCES':
      return 'capture mode needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)';
    default:
      return 'check that the namespace is a network namespace (ip netns list) and the port is free in it';
  }
}

export class NetnsSocketFactory implements SocketFactory {
  readonly captures = true;
  private readonly mark: number;
  private readonly native: CaptureNative;

  constructor(private readonly opts: NetnsSocketFactoryOptions) {
    this.mark = opts.mark ?? MESH_PACKET_MARK;
    this.native = opts.native ?? NATIVE;
  }

  placementOf(workload: Workload): string {
    return this.opts.findNetns(workload) ?? '';
  }

  forWorkload(workload: Workload): WorkloadSockets {
    const netns = this.opts.findNetns(workload);
    const pod = `${workload.namespace}/${workload.name}`;
    if (netns === undefined || netns === '') {
      throw new MeshError('MESH_ERR_CAPTURE', `no network namespace is declared for pod ${pod}`, {
        hint: this.opts.missingNetnsHint,
      });
    }
    const ips = workload.workloadIps;
    const v6 = net.isIPv6(ips[0] ?? '');
    const { mark, native } = this;
    return {
      listen: (port: number, scope: ListenScope): ListenTarget => {
        const host = scope === 'localhost' ? (v6 ? '::1' : '127.0.0.1') : v6 ? '::' : '0.0.0.0';
        try {
          return { fd: native.listenSocket(netns, host, port, { mark, reusePort: true }) };
        } catch (err) {
          throw new MeshError(
            'MESH_ERR_BIND',
            `cannot listen on ${v6 ? `[${host}]` : host}:${port} in network namespace ${netns} of pod ${pod}: ${errorMessage(err)}`,
            { cause: err, hint: bindHint((err as { code?: string }).code, netns, port) },
          );
        }
      },
      connect: (o: DialOptions): net.Socket => {
        const src = o.localAddress === undefined ? undefined : canonicalIp(o.localAddress);
        const transparent = src !== undefined && !ips.includes(src);
        const fd = native.openSocket(netns, net.isIPv6(o.host) ? 6 : 4, mark, transparent);
        const socket = new net.Socket({ fd, allowHalfOpen: true });
        socket.setNoDelay(true);
        socket.setKeepAlive(true, TCP_KEEPALIVE_MS);
        return socket.connect({
          host: o.host,
          port: o.port,
          ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}),
        });
      },
    };
  }

  originalDestination(socket: net.Socket): OriginalDestination {
    const fd = fdOf(socket);
    if (fd === undefined) return { ok: false, reason: 'the connection has no socket any more' };
    try {
      const dst = this.native.getOriginalDst(fd);
      return { ok: true, ip: canonicalIp(dst.address) ?? dst.address, port: dst.port };
    } catch (err) {
      return { ok: false, reason: `reading the original destination: ${errorMessage(err)}` };
    }
  }
}
