/**
 * The `meshd waypoint` process: one instance of a waypoint Gateway, in local mode.
 *
 * Wiring: config file → workload model + compiled waypoint config (recompiled on every change;
 * an edit that does not compile keeps the last good config) → the instance (pod IP, identity) →
 * certificate → HBONE server on <pod ip>:15008, whose streams are handed to the
 * WaypointListener → per-request proxy loop → HBONE pool to `<backend pod ip>:15008` under the
 * waypoint's own identity. Metrics, readiness and admin listen on the pod IP too.
 *
 * Invariants:
 * - a tunnel is accepted only for a Service whose waypoint is this one (inbound.ts); the HBONE
 *   server connects nowhere itself: the policy terminates each accepted CONNECT stream by
 *   handing it to the listener, which serves HTTP on the stream directly;
 * - readiness turns true once config, certificate and listener are up, and false when draining;
 * - shutdown (SIGTERM, /quitquitquit) stops accepting, sends GOAWAY, lets in-flight requests
 *   finish until the drain deadline, then closes what remains; it runs once.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter } from 'prom-client';
import type { Config } from '../config.js';
import type { MeshSnapshot } from '../config-source/index.js';
import { FileConfigSource, formatWarning } from '../config-source/index.js';
import { errorMessage, isMeshError, MeshError } from '../errors.js';
import {
  buildBaggage,
  buildTraceparent,
  copyBidirectional,
  formatAuthority,
  HbonePool,
  HboneServer,
  parseForwarded,
  type InboundDecision,
  type InboundRequest,
} from '../hbone/index.js';
import type { CertificateSource, WorkloadCertificate } from '../identity/index.js';
import { CertificateManager } from '../identity/index.js';
import {
  closeServer,
  createAdminServer,
  createMetricsServer,
  createReadinessServer,
  createRegistry,
  DrainController,
  listen,
  Readiness,
  type Logger,
  type Registry,
} from '../telemetry/index.js';
import { compileWaypointConfig, type WaypointConfig } from './config.js';
import { buildWaypointConfigDump } from './config-dump.js';
import { buildInboundTarget, buildRequestClient, isServedBy } from './inbound.js';
import type { WaypointInstance } from './instance.js';
import { buildWaypointInstance } from './instance.js';
import { WaypointListener } from './listener.js';
import { createWaypointRequestMetrics } from './metrics.js';
import type { InboundContext } from './proxy.js';
import { defaultClock, defaultRandom } from './random.js';
import { asSocketLike } from './socket-like.js';
import { UpstreamClusterSet } from './upstream-cluster.js';
import { UpstreamConnections } from './upstream-pool.js';
import type { UpstreamEndpoint } from './upstream-types.js';
import type { WaypointView } from './view.js';

export interface WaypointDaemonOptions {
  config: Readonly<Config>;
  configPath: string;
  name: string;
  namespace: string;
  pod?: string;
  /** Where the waypoint's certificate comes from (the local mesh CA in local mode). */
  certificates: CertificateSource;
  version: string;
  logger: Logger;
  /** Called once the daemon has drained after SIGTERM or /quitquitquit. */
  onExit?: (graceful: boolean) => void;
}

export interface WaypointDaemon {
  readonly registry: Registry;
  readonly instance: WaypointInstance;
  readonly addresses: {
    hbone: AddressInfo;
    admin: AddressInfo;
    metrics: AddressInfo;
    readiness: AddressInfo;
  };
  shutdown(): Promise<{ graceful: boolean }>;
}

function compileView(
  snap: MeshSnapshot,
  inst: WaypointInstance,
  config: Readonly<Config>,
): { view: WaypointView; warnings: string[] } {
  const { state } = snap;
  const compiled = compileWaypointConfig(snap.objects, {
    waypointName: inst.self.name,
    waypointNamespace: inst.self.namespace,
    clusterDomain: config.clusterDomain,
    serves: (s) => {
      const svc = state.findServiceByKey(
        `${s.namespace}/${s.name}.${s.namespace}.svc.${state.clusterDomain}`,
      );
      return svc !== undefined && isServedBy(svc, inst.self);
    },
  });
  return {
    view: { generation: snap.generation, config: compiled.config, state },
    warnings: compiled.warnings.map(formatWarning),
  };
}

