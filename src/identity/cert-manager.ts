/**
 * CertificateManager: one certificate per workload identity, kept fresh.
 *
 * Invariants:
 * - at most one fetch per identity is in flight; concurrent requests join it;
 * - at most `maxConcurrentFetches` (8, as ztunnel's SecretManager) fetches run at once, served by
 *   priority: RealTime (a connection is waiting) > Warmup (prefetch) > Background (refresh);
 * - an Available certificate is refreshed at notBefore + 50 % of its lifetime;
 * - when the source fails, retries back off per identity (≈1 s doubling, ±20 % jitter, capped at
 *   150 s, reset on success); a still-valid certificate keeps being served until it expires, and
 *   only then does the identity become Unavailable;
 * - an Unavailable identity fails fast for callers (they do not wait for the next retry);
 * - a forgotten identity has no timers and no entry; a fetch completing after forget is dropped,
 *   and callers still waiting for a fetch that never started are rejected (never left hanging);
 * - an expired certificate is never handed out, even if its expiry timer has not run yet;
 * - one SecureContext is built per certificate and reused until rotation.
 */
import { EventEmitter } from 'node:events';
import type tls from 'node:tls';
import { Counter, Gauge, type Registry } from 'prom-client';
import { MeshError, errorMessage } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import { silentLogger } from '../telemetry/logger.js';
import type { CertificateSource } from './source.js';
import { formatSpiffeId, type SpiffeId } from './spiffe.js';
import { buildSecureContext, describeCertificate, type WorkloadCertificate } from './tls.js';

export type CertStateName = 'Initializing' | 'Available' | 'Unavailable';
export enum Priority {
  Background = 0,
  Warmup = 1,
  RealTime = 2,
}

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** ± fraction applied to each delay. */
  jitter: number;
}

/** ztunnel's backoff: ≈1 s start, ×2, ±20 % jitter, capped at 150 s. */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 150_000, jitter: 0.2 };

export interface CertificateManagerOptions {
  source: CertificateSource;
  maxConcurrentFetches?: number;
  backoff?: BackoffPolicy;
  /** Fraction of the lifetime after which to refresh: 0.5, as Istio. */
  refreshAt?: number;
  registry?: Registry;
  logger?: Logger;
  random?: () => number;
}

interface Entry {
  id: SpiffeId;
  uri: string;
  state: CertStateName;
  cert: WorkloadCertificate | undefined;
  context: tls.SecureContext | undefined;
  lastError: string | undefined;
  inflight: Promise<WorkloadCertificate> | undefined;
  queued: { priority: Priority; start: () => void; cancel: (err: Error) => void } | undefined;
  timer: NodeJS.Timeout | undefined;
  expiryTimer: NodeJS.Timeout | undefined;
  failures: number;
}

export interface CertificateStatus {
  identity: string;
  state: CertStateName;
  error?: string;
  certChain: Array<{ pem: string; serialNumber: string; validFrom: string; expirationTime: string }>;
  rootCerts: Array<{ pem: string; serialNumber: string; validFrom: string; expirationTime: string }>;
}

