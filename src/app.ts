/**
 * Composition root: the one place where modules are wired together into a running daemon.
 *
 * buildZtunnel: config source → state; CA → certificate manager; HBONE pool; per-workload proxies
 * (ProxyManager); admin, metrics and readiness servers on the node's address; drain on shutdown.
 * The SocketFactory picks the mode: local (loopback IPs, SOCKS5) or capture (pod netns, iptables).
 * Start-up order follows ztunnel: readiness first (reporting "not ready"), then config, then the
 * workload proxies (each after its certificate), then admin; ready once config is loaded and
 * every local workload's proxy is up.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge } from 'prom-client';
import { assertCaptureSupported } from './capture/index.js';
import type { Config } from './config.js';
import {
  FileConfigSource,
  NETNS_ANNOTATION,
  buildPodNetnsIndex,
  type ConfigSource,
  type MeshSnapshot,
} from './config-source/index.js';
import { MeshError } from './errors.js';
import { HbonePool } from './hbone/index.js';
import { CertificateManager, LocalCaSource, MeshCa } from './identity/index.js';
import { policyKey } from './state/index.js';
import {
  DrainController,
  Readiness,
  closeServer,
  createAdminServer,
  createMetricsServer,
  createReadinessServer,
  createRegistry,
  listen,
  type Logger,
  type Registry,
} from './telemetry/index.js';
import {
  ConnectionManager,
  DEFAULT_ILLEGAL_PORTS,
  LoopbackSocketFactory,
  NetnsSocketFactory,
  ProxyManager,
  TrafficMetrics,
  type ProxyInputs,
  type SocketFactory,
} from './ztunnel/index.js';

export const VERSION_INFO = { component: 'ztunnel' };

/** Load the mesh CA from `dir`, creating one (and saying so) if the directory holds none. */
export async function loadOrCreateCa(dir: string, trustDomain: string, log: Logger): Promise<MeshCa> {
  if (await MeshCa.exists(dir)) {
    const ca = await MeshCa.load(dir);
    if (ca.trustDomain !== trustDomain) {
      throw new MeshError(
        'MESH_ERR_CA_TRUST_DOMAIN',
        `the CA in ${dir} is for trust domain "${ca.trustDomain}", but this mesh uses "${trustDomain}"`,
        {
          hint: `pass --trust-domain ${ca.trustDomain}, or point --ca-dir at a CA for ${trustDomain}`,
        },
      );
    }
    return ca;
  }
  const ca = MeshCa.create({ trustDomain });
  try {
    await ca.save(dir);
    log.info({ dir, trustDomain }, 'no mesh CA found: created a new one');
    return ca;
  } catch (err) {
    // Another daemon sharing the directory created it first: use theirs.
    if (err instanceof MeshError && err.code === 'MESH_ERR_CA_EXISTS') return MeshCa.load(dir);
    throw err;
  }
}

export interface ZtunnelOptions {
  config: Readonly<Config>;
  configPath: string;
  nodeName: string;
  caDir: string;
  version: string;
  logger: Logger;
  /**
   * Capture mode (Linux, root): each pod's listeners are made inside its network namespace (Pod
   * annotation meshd.io/netns) and its traffic arrives by iptables REDIRECT. Default: local mode.
   */
  capture?: boolean;
  /** Called once the daemon has drained after SIGTERM or /quitquitquit. */
  onExit?: (graceful: boolean) => void;
}

export interface Ztunnel {
  readonly registry: Registry;
  readonly addresses: { admin: AddressInfo; metrics: AddressInfo; readiness: AddressInfo };
  /** Graceful shutdown: stop accepting, GOAWAY, wait up to the drain deadline, close the rest. */
  shutdown(): Promise<{ graceful: boolean }>;
}

