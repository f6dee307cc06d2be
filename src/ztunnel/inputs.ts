/**
 * ProxyInputs: everything a workload's proxy needs, passed as one bundle (ztunnel's ProxyInputs)
 * rather than as long parameter lists. Built once by the composition root.
 */
import type { Config } from '../config.js';
import type { HbonePool } from '../hbone/index.js';
import type { CertificateManager } from '../identity/index.js';
import type { MeshState } from '../state/index.js';
import type { Logger } from '../telemetry/index.js';
import type { ConnectionManager } from './connection-manager.js';
import type { TrafficMetrics } from './metrics.js';
import type { SocketFactory } from './socket-factory.js';

export interface ProxyInputs {
  config: Readonly<Config>;
  /** The current state (the latest good config snapshot). */
  state: () => MeshState;
  nodeName: string;
  certs: CertificateManager;
  pool: HbonePool;
  metrics: TrafficMetrics;
  connections: ConnectionManager;
  sockets: SocketFactory;
  /** The ztunnel component logger. */
  logger: Logger;
  /** Where access-log lines go. */
  accessLog: Logger;
  /** Original destinations on these ports at a local address are loops (15001/15006/15008/15080). */
  illegalPorts: readonly number[];
  /**
   * Dial the app from the client's own IP, as ztunnel's transparent inbound does. Possible in
   * local mode because every pod IP is a local loopback address, and in capture mode because the
   * dial is IP_TRANSPARENT inside the pod, whose connmark rules route the replies back.
   */
  preserveSourceIp: boolean;
  /** Connections refuse new work once draining. */
  draining: () => boolean;
}
