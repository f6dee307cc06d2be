/**
 * The listeners of one local workload: HBONE inbound (15008) presenting the workload's own
 * certificate and the SOCKS5 outbound entry (15080); in capture mode also the captured outbound
 * (15001) and captured plaintext inbound (15006) listeners.
 *
 * Invariants: every listener is bound and every upstream socket is opened through the workload's
 * own WorkloadSockets (capture mode: inside its pod network namespace, marked); the HBONE server
 * always presents the current certificate of the workload's identity (rotated in place); every
 * accepted connection is tracked until it closes, so that drain can wait for it and a forced
 * close can end it.
 */
import type net from 'node:net';
import { errorMessage } from '../errors.js';
import { HboneServer, TCP_KEEPALIVE_MS, type Dialer, type RejectedStream } from '../hbone/index.js';
import type { WorkloadCertificate } from '../identity/index.js';
import type { Registry } from '../telemetry/index.js';
import { canonicalIp, type Workload } from '../state/index.js';
import { writeAccessLog, writeEarlyDeny } from './access-log.js';
import { buildInboundPolicy } from './inbound.js';
import { proxyToInboundPlaintext } from './inbound-plaintext.js';
import type { ProxyInputs } from './inputs.js';
import { proxyToOutbound, socksReplyFor, type OutboundRequest } from './outbound.js';
import { fetchTcpConnection, type WorkloadSockets } from './socket-factory.js';
import { proxyToSocks5 } from './socks5-server.js';
import { TcpListener } from './tcp-listener.js';

export interface WorkloadPorts {
  hbone: number;
  socks5: number;
  /** Capture mode only. */
  outbound?: number;
  inboundPlaintext?: number;
}

/** Accepted captured connections: keepalive as ztunnel applies on accept, half-close preserved. */
const CAPTURED_SERVER_OPTIONS: net.ServerOpts = {
  allowHalfOpen: true,
  noDelay: true,
  keepAlive: true,
  keepAliveInitialDelay: TCP_KEEPALIVE_MS,
};

export class WorkloadProxy {
  readonly uid: string;
  readonly ip: string;
  private readonly sockets: WorkloadSockets;
  private readonly hbone: HboneServer;
  private readonly socks: TcpListener;
  private readonly captured: TcpListener[] = [];
  private readonly outboundCaptured: TcpListener | undefined;
  private readonly inboundPlaintext: TcpListener | undefined;

  constructor(
    private readonly inputs: ProxyInputs,
    readonly workload: Workload,
    cert: WorkloadCertificate,
    registry: Registry,
  ) {
    this.uid = workload.uid;
    this.ip = workload.workloadIps[0] ?? '';
    this.sockets = inputs.sockets.forWorkload(workload);
    const dialer: Dialer = (target, timeoutMs) => fetchTcpConnection(this.sockets, target, timeoutMs);
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
    this.socks = new TcpListener('socks5', (socket) => this.onSocks(socket));
    if (inputs.sockets.captures) {
      this.outboundCaptured = new TcpListener(
        'outbound',
        (socket) => this.onOutboundCaptured(socket),
        CAPTURED_SERVER_OPTIONS,
      );
      this.inboundPlaintext = new TcpListener(
        'inbound plaintext',
        (socket) => this.onInboundPlaintext(socket),
        CAPTURED_SERVER_OPTIONS,
      );
      this.captured.push(this.outboundCaptured, this.inboundPlaintext);
    }
  }

  private get tcpListeners(): TcpListener[] {
    return [this.socks, ...this.captured];
  }

  async start(): Promise<void> {
    const { ports } = this.inputs.config;
    await this.hbone.listen(this.sockets.listen(ports.hbone, 'workload'));
    try {
      // SOCKS5 is an explicit entry for the pod's own apps: loopback only in a pod netns, as ztunnel.
      await this.socks.listen(this.sockets.listen(ports.socks5, 'localhost'));
      await this.outboundCaptured?.listen(this.sockets.listen(ports.outbound, 'workload'));
      await this.inboundPlaintext?.listen(this.sockets.listen(ports.inboundPlaintext, 'workload'));
    } catch (err) {
      for (const l of this.tcpListeners) l.close();
      await this.hbone.close();
      throw err;
    }
  }

  /** The listening ports (useful when configured as 0 in tests). */
  addresses(): WorkloadPorts {
    return {
      hbone: this.hbone.address()?.port ?? 0,
      socks5: this.socks.port,
      ...(this.outboundCaptured ? { outbound: this.outboundCaptured.port } : {}),
      ...(this.inboundPlaintext ? { inboundPlaintext: this.inboundPlaintext.port } : {}),
    };
  }

  setCertificate(cert: WorkloadCertificate): void {
    this.hbone.setCertificate(cert);
  }

  get activeConnections(): number {
    return this.tcpListeners.reduce((n, l) => n + l.size, 0) + this.hbone.tunnelCount;
  }

  /** Stop accepting; GOAWAY inbound sessions; resolve when every connection has ended. */
  async drain(): Promise<void> {
    for (const l of this.tcpListeners) l.stopAccepting();
    await Promise.all([this.hbone.drain(), ...this.tcpListeners.map((l) => l.whenIdle())]);
  }

  /** End everything now (pod removed, or the drain deadline passed). */
  async close(): Promise<void> {
    for (const l of this.tcpListeners) l.close();
    await this.hbone.close();
  }

  private outbound(req: Omit<OutboundRequest, 'source' | 'sockets'>): void {
    proxyToOutbound(this.inputs, { ...req, source: this.workload, sockets: this.sockets }).catch(
      (err: unknown) => {
        this.inputs.logger.error({ err: errorMessage(err) }, 'outbound connection failed unexpectedly');
        req.downstream.destroy();
      },
    );
  }

  /** 15001: the app connected anywhere; iptables brought it here; SO_ORIGINAL_DST says where. */
  private onOutboundCaptured(socket: net.Socket): void {
    const clientIp = canonicalIp(socket.remoteAddress ?? '') ?? this.ip;
    const original = this.inputs.sockets.originalDestination(socket);
    if (!original.ok) {
      writeEarlyDeny(this.inputs.accessLog, {
        direction: 'outbound',
        srcAddr: `${clientIp}:${socket.remotePort ?? 0}`,
        dstAddr: 'unknown',
        error: original.reason,
      });
      socket.resetAndDestroy();
      return;
    }
    this.outbound({
      clientIp,
      clientPort: socket.remotePort ?? 0,
      downstream: socket,
      target: { ip: original.ip, port: original.port },
      // A captured client has no protocol to learn why: it sees the connection reset.
      failed: () => socket.resetAndDestroy(),
    });
  }

  /** 15006: a client outside the mesh connected to this pod in plaintext. */
  private onInboundPlaintext(socket: net.Socket): void {
    proxyToInboundPlaintext(this.inputs, this.uid, this.sockets, socket).catch((err: unknown) => {
      this.inputs.logger.error({ err: errorMessage(err) }, 'plaintext inbound failed unexpectedly');
      socket.destroy();
    });
  }

  private onSocks(socket: net.Socket): void {
    proxyToSocks5(
      socket,
      (s, target, session) =>
        this.outbound({
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
        }),
      (message) =>
        this.inputs.logger.debug(
          { 'src.addr': `${socket.remoteAddress}:${socket.remotePort}`, error: message },
          'SOCKS5 handshake failed',
        ),
    );
  }
}
