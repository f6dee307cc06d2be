/**
 * HBONE's own metrics (not Istio's TCP metrics, which the ztunnel layer records). They live in an
 * injected prom-client Registry, never the global one; one HboneMetrics exists per registry so
 * that a server and a pool in the same daemon share the series. Label sets are bound once.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export type HboneDirection = 'inbound' | 'outbound';

/** Why an outbound dial, or an inbound app dial, failed. */
export type DialFailureReason =
  'connect_timeout' | 'connect' | 'tls' | 'identity' | 'session' | 'app_connect' | 'app_connect_timeout';

/** Why an inbound connection was closed before HTTP/2 started. */
export type HandshakeFailureReason = 'tls' | 'peer_identity' | 'alpn';

interface Bound {
  inc(v?: number): void;
  dec(v?: number): void;
}

const byRegistry = new WeakMap<Registry, HboneMetrics>();

export class HboneMetrics {
  private readonly sessionsActive: Record<HboneDirection, Bound>;
  private readonly streamsActive: Record<HboneDirection, Bound>;
  private readonly sessionsOpened: Counter<'direction'>;
  private readonly sessionsClosed: Counter<'direction'>;
  private readonly dialFailures: Counter<'direction' | 'reason'>;
  private readonly handshakeFailures: Counter<'reason'>;
  private readonly streamResponses: Counter<'direction' | 'status'>;

  /** The metrics of `registry` (created on first use); without a registry, unregistered ones. */
  static of(registry: Registry | undefined): HboneMetrics {
    if (!registry) return new HboneMetrics([]);
    let m = byRegistry.get(registry);
    if (!m) {
      m = new HboneMetrics([registry]);
      byRegistry.set(registry, m);
    }
    return m;
  }

  private constructor(registers: Registry[]) {
    const sessions = new Gauge({
      name: 'meshd_hbone_sessions_active',
      help: 'HBONE HTTP/2 connections currently open, by direction (unstable)',
      labelNames: ['direction'],
      registers,
    });
    const streams = new Gauge({
      name: 'meshd_hbone_streams_active',
      help: 'HBONE CONNECT streams currently open, by direction (unstable)',
      labelNames: ['direction'],
      registers,
    });
    this.sessionsActive = { inbound: sessions.labels('inbound'), outbound: sessions.labels('outbound') };
    this.streamsActive = { inbound: streams.labels('inbound'), outbound: streams.labels('outbound') };
    this.sessionsOpened = new Counter({
      name: 'meshd_hbone_sessions_opened_total',
      help: 'HBONE HTTP/2 connections opened (outbound: after TLS and SETTINGS; inbound: after the peer check) (unstable)',
      labelNames: ['direction'],
      registers,
    });
    this.sessionsClosed = new Counter({
      name: 'meshd_hbone_sessions_closed_total',
      help: 'HBONE HTTP/2 connections closed (unstable)',
      labelNames: ['direction'],
      registers,
    });
    this.dialFailures = new Counter({
      name: 'meshd_hbone_dial_failures_total',
      help: 'Failed HBONE dials (outbound) and failed app dials behind an HBONE server (inbound), by reason (unstable)',
      labelNames: ['direction', 'reason'],
      registers,
    });
    this.handshakeFailures = new Counter({
      name: 'meshd_hbone_handshake_failures_total',
      help: 'Inbound HBONE connections closed before HTTP/2: TLS failure, peer outside the trust domain, no h2 ALPN (unstable)',
      labelNames: ['reason'],
      registers,
    });
    this.streamResponses = new Counter({
      name: 'meshd_hbone_stream_responses_total',
      help: 'CONNECT responses sent (inbound) or received (outbound), by HTTP status (unstable)',
      labelNames: ['direction', 'status'],
      registers,
    });
  }

  recordSessionOpened(d: HboneDirection): void {
    this.sessionsOpened.inc({ direction: d });
    this.sessionsActive[d].inc();
  }

  recordSessionClosed(d: HboneDirection): void {
    this.sessionsClosed.inc({ direction: d });
    this.sessionsActive[d].dec();
  }

  recordStreamOpened(d: HboneDirection): void {
    this.streamsActive[d].inc();
  }

  recordStreamClosed(d: HboneDirection): void {
    this.streamsActive[d].dec();
  }

  recordDialFailure(d: HboneDirection, reason: DialFailureReason): void {
    this.dialFailures.inc({ direction: d, reason });
  }

  recordHandshakeFailure(reason: HandshakeFailureReason): void {
    this.handshakeFailures.inc({ reason });
  }

  recordResponse(d: HboneDirection, status: number): void {
    this.streamResponses.inc({ direction: d, status: String(status) });
  }
}
