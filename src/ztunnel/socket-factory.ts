/**
 * The seam between the proxy and the network it runs in. Everything above this interface is the
 * same code in local mode and in capture mode; only how a workload's listener is bound and how a
 * socket is dialed on the workload's behalf differs:
 * - local mode: listeners bind the workload's own loopback IP (127.x.y.z), and dials bind it as
 *   their source address, so peers see the real workload IP;
 * - capture mode (later): listeners and dials are created inside the pod's network namespace,
 *   marked 0x539 so the pod's iptables rules let them through.
 */
import net from 'node:net';

export interface DialOptions {
  host: string;
  port: number;
  /** Source address to bind, if any. */
  localAddress?: string;
}

export interface SocketFactory {
  /** Where a workload's listener for `port` binds. */
  listenOptions(workloadIp: string, port: number): net.ListenOptions;
  /** Open a TCP connection on a workload's behalf. Connect errors surface as 'error' events. */
  connect(opts: DialOptions): net.Socket;
}

export class LoopbackSocketFactory implements SocketFactory {
  listenOptions(workloadIp: string, port: number): net.ListenOptions {
    return { host: workloadIp, port, backlog: 511 };
  }

  connect(opts: DialOptions): net.Socket {
    return net.connect({ host: opts.host, port: opts.port, localAddress: opts.localAddress, noDelay: true });
  }
}
