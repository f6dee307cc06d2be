/**
 * The listeners of one local workload: HBONE inbound (15008) presenting the workload's own
 * certificate, and the SOCKS5 outbound entry (15080). (Capture mode adds 15001/15006 here.)
 *
 * Invariants: both listeners bind the workload's IP through the SocketFactory; the HBONE server
 * always presents the current certificate of the workload's identity (rotated in place); every
 * accepted outbound connection is tracked until it closes, so that drain can wait for it and a
 * forced close can end it.
 */
import net from 'node:net';
import { errorMessage } from '../errors.js';
import { HboneServer, type DialResult, type Dialer, type RejectedStream } from '../hbone/index.js';
import type { WorkloadCertificate } from '../identity/index.js';
import type { Registry } from '../telemetry/index.js';
import type { Workload } from '../state/index.js';
import { writeAccessLog } from './access-log.js';
import { buildInboundPolicy } from './inbound.js';
import type { ProxyInputs } from './inputs.js';
import { proxyToOutbound, socksReplyFor } from './outbound.js';
import { proxyToSocks5 } from './socks5-server.js';

function listenNet(server: net.Server, opts: net.ListenOptions): Promise<net.AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts, () => {
      server.off('error', reject);
      resolve(server.address() as net.AddressInfo);
    });
  });
}

export class WorkloadProxy {
  readonly uid: string;
  readonly ip: string;
  private readonly hbone: HboneServer;
  private readonly socks: net.Server;
  private readonly outbound = new Set<net.Socket>();
  private readonly idleWaiters: Array<() => void> = [];

  constructor(
    private readonly inputs: ProxyInputs,
    readonly workload: Workload,
    cert: WorkloadCertificate,
    registry: Registry,
  ) {
    this.uid = workload.uid;
    this.ip = workload.workloadIps[0] ?? '';
    const dialer: Dialer = (target, timeoutMs) =>
      new Promise<DialResult>((resolve) => {
        const socket = inputs.sockets.connect(target);
        const timer = setTimeout(() => {
          socket.destroy();
          resolve({
            ok: false,
            reason: `timed out connecting to ${target.host}:${target.port}`,
            timedOut: true,
          });
        }, timeoutMs);
        socket.once('connect', () => {
          clearTimeout(timer);
          socket.removeAllListeners('error');
          resolve({ ok: true, socket });
        });
        socket.once('error', (err) => {
          clearTimeout(timer);
          resolve({
            ok: false,
            reason: `connecting to ${target.host}:${target.port}: ${errorMessage(err)}`,
            timedOut: false,
          });
        });
      });
    this.hbone = new HboneServer({
      certificate: cert,
      policy: buildInboundPolicy(inputs, workload.uid),
      http2: inputs.config.http2,
      connectTimeoutMs: inputs.config.connectTimeoutMs,
      tlsHandshakeTimeoutMs: inputs.config.tlsHandshakeTimeoutMs,
      dialer,
      registry,
      logger: inputs.logger,
      onStreamRejected: (r: RejectedStream) =>
        writeAccessLog(inputs.accessLog, {
          direction: 'inbound',
          id: r.connectionId,
          srcAddr: `${r.peerAddress.ip}:${r.peerAddress.port}`,
          srcIdentity: r.peer.uri,
          dstAddr: `${r.localAddress.ip}:${r.localAddress.port}`,
          ...(r.authority ? { dstHboneAddr: r.authority } : {}),
          dstWorkload: workload,
          bytesUp: 0,
          bytesDown: 0,
          durationMs: 0,
          status: r.status,
          error: r.reason,
        }),
    });
    this.socks = net.createServer((socket) => this.onSocks(socket));
  }

  async start(): Promise<void> {
    const { ports } = this.inputs.config;
    await this.hbone.listen(this.inputs.sockets.listenOptions(this.ip, ports.hbone));
    try {
      await listenNet(this.socks, this.inputs.sockets.listenOptions(this.ip, ports.socks5));
    } catch (err) {
      await this.hbone.close();
      throw err;
    }
  }

  /** The listening ports (useful when configured as 0 in tests). */
  addresses(): { hbone: number; socks5: number } {
    return {
      hbone: this.hbone.address()?.port ?? 0,
      socks5: (this.socks.address() as net.AddressInfo | null)?.port ?? 0,
    };
  }

  setCertificate(cert: WorkloadCertificate): void {
    this.hbone.setCertificate(cert);
  }

  get activeConnections(): number {
    return this.outbound.size + this.hbone.tunnelCount;
  }

  /** Stop accepting; GOAWAY inbound sessions; resolve when every connection has ended. */
  async drain(): Promise<void> {
    if (this.socks.listening) this.socks.close();
    await Promise.all([this.hbone.drain(), this.whenNoOutbound()]);
  }

  /** End everything now (pod removed, or the drain deadline passed). */
  async close(): Promise<void> {
    if (this.socks.listening) this.socks.close();
    for (const s of this.outbound) s.destroy();
    await this.hbone.close();
  }

  private whenNoOutbound(): Promise<void> {
    if (this.outbound.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private onSocks(socket: net.Socket): void {
    this.outbound.add(socket);
    socket.once('close', () => {
      this.outbound.delete(socket);
      if (this.outbound.size === 0) this.idleWaiters.splice(0).forEach((w) => w());
    });
    socket.on('error', () => socket.destroy());
    proxyToSocks5(
      socket,
      (s, target, session) => {
        void proxyToOutbound(this.inputs, {
          source: this.workload,
          // The workload's own IP, as a pod-netns listener would see it: a local-mode client's
          // TCP source is whatever loopback address the kernel picked.
          clientIp: this.ip,
          clientPort: s.remotePort ?? 0,
          downstream: s,
          target:
            target.kind === 'ip'
              ? { ip: target.ip, port: target.port }
              : { hostname: target.hostname, port: target.port },
          // The copy that follows takes over reading the (paused) socket.
          established: () => session.succeed(),
          failed: (f) => session.fail(socksReplyFor(f.kind)),
        }).catch((err: unknown) => {
          this.inputs.logger.error({ err: errorMessage(err) }, 'outbound connection failed unexpectedly');
          s.destroy();
        });
      },
      (message) =>
        this.inputs.logger.debug(
          { 'src.addr': `${socket.remoteAddress}:${socket.remotePort}`, error: message },
          'SOCKS5 handshake failed',
        ),
    );
  }
}