export class CertificateManager extends EventEmitter<{
  updated: [uri: string, cert: WorkloadCertificate];
  state: [uri: string, state: CertStateName];
}> {
  private readonly entries = new Map<string, Entry>();
  private readonly waiting: Entry[] = [];
  private running = 0;
  private closed = false;
  private readonly source: CertificateSource;
  private readonly maxConcurrent: number;
  private readonly backoff: BackoffPolicy;
  private readonly refreshAt: number;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly expiryGauge: Gauge | undefined;
  private readonly fetches: Counter | undefined;

  constructor(opts: CertificateManagerOptions) {
    super();
    this.source = opts.source;
    this.maxConcurrent = opts.maxConcurrentFetches ?? 8;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.refreshAt = opts.refreshAt ?? 0.5;
    this.log = (opts.logger ?? silentLogger()).child({ component: 'certificates' });
    this.random = opts.random ?? Math.random;
    if (opts.registry) {
      this.expiryGauge = new Gauge({
        name: 'meshd_certificate_expiration_timestamp_seconds',
        help: 'Expiry (unix seconds) of the workload certificate held for each identity',
        labelNames: ['identity'],
        registers: [opts.registry],
      });
      this.fetches = new Counter({
        name: 'meshd_certificate_fetches_total',
        help: 'Certificate fetches from the CA, by result',
        labelNames: ['result'],
        registers: [opts.registry],
      });
    }
  }

  /** The certificate for `id`, fetching it if needed. Rejects fast if the identity is Unavailable. */
  async fetchCertificate(id: SpiffeId): Promise<WorkloadCertificate> {
    if (this.closed) {
      throw new MeshError(
        'MESH_ERR_CERT_UNAVAILABLE',
        `no certificate for ${formatSpiffeId(id)}: the manager is closed`,
      );
    }
    const e = this.entryFor(id);
    if (e.state === 'Available' && e.cert) {
      if (e.cert.notAfterMs > Date.now()) return e.cert;
      this.onExpired(e);
    }
    if (e.state === 'Unavailable' && !e.inflight && !e.queued) {
      throw new MeshError(
        'MESH_ERR_CERT_UNAVAILABLE',
        `no certificate for ${e.uri}: ${e.lastError ?? 'unavailable'}`,
        {
          hint: 'check that the CA is reachable and allowed to sign this identity; the manager keeps retrying',
        },
      );
    }
    return this.startFetch(e, Priority.RealTime);
  }

  /** The SecureContext for `id`, built once per certificate. */
  async fetchSecureContext(id: SpiffeId): Promise<tls.SecureContext> {
    const cert = await this.fetchCertificate(id);
    const e = this.entries.get(formatSpiffeId(id));
    if (e && e.cert === cert) {
      e.context ??= buildSecureContext(cert);
      return e.context;
    }
    return buildSecureContext(cert);
  }

  /** The SecureContext for `id` if a certificate is Available now, without fetching. */
  findSecureContext(id: SpiffeId): tls.SecureContext | undefined {
    const e = this.entries.get(formatSpiffeId(id));
    if (!e?.cert || e.state !== 'Available' || e.cert.notAfterMs <= Date.now()) return undefined;
    e.context ??= buildSecureContext(e.cert);
    return e.context;
  }

  /** Start fetching in the background (a workload with this identity arrived on the node). */
  prefetch(id: SpiffeId): void {
    if (this.closed) return;
    const e = this.entryFor(id);
    if (e.state === 'Available' || e.inflight) return;
    this.startFetch(e, Priority.Warmup).catch(() => {
      /* recorded in the entry's state; retried with backoff */
    });
  }

  /** Drop an identity no longer needed by any workload on this node. */
  forget(id: SpiffeId | string): void {
    const uri = typeof id === 'string' ? id : formatSpiffeId(id);
    const e = this.entries.get(uri);
    if (!e) return;
    this.clearTimers(e);
    this.cancelQueued(e, `${uri} was forgotten`);
    this.entries.delete(uri);
    this.expiryGauge?.remove({ identity: uri });
    this.log.info({ identity: uri }, 'certificate forgotten');
  }

  /** Forget every identity not in `keep`. */
  retainOnly(keep: Iterable<string>): void {
    const set = new Set(keep);
    for (const uri of [...this.entries.keys()]) if (!set.has(uri)) this.forget(uri);
  }

  stateOf(id: SpiffeId | string): CertStateName | undefined {
    return this.entries.get(typeof id === 'string' ? id : formatSpiffeId(id))?.state;
  }

  identities(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** Per-identity status for /config_dump. */
  dump(): CertificateStatus[] {
    return this.identities().map((uri) => {
      const e = this.entries.get(uri) as Entry;
      const describe = (pem: string) => ({
        pem: Buffer.from(pem).toString('base64'),
        ...describeCertificate(pem),
      });
      return {
        identity: uri,
        state: e.state,
        ...(e.state === 'Unavailable' && e.lastError ? { error: e.lastError } : {}),
        certChain: e.cert ? e.cert.chainPem.map(describe) : [],
        rootCerts: e.cert ? e.cert.rootsPem.map(describe) : [],
      };
    });
  }

  /** Stop all timers and fail callers whose fetch has not started; fetches in flight finish. */
  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) {
      this.clearTimers(e);
      this.cancelQueued(e, 'the certificate manager is closed');
    }
  }

  private cancelQueued(e: Entry, why: string): void {
    const qi = this.waiting.indexOf(e);
    if (qi >= 0) this.waiting.splice(qi, 1);
    const q = e.queued;
    e.queued = undefined;
    q?.cancel(new MeshError('MESH_ERR_CERT_UNAVAILABLE', `no certificate for ${e.uri}: ${why}`));
  }

  private entryFor(id: SpiffeId): Entry {
    const uri = formatSpiffeId(id);
    let e = this.entries.get(uri);
    if (!e) {
      e = {
        id,
        uri,
        state: 'Initializing',
        cert: undefined,
        context: undefined,
        lastError: undefined,
        inflight: undefined,
        queued: undefined,
        timer: undefined,
        expiryTimer: undefined,
        failures: 0,
      };
      this.entries.set(uri, e);
    }
    return e;
  }

  private startFetch(e: Entry, priority: Priority): Promise<WorkloadCertificate> {
    if (e.inflight) {
      // Promote a queued fetch if a more urgent caller arrives.
      if (e.queued && priority > e.queued.priority) e.queued.priority = priority;
      return e.inflight;
    }
    if (e.timer) {
      clearTimeout(e.timer);
      e.timer = undefined;
    }
    e.inflight = new Promise<WorkloadCertificate>((resolve, reject) => {
      e.queued = {
        priority,
        start: () => {
          e.queued = undefined;
          this.running++;
          // A source that throws instead of rejecting must not leak a concurrency slot.
          new Promise<WorkloadCertificate>((r) => r(this.source.fetchCertificate(e.id)))
            .then(
              (cert) => {
                const problem = this.problemWith(e, cert);
                if (problem) {
                  this.onFailed(e, problem);
                  reject(problem);
                  return;
                }
                try {
                  this.onFetched(e, cert);
                } finally {
                  resolve(cert);
                }
              },
              (err: unknown) => {
                this.onFailed(e, err);
                reject(err instanceof Error ? err : new Error(String(err)));
              },
            )
            .finally(() => {
              this.running--;
              this.pump();
            });
        },
        cancel: reject,
      };
      this.waiting.push(e);
      this.pump();
    });
    const p = e.inflight;
    p.then(
      () => {
        if (e.inflight === p) e.inflight = undefined;
      },
      () => {
        if (e.inflight === p) e.inflight = undefined;
      },
    );
    return p;
  }

  private pump(): void {
    while (!this.closed && this.running < this.maxConcurrent && this.waiting.length > 0) {
      let best = 0;
      for (let i = 1; i < this.waiting.length; i++) {
        if ((this.waiting[i]?.queued?.priority ?? 0) > (this.waiting[best]?.queued?.priority ?? 0)) best = i;
      }
      const [e] = this.waiting.splice(best, 1);
      e?.queued?.start();
    }
  }

  private isCurrent(e: Entry): boolean {
    return !this.closed && this.entries.get(e.uri) === e;
  }

  /** A certificate the source returned that must not be used, as an error; undefined if usable. */
  private problemWith(e: Entry, cert: WorkloadCertificate): Error | undefined {
    if (cert.uri !== e.uri) return new Error(`CA returned a certificate for ${cert.uri}, not ${e.uri}`);
    if (cert.notAfterMs <= Date.now())
      return new Error(
        `CA returned a certificate that expired at ${new Date(cert.notAfterMs).toISOString()}`,
      );
    return undefined;
  }

  private onFetched(e: Entry, cert: WorkloadCertificate): void {
    this.fetches?.inc({ result: 'success' });
    if (!this.isCurrent(e)) return;
    e.cert = cert;
    e.context = undefined;
    e.failures = 0;
    e.lastError = undefined;
    this.setState(e, 'Available');
    this.expiryGauge?.set({ identity: e.uri }, Math.floor(cert.notAfterMs / 1000));
    this.clearTimers(e);
    const refreshInMs = Math.max(
      0,
      cert.notBeforeMs + (cert.notAfterMs - cert.notBeforeMs) * this.refreshAt - Date.now(),
    );
    e.timer = setTimeout(() => this.refresh(e), refreshInMs).unref();
    e.expiryTimer = setTimeout(() => this.onExpired(e), Math.max(0, cert.notAfterMs - Date.now())).unref();
    this.log.info(
      { identity: e.uri, serial: cert.serialNumber, expires: new Date(cert.notAfterMs).toISOString() },
      'certificate issued',
    );
    this.emit('updated', e.uri, cert);
  }

  private onFailed(e: Entry, err: unknown): void {
    this.fetches?.inc({ result: 'failure' });
    if (!this.isCurrent(e)) return;
    e.failures++;
    e.lastError = errorMessage(err);
    const base = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (e.failures - 1));
    let delay = base * (1 + this.backoff.jitter * (2 * this.random() - 1));
    const stillValid = e.cert !== undefined && e.cert.notAfterMs > Date.now();
    if (stillValid && e.cert) {
      delay = Math.min(delay, e.cert.notAfterMs - Date.now());
      this.log.warn(
        { identity: e.uri, err: e.lastError, retryInMs: Math.round(delay) },
        'certificate refresh failed; serving the current certificate until it expires',
      );
    } else {
      if (e.cert) this.onExpired(e); // drop the expired certificate and its metric now
      this.setState(e, 'Unavailable');
      this.log.error(
        { identity: e.uri, err: e.lastError, retryInMs: Math.round(delay) },
        'certificate fetch failed',
      );
    }
    if (e.timer) clearTimeout(e.timer);
    e.timer = setTimeout(() => this.refresh(e), Math.max(0, delay)).unref();
  }

  private onExpired(e: Entry): void {
    if (e.expiryTimer) clearTimeout(e.expiryTimer);
    e.expiryTimer = undefined;
    if (!this.isCurrent(e) || !e.cert) return;
    const left = e.cert.notAfterMs - Date.now();
    if (left > 0) {
      // Timers run on a monotonic clock and may fire a millisecond before the wall clock agrees.
      e.expiryTimer = setTimeout(() => this.onExpired(e), left).unref();
      return;
    }
    e.lastError ??= `the certificate expired at ${new Date(e.cert.notAfterMs).toISOString()} before it could be renewed`;
    e.cert = undefined;
    e.context = undefined;
    this.expiryGauge?.remove({ identity: e.uri });
    this.setState(e, 'Unavailable');
    this.log.error({ identity: e.uri, err: e.lastError }, 'certificate expired before it could be renewed');
  }

  private refresh(e: Entry): void {
    e.timer = undefined;
    if (!this.isCurrent(e)) return;
    this.startFetch(e, Priority.Background).catch(() => {
      /* handled in onFailed */
    });
  }

  private setState(e: Entry, state: CertStateName): void {
    if (e.state === state) return;
    e.state = state;
    this.emit('state', e.uri, state);
  }

  private clearTimers(e: Entry): void {
    if (e.timer) clearTimeout(e.timer);
    if (e.expiryTimer) clearTimeout(e.expiryTimer);
    e.timer = undefined;
    e.expiryTimer = undefined;
  }
}
