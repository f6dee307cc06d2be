/**
 * HbonePool: shared outbound HBONE sessions, as ztunnel's pool.
 *
 * Invariants:
 * - Key = (source identity, ordered expected identities, destination address, source IP).
 * - A session is handed out only while it is in its key's list: not closed, no GOAWAY, not
 *   failed, and with active streams below its cap = min(maxStreamsPerConnection, the peer's
 *   SETTINGS_MAX_CONCURRENT_STREAMS). The checkout that takes it to the cap removes it from the
 *   list, and it is never put back: it closes once its last stream ends.
 * - At most one dial is in flight per key; callers that find no usable session wait for it and
 *   then check out again (so N concurrent first callers cost exactly one TLS handshake). A failed
 *   dial fails every caller waiting on it.
 * - A pooled session with no streams for idleTimeoutMs is removed and closed.
 * - Keepalive PINGs run on every session; one unanswered for the timeout destroys it.
 * - One SecureContext per WorkloadCertificate object, reused for every dial with it.
 * - After close()/destroy() the pool dials nothing and rejects new requests.
 */
import type http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { Registry } from 'prom-client';
import { DEFAULT_CONFIG, type Http2Config, type PoolConfig } from '../config.js';
import { MeshError, errorMessage } from '../errors.js';
import { buildSecureContext, type WorkloadCertificate } from '../identity/index.js';
import { silentLogger, type Logger } from '../telemetry/logger.js';
import { HboneStatusError, fetchHboneSession, isRefusedStream, openConnectStream } from './client.js';
import { formatAuthority } from './headers.js';
import { HboneMetrics } from './metrics.js';
import { dialFailureReason, poolKey, validateRequest, type HboneConnectRequest } from './pool-request.js';
import { Keepalive, watchSession } from './session-options.js';

export interface HbonePoolOptions {
  http2?: Http2Config;
  pool?: PoolConfig;
  connectTimeoutMs?: number;
  tlsHandshakeTimeoutMs?: number;
  registry?: Registry;
  logger?: Logger;
  /** Session lifecycle, for logs and tests. */
  onSessionEvent?: (e: PoolSessionEvent) => void;
}

export interface PoolSessionEvent {
  kind: 'opened' | 'goaway' | 'closed';
  key: string;
  sessionId: number;
  error?: string;
}

export interface PoolStats {
  keys: number;
  /** Sessions still handed out for new streams. */
  pooledSessions: number;
  /** All open sessions, pooled or not. */
  sessions: number;
  streams: number;
  dialsInFlight: number;
}

class PooledSession {
  active = 0;
  pooled = true;
  maxStreams: number;
  idleTimer: NodeJS.Timeout | undefined;
  readonly keepalive: Keepalive;
  /** One 'close' listener shared by all of this session's streams (no closure per tunnel). */
  onStreamClose: () => void = () => {};

  constructor(
    readonly id: number,
    readonly key: string,
    readonly session: http2.ClientHttp2Session,
    readonly socket: tls.TLSSocket,
    private readonly poolCap: number,
    h: Http2Config,
  ) {
    this.maxStreams = this.capFromSettings();
    this.keepalive = new Keepalive(session, h.pingIntervalMs, h.pingTimeoutMs);
  }

  capFromSettings(): number {
    const peer = this.session.remoteSettings.maxConcurrentStreams;
    return Math.max(1, Math.min(this.poolCap, peer ?? this.poolCap));
  }

  get usable(): boolean {
    return this.pooled && !this.session.closed && !this.session.destroyed && this.active < this.maxStreams;
  }
}

/** Fresh sessions lost before any stream that one caller tolerates (see checkout). */
const MAX_WASTED_DIALS = 3;

class KeyEntry {
  readonly sessions: PooledSession[] = [];
  dialing: Promise<PooledSession | undefined> | undefined;
}

export class HbonePool {
  private readonly entries = new Map<string, KeyEntry>();
  private readonly all = new Set<PooledSession>();
  private readonly contexts = new WeakMap<WorkloadCertificate, tls.SecureContext>();
  private readonly closeWaiters: Array<() => void> = [];
  private readonly http2: Http2Config;
  private readonly cfg: PoolConfig;
  private readonly connectTimeoutMs: number;
  private readonly tlsHandshakeTimeoutMs: number;
  private readonly metrics: HboneMetrics;
  private readonly log: Logger;
  private readonly onSessionEvent: ((e: PoolSessionEvent) => void) | undefined;
  private nextId = 1;
  private closed = false;

