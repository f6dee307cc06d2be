/**
 * Config: read once from flags and environment into a frozen object, then passed down.
 *
 * Invariants: nothing below the composition root reads process.env or argv; every default is
 * defined here with the reason for its value; a bad value is a MeshError naming the flag or
 * variable and what to write instead.
 */
import { MeshError } from './errors.js';
import { parseDuration } from './telemetry/duration.js';
import { isLogLevel, type LogFormat } from './telemetry/logger.js';
import { DEFAULT_TRUST_DOMAIN } from './identity/spiffe.js';

const MiB = 1024 * 1024;

export interface PortsConfig {
  /** HBONE inbound: same number as Istio so NetworkPolicies that allow 15008 carry over. */
  hbone: number;
  /** Captured outbound (capture mode). */
  outbound: number;
  /** Captured plaintext inbound (capture mode). */
  inboundPlaintext: number;
  /** SOCKS5 outbound entry; Istio's ztunnel uses 15080 for its optional SOCKS5 listener. */
  socks5: number;
  /** Admin (config_dump, logging, quitquitquit), localhost only. */
  admin: number;
  /** Prometheus scrape port; Istio's standard annotations point at 15020. */
  metrics: number;
  /** Readiness probe port; Istio's DaemonSet probes 15021. */
  readiness: number;
}

export interface Http2Config {
  /** Per-stream receive window: 4 MiB, as ztunnel; Node's 64 KiB default cuts bulk throughput. */
  streamWindow: number;
  /** Connection window: 16 MiB, 4x the stream window so one stalled stream cannot starve the rest. */
  connectionWindow: number;
  /** Max DATA frame: 1 MiB, as ztunnel, fewer frames per bulk transfer. */
  maxFrameSize: number;
  /** Server-advertised SETTINGS_MAX_CONCURRENT_STREAMS: 200, as ztunnel's inbound. */
  maxConcurrentStreams: number;
  /** nghttp2 session memory cap in MB; Node's 10 MB default triggers ENHANCE_YOUR_CALM under load. */
  maxSessionMemoryMb: number;
  /** Keepalive PING period: 10 s, as ztunnel. */
  pingIntervalMs: number;
  /** A PING unanswered this long kills the connection: 20 s, as ztunnel. */
  pingTimeoutMs: number;
}

export interface PoolConfig {
  /** Streams per pooled connection are capped at min(this, peer max): 100, as ztunnel. */
  maxStreamsPerConnection: number;
  /** Idle pooled connections are released after 5 min, as ztunnel's POOL_UNUSED_RELEASE_TIMEOUT. */
  idleTimeoutMs: number;
}

export interface Config {
  logLevel: string;
  logFormat: LogFormat;
  /** Trust domain of this mesh; Istio's default is cluster.local. */
  trustDomain: string;
  /** Kubernetes cluster DNS domain used to build service hostnames. */
  clusterDomain: string;
  /** Workload certificate lifetime: 24 h, as Istio's SECRET_TTL. */
  certTtlMs: number;
  ports: PortsConfig;
  http2: Http2Config;
  pool: PoolConfig;
  /** Dial timeout for every upstream TCP connect: 10 s, as ztunnel's CONNECTION_TIMEOUT. */
  connectTimeoutMs: number;
  /** A TLS client that sends nothing is closed after this: 10 s (Envoy's listener default is 15 s). */
  tlsHandshakeTimeoutMs: number;
  /** Drain deadline on SIGTERM: 5 s, ztunnel's default (terminationGracePeriod - 5 s). */
  drainTimeoutMs: number;
}

export const DEFAULT_PORTS: Readonly<PortsConfig> = Object.freeze({
  hbone: 15008,
  outbound: 15001,
  inboundPlaintext: 15006,
  socks5: 15080,
  admin: 15000,
  metrics: 15020,
  readiness: 15021,
});

export const DEFAULT_CONFIG: Readonly<Config> = deepFreeze({
  logLevel: 'info',
  logFormat: 'json',
  trustDomain: DEFAULT_TRUST_DOMAIN,
  clusterDomain: 'cluster.local',
  certTtlMs: 24 * 3_600_000,
  ports: { ...DEFAULT_PORTS },
  http2: {
    streamWindow: 4 * MiB,
    connectionWindow: 16 * MiB,
    maxFrameSize: 1 * MiB,
    maxConcurrentStreams: 200,
    maxSessionMemoryMb: 256,
    pingIntervalMs: 10_000,
    pingTimeoutMs: 20_000,
  },
  pool: { maxStreamsPerConnection: 100, idleTimeoutMs: 5 * 60_000 },
  connectTimeoutMs: 10_000,
  tlsHandshakeTimeoutMs: 10_000,
  drainTimeoutMs: 5_000,
});

