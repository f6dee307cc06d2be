/**
 * InboundConnection: what both inbound variants do for one connection to a local workload —
 * HBONE (15008, mutual TLS, the peer's identity known) and plaintext (15006, captured, no
 * identity): L4 authorization, Istio's TCP metrics with reporter=destination, tracking for late
 * policy enforcement, and one access-log line.
 *
 * Invariants: each connection is reported exactly once: either reject() (metrics when asked,
 * and an access-log line), or open() and later finish(); a tracked connection is untracked when
 * it finishes; one closed by a policy change finishes with response_flags DENY; a failed dial to
 * the app finishes with CONNECT.
 */
import {
  buildAuthzDecision,
  identityOf,
  type AuthzDecision,
  type ConnectionAttributes,
  type MeshState,
  type Service,
  type Workload,
} from '../state/index.js';
import { writeAccessLog, type AccessLogEntry } from './access-log.js';
import type { ProxyInputs } from './inputs.js';
import type { ResponseFlags, TrafficLabelsInput, TrafficRecord } from './metrics.js';

export interface InboundConnectionInit {
  /** Connection id for logs: the HBONE traceparent, or a generated one. */
  id: string;
  /** HBONE: mutual TLS through 15008. TCP: captured plaintext through 15006. */
  protocol: 'HBONE' | 'TCP';
  /** The local destination workload; undefined when it is no longer in config. */
  workload: Workload | undefined;
  /** The source workload, looked up by the client's IP. */
  source: Workload | undefined;
  /** The verified peer identity (HBONE only; plaintext has none). */
  sourceIdentity: string | undefined;
  srcAddr: string;
  /** The actual TCP destination (HBONE: <pod ip>:15008; plaintext: the original destination). */
  dstAddr: string;
  /** The CONNECT authority (HBONE only). */
  dstHboneAddr?: string;
}

export interface InboundOutcome {
  bytesUp: number;
  bytesDown: number;
  /** Defaults to the time since the connection was created. */
  durationMs?: number;
  /** HBONE status sent (200, or 503 when the dial failed). */
  status?: number;
  error?: string;
  /** The app could not be dialed. */
  dialFailed?: boolean;
}

export class InboundConnection {
  private readonly startedMs = Date.now();
  private record: TrafficRecord | undefined;
  private service: Service | undefined;
  private untrack: (() => void) | undefined;
  private closedByPolicy = false;
  private reported = false;

  constructor(
    private readonly inputs: ProxyInputs,
    private readonly c: InboundConnectionInit,
  ) {}

  private labels(service: Service | undefined): TrafficLabelsInput {
    return {
      reporter: 'destination',
      source: this.c.source,
      sourcePrincipal: this.c.sourceIdentity,
      destination: this.c.workload,
      destinationPrincipal: this.c.workload ? identityOf(this.c.workload) : undefined,
      destinationService: service,
      mtls: this.c.protocol === 'HBONE',
    };
  }

  private base(): AccessLogEntry {
    const e: AccessLogEntry = {
      direction: 'inbound',
      id: this.c.id,
      srcAddr: this.c.srcAddr,
      srcWorkload: this.c.source,
      srcIdentity: this.c.sourceIdentity,
      dstAddr: this.c.dstAddr,
      dstWorkload: this.c.workload,
      bytesUp: 0,
      bytesDown: 0,
      durationMs: Date.now() - this.startedMs,
    };
    if (this.c.dstHboneAddr !== undefined) e.dstHboneAddr = this.c.dstHboneAddr;
    return e;
  }

  /**
   * Refused before any byte flowed. `metrics` counts it (opened and closed with `flags`) once
   * the destination is known well enough to label it.
   */
  reject(
    reason: string,
    flags: ResponseFlags,
    opts: { status?: number; metrics?: boolean; service?: Service } = {},
  ): void {
    if (this.reported) return;
    this.reported = true;
    if (opts.metrics) {
      this.inputs.metrics
        .recordOpen(this.labels(opts.service))
        .close({ bytesReceived: 0, bytesSent: 0, responseFlags: flags });
    }
    writeAccessLog(this.inputs.accessLog, {
      ...this.base(),
      error: reason,
      responseFlags: flags,
      ...(opts.status !== undefined ? { status: opts.status } : {}),
    });
  }

  /** L4 authorization in Istio's order; a deny is rejected here (DENY, and `status` for HBONE). */
  authorize(
    state: MeshState,
    attrs: ConnectionAttributes,
    service: Service | undefined,
    status?: number,
  ): AuthzDecision {
    const decision = buildAuthzDecision(state, attrs);
    if (!decision.allow) {
      this.reject(`connection closed due to policy rejection: ${decision.reason}`, 'DENY', {
        metrics: true,
        service,
        ...(status !== undefined ? { status } : {}),
      });
    }
    return decision;
  }

  /** Authorized: count it opened. */
  open(service: Service | undefined): void {
    this.service = service;
    this.record = this.inputs.metrics.recordOpen(this.labels(service));
  }

  /** Track it so a policy change can close it; `close` tears the connection down. */
  track(attrs: ConnectionAttributes, actualDst: string, close: (reason: string) => void): void {
    this.untrack = this.inputs.connections.register({
      attrs,
      src: this.c.srcAddr,
      originalDst: this.c.dstHboneAddr ?? this.c.dstAddr,
      actualDst,
      protocol: this.c.protocol,
      close: (reason) => {
        this.closedByPolicy = true;
        close(reason);
      },
    });
  }

  /** Once, after open(): the copy ended, or the dial to the app failed. */
  finish(o: InboundOutcome): void {
    if (this.reported) return;
    this.reported = true;
    this.untrack?.();
    const flags: ResponseFlags = o.dialFailed ? 'CONNECT' : this.closedByPolicy ? 'DENY' : '-';
    this.record?.close({ bytesReceived: o.bytesUp, bytesSent: o.bytesDown, responseFlags: flags });
    writeAccessLog(this.inputs.accessLog, {
      ...this.base(),
      dstService: this.service,
      dstIdentity: this.c.workload ? identityOf(this.c.workload) : undefined,
      bytesUp: o.bytesUp,
      bytesDown: o.bytesDown,
      durationMs: o.durationMs ?? Date.now() - this.startedMs,
      ...(o.status !== undefined ? { status: o.status } : {}),
      ...(flags !== '-' ? { responseFlags: flags } : {}),
      ...(o.error ? { error: o.error } : {}),
    });
  }
}