export async function startWaypointDaemon(opts: WaypointDaemonOptions): Promise<WaypointDaemon> {
  const { config, logger } = opts;
  const log = logger.child({ component: 'waypoint', waypoint: `${opts.namespace}/${opts.name}` });
  const registry = createRegistry({ processMetrics: true, component: 'waypoint', version: opts.version });
  const readiness = new Readiness();
  for (const task of ['config', 'certificates', 'proxy']) readiness.register(task);

  const source = new FileConfigSource({
    path: opts.configPath,
    logger,
    registry,
    compile: { trustDomain: config.trustDomain, clusterDomain: config.clusterDomain },
  });
  const first = await source.start();
  const found = buildWaypointInstance({
    objects: first.objects,
    state: first.state,
    name: opts.name,
    namespace: opts.namespace,
    pod: opts.pod,
    clusterDomain: config.clusterDomain,
  });
  if (!found.ok) {
    await source.stop();
    throw new MeshError('MESH_ERR_WAYPOINT', `${opts.configPath}: ${found.reason}`, { hint: found.hint });
  }
  const inst = found.instance;
  let compiled: ReturnType<typeof compileView>;
  try {
    compiled = compileView(first, inst, config);
  } catch (err) {
    await source.stop();
    throw err;
  }
  let view = compiled.view;
  for (const w of compiled.warnings) log.warn(w);
  readiness.done('config');
  const reloadFailures = new Counter({
    name: 'meshd_waypoint_config_rejected_total',
    help: 'Config changes the waypoint could not compile; the previous waypoint config stays in force',
    registers: [registry],
  });

  const certs = new CertificateManager({ source: opts.certificates, registry, logger });
  const id = inst.workload;
  const spiffe = { trustDomain: id.trustDomain, namespace: id.namespace, serviceAccount: id.serviceAccount };
  const certificate: WorkloadCertificate = await certs.fetchCertificate(spiffe);
  readiness.done('certificates');

  const pool = new HbonePool({
    http2: config.http2,
    pool: config.pool,
    connectTimeoutMs: config.connectTimeoutMs,
    tlsHandshakeTimeoutMs: config.tlsHandshakeTimeoutMs,
    registry,
    logger,
  });
  const baggage = buildBaggage({
    cluster: id.clusterId,
    namespace: id.namespace,
    workloadName: id.workloadName,
    serviceName: id.canonicalName,
    serviceVersion: id.canonicalRevision,
  });
  const connector = async (ep: UpstreamEndpoint) =>
    pool.connect({
      source: { identity: inst.identity, cert: await certs.fetchCertificate(spiffe) },
      expectedIdentities: ep.identities,
      dst: { ip: ep.ip, port: config.ports.hbone },
      sourceIp: inst.ip,
      authority: formatAuthority(ep.ip, ep.port),
      headers: { traceparent: buildTraceparent(), baggage },
    });
  const connections = new UpstreamConnections(connector);
  const clusters = new UpstreamClusterSet({ clock: defaultClock, random: defaultRandom });
  const accessLog = logger.child({ component: 'access' });
  const listener = new WaypointListener({
    view: () => view,
    clusters,
    connections,
    metrics: createWaypointRequestMetrics(registry),
    accessLog,
    log,
    random: defaultRandom,
    clock: defaultClock,
    copy: (down, up) => copyBidirectional(down, up).done,
  });

  // Each admitted CONNECT stream is served in place: 200, then HTTP (or L4) on the stream itself.
  const policy = (req: InboundRequest): InboundDecision => {
    const clientNs = req.peer.id.namespace;
    const target = buildInboundTarget(view.state, inst.self, req.authority, clientNs);
    if (!target.ok) {
      log.info(
        { connectionId: req.connectionId, peer: req.peer.uri, reason: target.reason },
        'tunnel refused',
      );
      return { ok: false, status: target.status, reason: target.reason };
    }
    const ctx: InboundContext = {
      connectionId: req.connectionId,
      service: target.destination,
      client: buildRequestClient(req.peer.uri, req.peerAddress.ip, parseForwarded(req.headers.forwarded).for),
    };
    return {
      ok: true,
      terminate: (stream) => void listener.serve(asSocketLike(stream), ctx, { tcp: target.tcp }),
    };
  };
  const server = new HboneServer({
    certificate,
    policy,
    requireLocalAuthority: false,
    http2: config.http2,
    tlsHandshakeTimeoutMs: config.tlsHandshakeTimeoutMs,
    registry,
    logger,
  });
  certs.on('updated', (uri, cert) => {
    if (uri === inst.identity) server.setCertificate(cert);
  });

  const servers: http.Server[] = [];
  const bind = async (s: http.Server, port: number, what: string) => {
    servers.push(s);
    return listen(s, { host: inst.ip, port }, what);
  };
  const drain = new DrainController();
  drain.add({ drain: () => server.drain(), forceClose: () => server.close() });
  drain.add({ drain: () => listener.drain(), forceClose: () => listener.forceClose() });
  let shuttingDown: Promise<{ graceful: boolean }> | undefined;
  const shutdown = (): Promise<{ graceful: boolean }> => {
    shuttingDown ??= (async () => {
      readiness.unready('draining');
      const drained = drain.drain(config.drainTimeoutMs);
      log.info({ deadlineMs: config.drainTimeoutMs, tunnels: listener.tunnelCount }, 'draining');
      await source.stop();
      const result = await drained;
      connections.close();
      await pool.close();
      certs.close();
      await Promise.all(servers.map((s) => closeServer(s)));
      log.info({ graceful: result.graceful, durationMs: result.durationMs }, 'drained');
      opts.onExit?.(result.graceful);
      return { graceful: result.graceful };
    })();
    return shuttingDown;
  };

  source.onUpdate((snap) => {
    try {
      const next = compileView(snap, inst, config);
      for (const w of next.warnings) log.warn(w);
      view = next.view;
      log.info({ generation: snap.generation }, 'waypoint config applied');
    } catch (err) {
      reloadFailures.inc();
      const detail = isMeshError(err) ? err.describe() : errorMessage(err);
      log.error(
        { generation: snap.generation },
        `waypoint config rejected; keeping generation ${view.generation}: ${detail}`,
      );
    }
  });

  const readinessAddr = await bind(createReadinessServer(readiness), config.ports.readiness, 'readiness');
  const metricsAddr = await bind(createMetricsServer(registry), config.ports.metrics, 'metrics');
  const hboneAddr = await server.listen({ host: inst.ip, port: config.ports.hbone });
  readiness.done('proxy');
  const adminAddr = await bind(
    createAdminServer({
      logger,
      quit: () => void shutdown(),
      configDump: () => buildDump(view, inst, certs, opts, config),
    }),
    config.ports.admin,
    'admin',
  );
  log.info(
    {
      pod: `${inst.workload.namespace}/${inst.workload.name}`,
      identity: inst.identity,
      hbone: `${inst.ip}:${hboneAddr.port}`,
      admin: adminAddr.port,
      metrics: metricsAddr.port,
      readiness: readinessAddr.port,
      generation: view.generation,
    },
    'waypoint started',
  );
  return {
    registry,
    instance: inst,
    addresses: { hbone: hboneAddr, admin: adminAddr, metrics: metricsAddr, readiness: readinessAddr },
    shutdown,
  };
}

function buildDump(
  view: WaypointView,
  inst: WaypointInstance,
  certs: CertificateManager,
  opts: WaypointDaemonOptions,
  config: Readonly<Config>,
): unknown {
  const served = view.state.services
    .filter((s) => isServedBy(s, inst.self))
    .map((s) => `${s.namespace}/${s.name}`)
    .sort();
  const cfg: WaypointConfig = view.config;
  return {
    waypoint: { ...inst.self, pod: inst.workload.name, ip: inst.ip, identity: inst.identity },
    version: { version: opts.version, component: 'waypoint', node: process.version },
    generation: view.generation,
    services: served,
    waypointConfig: buildWaypointConfigDump(cfg),
    certificates: certs.dump(),
    config: { ...config, configPath: opts.configPath },
  };
}