export async function buildZtunnel(opts: ZtunnelOptions): Promise<Ztunnel> {
  const { config, logger } = opts;
  const log = logger.child({ component: 'ztunnel', node: opts.nodeName });
  if (opts.capture) assertCaptureSupported();
  const registry = createRegistry({ processMetrics: true, component: 'ztunnel', version: opts.version });
  const readiness = new Readiness();
  readiness.register('config');
  readiness.register('workload proxies');

  const source: ConfigSource = new FileConfigSource({
    path: opts.configPath,
    logger,
    registry,
    compile: { trustDomain: config.trustDomain, clusterDomain: config.clusterDomain },
  });
  const first = await source.start();
  const node = first.nodes.get(opts.nodeName);
  if (!node) {
    await source.stop();
    const known = [...first.nodes.keys()].sort().join(', ') || 'none';
    throw new MeshError(
      'MESH_ERR_CONFIG',
      `node "${opts.nodeName}" is not declared in ${opts.configPath} (nodes: ${known})`,
      {
        hint: 'add a v1 Node with that name and an InternalIP in status.addresses, or pass --node with one of the declared names',
      },
    );
  }
  let snapshot: MeshSnapshot = first;
  readiness.done('config');

  const ca = await loadOrCreateCa(opts.caDir, config.trustDomain, log);
  const certs = new CertificateManager({ source: new LocalCaSource(ca, config.certTtlMs), registry, logger });
  const pool = new HbonePool({
    http2: config.http2,
    pool: config.pool,
    connectTimeoutMs: config.connectTimeoutMs,
    tlsHandshakeTimeoutMs: config.tlsHandshakeTimeoutMs,
    registry,
    logger,
  });
  const drain = new DrainController();
  const connections = new ConnectionManager();
  const inputs: ProxyInputs = {
    config,
    state: () => snapshot.state,
    nodeName: opts.nodeName,
    certs,
    pool,
    metrics: new TrafficMetrics(registry),
    connections,
    sockets: opts.capture ? buildNetnsSockets(() => snapshot) : new LoopbackSocketFactory(),
    logger: log,
    accessLog: logger.child({ component: 'access' }),
    illegalPorts: DEFAULT_ILLEGAL_PORTS,
    preserveSourceIp: true,
    draining: () => drain.draining,
  };
  const proxies = new ProxyManager(inputs, registry, readiness);
  new Gauge({
    name: 'meshd_active_connections',
    help: 'Connections currently proxied by this ztunnel, inbound and outbound (unstable)',
    registers: [registry],
    collect() {
      this.set(proxies.activeConnections);
    },
  });

  // Daemon ports on the node's address (in local mode, the Node's InternalIP).
  const servers: http.Server[] = [];
  const bind = async (server: http.Server, port: number, what: string) => {
    servers.push(server);
    return listen(server, { host: node.address, port }, what);
  };
  let shuttingDown: Promise<{ graceful: boolean }> | undefined;
  const shutdown = (): Promise<{ graceful: boolean }> => {
    shuttingDown ??= (async () => {
      readiness.unready('draining');
      // Stop accepting first (listeners close as drain starts), then say so.
      const drained = drain.drain(config.drainTimeoutMs);
      log.info(
        { deadlineMs: config.drainTimeoutMs, activeConnections: proxies.activeConnections },
        'draining',
      );
      await source.stop();
      const result = await drained;
      certs.close();
      await Promise.all(servers.map((s) => closeServer(s)));
      log.info({ graceful: result.graceful, durationMs: result.durationMs }, 'drained');
      opts.onExit?.(result.graceful);
      return { graceful: result.graceful };
    })();
    return shuttingDown;
  };
  const readinessAddr = await bind(createReadinessServer(readiness), config.ports.readiness, 'readiness');
  const metricsAddr = await bind(createMetricsServer(registry), config.ports.metrics, 'metrics');

  drain.add({ drain: () => proxies.drain(), forceClose: () => proxies.forceClose() });
  drain.add({ drain: () => Promise.resolve(), forceClose: () => pool.close() });

  source.onUpdate((next) => {
    snapshot = next;
    void proxies.reconcile(next.state).catch((err: unknown) => log.error({ err }, 'reconcile failed'));
  });
  await proxies.reconcile(snapshot.state);

  const adminAddr = await bind(
    createAdminServer({
      logger,
      quit: () => void shutdown(),
      configDump: () => buildConfigDump(snapshot, certs, proxies, connections, config, opts),
    }),
    config.ports.admin,
    'admin',
  );
  log.info(
    {
      generation: snapshot.generation,
      mode: opts.capture ? 'capture' : 'local',
      workloads: proxies.dump(),
      admin: adminAddr.port,
      metrics: metricsAddr.port,
      readiness: readinessAddr.port,
      ready: readiness.ready,
    },
    'ztunnel started',
  );
  return {
    registry,
    addresses: { admin: adminAddr, metrics: metricsAddr, readiness: readinessAddr },
    shutdown,
  };
}

/** Capture mode's sockets: each pod's netns comes from its annotation in the snapshot in force. */
function buildNetnsSockets(current: () => MeshSnapshot): SocketFactory {
  const indexes = new WeakMap<MeshSnapshot, ReadonlyMap<string, string>>();
  return new NetnsSocketFactory({
    findNetns: (w) => {
      const snapshot = current();
      let index = indexes.get(snapshot);
      if (!index) {
        index = buildPodNetnsIndex(snapshot.objects);
        indexes.set(snapshot, index);
      }
      return index.get(`${w.namespace}/${w.name}`);
    },
    missingNetnsHint: `annotate the Pod with ${NETNS_ANNOTATION}: <netns name or path>; capture mode makes the pod's listeners inside that network namespace`,
  });
}

function buildConfigDump(
  snapshot: MeshSnapshot,
  certs: CertificateManager,
  proxies: ProxyManager,
  connections: ConnectionManager,
  config: Readonly<Config>,
  opts: ZtunnelOptions,
): unknown {
  const s = snapshot.state;
  const byUid = connections.dump();
  const workloadState = Object.fromEntries(
    Object.entries(proxies.dump()).map(([uid, w]) => [
      uid,
      { ...w, connections: { inbound: byUid[uid] ?? [] } },
    ]),
  );
  return {
    node: opts.nodeName,
    version: { version: opts.version, component: 'ztunnel', node: process.version },
    generation: snapshot.generation,
    loadedAt: new Date(snapshot.loadedAtMs).toISOString(),
    workloads: [...s.workloads].sort((a, b) => a.uid.localeCompare(b.uid)),
    services: [...s.services].sort((a, b) => a.hostname.localeCompare(b.hostname)),
    policies: [...s.policies].sort((a, b) => policyKey(a).localeCompare(policyKey(b))),
    certificates: certs.dump(),
    workloadState,
    warnings: snapshot.warnings,
    config: { ...config, configPath: opts.configPath, caDir: opts.caDir },
  };
}
