/**
 * The seam between the proxy and the network it runs in. Everything above this interface is the
 * same code in local mode and in capture mode; only where a workload's listeners are bound and
 * how a socket is dialed on the workload's behalf differs:
 * - local mode (LoopbackSocketFactory): listeners bind the workload's own loopback IP
 *   (127.x.y.z), and dials bind it as their source address, so peers see the real workload IP;
 *   applications enter through SOCKS5, nothing is captured;
 * - capture mode (NetnsSocketFactory, socket-factory-netns.ts): listeners and dials are created
 *   inside the pod's network namespace and marked 0x539 so the pod's iptables rules let them
 *   through; the proxy also listens on 15001/15006 and reads SO_ORIGINAL_DST.
 *
 * A factory hands out one WorkloadSockets per workload proxy; the proxy keeps it for its life.
 */
import net from 'node:net';
import type { DialResult } from '../hbone/index.js';
import type { Workload } from '../state/index.js';

export interface DialOptions {
  host: string;
  port: number;
  /** Source address to bind, if any (capture mode: may be the original client's IP). */
  localAddress?: string;
}

/** Which of a workload's listeners: its own address, or loopback only (SOCKS5, as ztunnel). */
export type ListenScope = 'workload' | 'localhost';

/** What `server.listen()` takes: an address (local mode) or a socket made in the pod (capture). */
export type ListenTarget = net.ListenOptions | { fd: number };

export type OriginalDestination = { ok: true; ip: string; port: number } | { ok: false; reason: string };

/** The sockets of one workload. */
export interface WorkloadSockets {
  /** Options for `server.listen()` of the workload's listener on `port`. Throws MeshError. */
  listen(port: number, scope: ListenScope): ListenTarget;
  /** Open a TCP connection on the workload's behalf. Connect errors surface as 'error' events. */
  connect(opts: DialOptions): net.Socket;
}

export interface SocketFactory {
  /**
   * Whether workloads' traffic is captured: their proxies also listen on the captured outbound
   * (15001) and plaintext inbound (15006) ports and read original destinations.
   */
  readonly captures: boolean;
  /** Where the workload lives (its IP, or its network namespace); a change restarts its proxy. */
  placementOf(workload: Workload): string;
  /** The workload's sockets. Throws MeshError when it cannot be placed (e.g. no netns known). */
  forWorkload(workload: Workload): WorkloadSockets;
  /** The destination a captured connection had before REDIRECT (SO_ORIGINAL_DST). */
  originalDestination(socket: net.Socket): OriginalDestination;
}

export class LoopbackSocketFactory implements SocketFactory {
  readonly captures = false;

  placementOf(workload: Workload): string {
    return workload.workloadIps[0] ?? '';
  }

  forWorkload(workload: Workload): WorkloadSockets {
    const ip = workload.workloadIps[0] ?? '';
    return {
      // In local mode every listener is on the workload's own loopback IP: there is no pod
      // netns whose 127.0.0.1 would be the workload's alone.
      listen: (port) => ({ host: ip, port, backlog: 511 }),
      connect: (opts) =>
        net.connect({
          host: opts.host,
          port: opts.port,
          localAddress: opts.localAddress,
          noDelay: true,
        }),
    };
  }

  originalDestination(): OriginalDestination {
    return { ok: false, reason: 'local mode captures no traffic' };
  }
}

/** Connect through `sockets`, bounded by `timeoutMs`. A failure is a value, not an exception. */
export function fetchTcpConnection(
  sockets: WorkloadSockets,
  target: DialOptions,
  timeoutMs: number,
): Promise<DialResult> {
  return new Promise((resolve) => {
    const where = net.isIPv6(target.host)
      ? `[${target.host}]:${target.port}`
      : `${target.host}:${target.port}`;
    let socket: net.Socket;
    try {
      socket = sockets.connect(target);
    } catch (err) {
      resolve({ ok: false, reason: `connecting to ${where}: ${(err as Error).message}`, timedOut: false });
      return;
    }
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ok: false, reason: `timed out connecting to ${where}`, timedOut: true });
    }, timeoutMs);
    const onError = (err: Error) => {
      clearTimeout(timer);
      resolve({ ok: false, reason: `connecting to ${where}: ${err.message}`, timedOut: false });
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      // Until the caller's copy attaches its own listener, an early reset must not crash us.
      socket.on('error', ignore);
      resolve({ ok: true, socket });
    });
  });
}

function ignore(): void {}