  constructor(opts: HbonePoolOptions = {}) {
    this.http2 = opts.http2 ?? DEFAULT_CONFIG.http2;
    this.cfg = opts.pool ?? DEFAULT_CONFIG.pool;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONFIG.connectTimeoutMs;
    this.tlsHandshakeTimeoutMs = opts.tlsHandshakeTimeoutMs ?? DEFAULT_CONFIG.tlsHandshakeTimeoutMs;
    this.metrics = HboneMetrics.of(opts.registry);
    this.log = (opts.logger ?? silentLogger()).child({ component: 'hbone-pool' });
    this.onSessionEvent = opts.onSessionEvent;
  }

  /**
   * Open a tunnel: a CONNECT stream on a pooled session, resolved once the server answered 200.
   * Rejects with a MeshError (see client.ts for the codes).
   */
  async connect(req: HboneConnectRequest): Promise<Duplex> {
    validateRequest(req);
    const key = poolKey(req);
    const peer = formatAuthority(req.dst.ip, req.dst.port);
    // One retry, only for a stream the server provably did not process (GOAWAY race).
    for (let attempt = 0; ; attempt++) {
      const ps = await this.checkout(key, req);
      let stream: http2.ClientHttp2Stream;
      try {
        stream = await openConnectStream(ps.session, req.authority, req.headers, peer, (s) => {
          this.metrics.recordResponse('outbound', 200);
          this.metrics.recordStreamOpened('outbound');
          s.once('close', ps.onStreamClose);
          // Until the caller listens, a reset right after the 200 must not crash the process;
          // the caller sees such a stream as already ended.
          s.on('error', ignoreError);
        });
      } catch (err) {
        this.release(ps);
        if (err instanceof HboneStatusError) this.metrics.recordResponse('outbound', err.status);
        if (attempt === 0 && isRefusedStream(err)) {
          this.unpool(ps);
          continue;
        }
        throw err;
      }
      return stream;
    }
  }

  stats(): PoolStats {
    let pooled = 0;
    let streams = 0;
    let dials = 0;
    for (const e of this.entries.values()) {
      pooled += e.sessions.filter((s) => s.pooled).length;
      if (e.dialing) dials++;
    }
    for (const s of this.all) streams += s.active;
    return {
      keys: this.entries.size,
      pooledSessions: pooled,
      sessions: this.all.size,
      streams,
      dialsInFlight: dials,
    };
  }

  /** Stop pooling; GOAWAY every session and resolve once their streams have finished. */
  close(): Promise<void> {
    this.closed = true;
    for (const ps of this.all) {
      this.unpool(ps);
      ps.session.close();
    }
    return this.whenEmpty();
  }

  /** Close every session now, live streams included. */
  destroy(): Promise<void> {
    this.closed = true;
    for (const ps of this.all) {
      this.unpool(ps);
      ps.session.destroy();
      ps.socket.destroy();
    }
    return this.whenEmpty();
  }

  private whenEmpty(): Promise<void> {
    if (this.all.size === 0) return Promise.resolve();
    return new Promise((r) => this.closeWaiters.push(r));
  }

  /** A session with a free stream slot for `key`, reserved for the caller. */
  private async checkout(key: string, req: HboneConnectRequest): Promise<PooledSession> {
    let wasted = 0;
    for (;;) {
      if (this.closed) throw new MeshError('MESH_ERR_HBONE_SESSION', 'the HBONE pool is closed');
      let entry = this.entries.get(key);
      const ps = entry?.sessions.find((s) => s.usable);
      if (ps) {
        this.reserve(ps);
        return ps;
      }
      if (!entry) {
        entry = new KeyEntry();
        this.entries.set(key, entry);
      }
      entry.dialing ??= this.dial(key, entry, req);
      const fresh = await entry.dialing;
      // A fresh session that went away before serving anyone (GOAWAY on connect) is wasted; a
      // peer that keeps doing that must not keep a caller dialing forever. A session filled by
      // other waiters is progress, not waste.
      if (fresh && !fresh.usable && fresh.active === 0 && ++wasted >= MAX_WASTED_DIALS)
        throw new MeshError(
          'MESH_ERR_HBONE_SESSION',
          `HBONE peer ${formatAuthority(req.dst.ip, req.dst.port)} closed ${wasted} new sessions before any stream`,
          { hint: 'the peer closes or refuses new sessions right away; is it draining?' },
        );
    }
  }