/** Overrides as they arrive from flags or tests: any subset, nested. */
export type ConfigOverrides = {
  [K in keyof Config]?: Config[K] extends object ? Partial<Config[K]> : Config[K];
};

/**
 * Environment variables honoured, named as in Istio's ztunnel where one exists, so operators'
 * existing DaemonSet env carries over.
 */
const ENV_DURATIONS: Array<[string, (c: Config, v: number) => void]> = [
  ['POOL_UNUSED_RELEASE_TIMEOUT', (c, v) => (c.pool.idleTimeoutMs = v)],
  ['CONNECTION_TERMINATION_DEADLINE', (c, v) => (c.drainTimeoutMs = v)],
  ['SECRET_TTL', (c, v) => (c.certTtlMs = v)],
];
const ENV_NUMBERS: Array<[string, (c: Config, v: number) => void]> = [
  ['POOL_MAX_STREAMS_PER_CONNECTION', (c, v) => (c.pool.maxStreamsPerConnection = v)],
  ['HTTP2_STREAM_WINDOW_SIZE', (c, v) => (c.http2.streamWindow = v)],
  ['HTTP2_CONNECTION_WINDOW_SIZE', (c, v) => (c.http2.connectionWindow = v)],
  ['HTTP2_FRAME_SIZE', (c, v) => (c.http2.maxFrameSize = v)],
];

export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = {}): Readonly<Config> {
  const c = structuredClone(DEFAULT_CONFIG) as Config;
  if (env.TRUST_DOMAIN) c.trustDomain = env.TRUST_DOMAIN;
  if (env.CLUSTER_DOMAIN) c.clusterDomain = env.CLUSTER_DOMAIN;
  if (env.TERMINATION_GRACE_PERIOD_SECONDS) {
    // ztunnel: secs-5 if secs>10, else secs-1, minimum 1 s.
    const secs = Number(env.TERMINATION_GRACE_PERIOD_SECONDS);
    if (!Number.isFinite(secs) || secs < 0)
      throw badValue(
        'TERMINATION_GRACE_PERIOD_SECONDS',
        env.TERMINATION_GRACE_PERIOD_SECONDS,
        'a number of seconds',
      );
    c.drainTimeoutMs = Math.max(1, secs > 10 ? secs - 5 : secs - 1) * 1000;
  }
  for (const [name, set] of ENV_DURATIONS) {
    const v = env[name];
    if (v !== undefined && v !== '') set(c, parseDuration(v, name));
  }
  for (const [name, set] of ENV_NUMBERS) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw badValue(name, v, 'a positive integer');
    set(c, n);
  }
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    const key = k as keyof Config;
    if (typeof v === 'object' && v !== null) Object.assign(c[key] as object, v);
    else (c as unknown as Record<string, unknown>)[key] = v;
  }
  validate(c);
  return deepFreeze(c);
}

function validate(c: Config): void {
  if (!isLogLevel(c.logLevel))
    throw badValue('--log-level', c.logLevel, 'one of fatal, error, warn, info, debug, trace, silent');
  if (c.logFormat !== 'json' && c.logFormat !== 'pretty')
    throw badValue('--log-format', c.logFormat, 'json or pretty');
  if (!/^[a-z0-9._-]+$/.test(c.trustDomain))
    throw badValue('trust domain', c.trustDomain, 'lower-case letters, digits, . - _');
  for (const [name, port] of Object.entries(c.ports)) {
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw badValue(`port ${name}`, String(port), 'a port number 0-65535');
  }
  if (c.http2.connectionWindow <= c.http2.streamWindow) {
    throw badValue(
      'HTTP2_CONNECTION_WINDOW_SIZE',
      String(c.http2.connectionWindow),
      'a value larger than the stream window (it must be, or multiplexed streams can deadlock)',
    );
  }
  if (c.http2.maxFrameSize < 16384 || c.http2.maxFrameSize > 16777215) {
    throw badValue(
      'HTTP2_FRAME_SIZE',
      String(c.http2.maxFrameSize),
      'a size between 16384 and 16777215 (RFC 9113)',
    );
  }
}

function badValue(name: string, value: string | undefined, want: string): MeshError {
  return new MeshError('MESH_ERR_CONFIG', `invalid ${name}: "${value ?? ''}"`, { hint: `use ${want}` });
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