  private async dial(
    key: string,
    entry: KeyEntry,
    req: HboneConnectRequest,
  ): Promise<PooledSession | undefined> {
    try {
      const { session, socket } = await fetchHboneSession({
        dst: req.dst,
        sourceIp: req.sourceIp,
        secureContext: this.contextFor(req.source.cert),
        expectedIdentities: req.expectedIdentities,
        http2: this.http2,
        initialMaxStreams: this.cfg.maxStreamsPerConnection,
        connectTimeoutMs: this.connectTimeoutMs,
        tlsHandshakeTimeoutMs: this.tlsHandshakeTimeoutMs,
        ...(req.connectSocket ? { connectSocket: req.connectSocket } : {}),
      });
      if (this.closed) {
        session.destroy();
        return undefined;
      }
      if (session.closed || session.destroyed) {
        throw new MeshError(
          'MESH_ERR_HBONE_SESSION',
          `HBONE peer ${formatAuthority(req.dst.ip, req.dst.port)} closed the session at once`,
        );
      }
      return this.adopt(key, entry, session, socket);
    } catch (err) {
      this.metrics.recordDialFailure('outbound', dialFailureReason(err));
      this.log.debug({ key, err: errorMessage(err) }, 'HBONE dial failed');
      throw err;
    } finally {
      entry.dialing = undefined;
      this.dropEntryIfEmpty(key, entry);
    }
  }

  private adopt(
    key: string,
    entry: KeyEntry,
    session: http2.ClientHttp2Session,
    socket: tls.TLSSocket,
  ): PooledSession {
    const ps = new PooledSession(
      this.nextId++,
      key,
      session,
      socket,
      this.cfg.maxStreamsPerConnection,
      this.http2,
    );
    ps.onStreamClose = () => {
      this.metrics.recordStreamClosed('outbound');
      this.release(ps);
    };
    entry.sessions.push(ps);
    this.all.add(ps);
    this.metrics.recordSessionOpened('outbound');
    this.emit({ kind: 'opened', key, sessionId: ps.id });
    this.startIdleTimer(ps);
    let lastError: string | undefined;
    session.on('remoteSettings', () => {
      ps.maxStreams = ps.capFromSettings();
    });
    session.on('goaway', () => {
      this.emit({ kind: 'goaway', key, sessionId: ps.id });
      this.unpool(ps);
    });
    session.on('error', (err: Error) => {
      lastError = err.message;
      this.log.debug({ key, session: ps.id, err: err.message }, 'HBONE session error');
    });
    watchSession(session, socket, () => {
      ps.keepalive.stop();
      clearTimeout(ps.idleTimer);
      this.unpool(ps);
      this.all.delete(ps);
      this.metrics.recordSessionClosed('outbound');
      const error = ps.keepalive.failure ?? lastError;
      this.emit({ kind: 'closed', key, sessionId: ps.id, ...(error ? { error } : {}) });
      if (this.all.size === 0) for (const w of this.closeWaiters.splice(0)) w();
    });
    return ps;
  }

  private reserve(ps: PooledSession): void {
    ps.active++;
    clearTimeout(ps.idleTimer);
    ps.idleTimer = undefined;
    // ztunnel: the checkout that brings a session to its cap takes it out of the pool for good.
    if (ps.active >= ps.maxStreams) this.unpool(ps);
  }

  private release(ps: PooledSession): void {
    ps.active--;
    if (ps.active > 0) return;
    if (ps.pooled) this.startIdleTimer(ps);
    else if (!ps.session.closed) ps.session.close();
  }

  private startIdleTimer(ps: PooledSession): void {
    clearTimeout(ps.idleTimer);
    ps.idleTimer = setTimeout(() => {
      if (ps.active > 0) return;
      this.log.debug({ key: ps.key, session: ps.id }, 'closing idle HBONE session');
      this.unpool(ps);
      ps.session.close();
    }, this.cfg.idleTimeoutMs);
    ps.idleTimer.unref();
  }

  /** Take `ps` out of its key's list (no new streams); close it if it has none. */
  private unpool(ps: PooledSession): void {
    if (!ps.pooled) return;
    ps.pooled = false;
    clearTimeout(ps.idleTimer);
    const entry = this.entries.get(ps.key);
    if (entry) {
      const i = entry.sessions.indexOf(ps);
      if (i >= 0) entry.sessions.splice(i, 1);
      this.dropEntryIfEmpty(ps.key, entry);
    }
    if (ps.active === 0 && !ps.session.closed) ps.session.close();
  }

  private dropEntryIfEmpty(key: string, entry: KeyEntry): void {
    if (entry.sessions.length === 0 && !entry.dialing && this.entries.get(key) === entry)
      this.entries.delete(key);
  }

  private contextFor(cert: WorkloadCertificate): tls.SecureContext {
    let ctx = this.contexts.get(cert);
    if (!ctx) {
      ctx = buildSecureContext(cert);
      this.contexts.set(cert, ctx);
    }
    return ctx;
  }

  private emit(e: PoolSessionEvent): void {
    if (!this.onSessionEvent) return;
    try {
      this.onSessionEvent(e);
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'onSessionEvent threw');
    }
  }
}

function ignoreError(): void {}
