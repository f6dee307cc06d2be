/**
 * ProxyManager: keeps one WorkloadProxy per enrolled workload on this node, in step with config.
 *
 * Invariants:
 * - a workload's listeners open only after its certificate is available (fetched first);
 * - a workload removed from config (or whose IP, identity or placement — capture mode: its
 *   network namespace — changed) has its proxy closed at once, as ztunnel does when a pod is
 *   deleted: its network is going away, so there is nothing to drain;
 * - a proxy that failed to start (certificate or bind error) stays Pending and is retried every
 *   5 s (ztunnel's in-pod retry), and readiness stays false while any proxy is Pending;
 * - certificates of identities no local workload uses any more are forgotten;
 * - after every config change, live inbound connections are re-evaluated against the new policy.
 */
import { errorMessage } from '../errors.js';
import { spiffeIdOf } from '../identity/index.js';
import { identityOf, isCaptured, type MeshState, type Workload } from '../state/index.js';
import type { Readiness, Registry } from '../telemetry/index.js';
import type { ProxyInputs } from './inputs.js';
import { WorkloadProxy, type WorkloadPorts } from './workload-proxy.js';

/** ztunnel retries a pod whose proxy failed to start every 5 s. */
export const PROXY_RETRY_MS = 5_000;

interface Slot {
  workload: Workload;
  /** SocketFactory.placementOf(workload) when the slot was made. */
  placement: string;
  state: 'Pending' | 'Up';
  proxy: WorkloadProxy | undefined;
  error: string | undefined;
  starting: Promise<void> | undefined;
  retry: NodeJS.Timeout | undefined;
}

export interface WorkloadStateDump {
  state: 'Pending' | 'Up';
  error?: string;
  info: { name: string; namespace: string; serviceAccount: string; ip: string };
  ports?: WorkloadPorts;
}

export class ProxyManager {
  private readonly slots = new Map<string, Slot>();
  private stopped = false;

  constructor(
    private readonly inputs: ProxyInputs,
    private readonly registry: Registry,
    private readonly readiness: Readiness,
  ) {
    inputs.certs.on('updated', (uri, cert) => {
      for (const slot of this.slots.values())
        if (slot.proxy && identityOf(slot.workload) === uri) slot.proxy.setCertificate(cert);
    });
  }

  /** Bring proxies in line with `state`; resolves when every new proxy has started or failed. */
  async reconcile(state: MeshState): Promise<void> {
    if (this.stopped) return;
    const desired = new Map<string, Workload>();
    for (const w of state.findLocalWorkloads(this.inputs.nodeName))
      if (isCaptured(w) && w.workloadIps.length > 0) desired.set(w.uid, w);
    const closing: Array<Promise<void>> = [];
    for (const [uid, slot] of this.slots) {
      const next = desired.get(uid);
      if (
        !next ||
        next.workloadIps[0] !== slot.workload.workloadIps[0] ||
        identityOf(next) !== identityOf(slot.workload) ||
        this.inputs.sockets.placementOf(next) !== slot.placement
      ) {
        closing.push(this.remove(uid, slot));
      } else {
        slot.workload = next;
      }
    }
    await Promise.all(closing);
    this.inputs.certs.retainOnly(new Set([...desired.values()].map((w) => identityOf(w))));
    const starts: Array<Promise<void>> = [];
    for (const [uid, w] of desired) {
      if (this.slots.has(uid)) continue;
      const slot: Slot = {
        workload: w,
        placement: this.inputs.sockets.placementOf(w),
        state: 'Pending',
        proxy: undefined,
        error: undefined,
        starting: undefined,
        retry: undefined,
      };
      this.slots.set(uid, slot);
      this.inputs.certs.prefetch(spiffeIdOf(w.trustDomain, w.namespace, w.serviceAccount));
      starts.push(this.start(uid, slot));
    }
    this.updateReadiness();
    await Promise.all(starts);
    const closed = this.inputs.connections.reevaluate(state);
    if (closed > 0) this.inputs.logger.info({ closed }, 'closed connections denied by the new policy');
  }

  private start(uid: string, slot: Slot): Promise<void> {
    slot.starting = (async () => {
      const w = slot.workload;
      try {
        const cert = await this.inputs.certs.fetchCertificate(
          spiffeIdOf(w.trustDomain, w.namespace, w.serviceAccount),
        );
        if (this.slots.get(uid) !== slot || this.stopped) return;
        const proxy = new WorkloadProxy(this.inputs, w, cert, this.registry);
        await proxy.start();
        if (this.slots.get(uid) !== slot || this.stopped) {
          await proxy.close();
          return;
        }
        slot.proxy = proxy;
        slot.state = 'Up';
        slot.error = undefined;
        this.inputs.logger.info(
          { workload: `${w.namespace}/${w.name}`, ip: w.workloadIps[0], ...proxy.addresses() },
          'workload proxy started',
        );
      } catch (err) {
        if (this.slots.get(uid) !== slot || this.stopped) return;
        slot.error = errorMessage(err);
        this.inputs.logger.error(
          { workload: `${w.namespace}/${w.name}`, error: slot.error, retryInMs: PROXY_RETRY_MS },
          'workload proxy failed to start',
        );
        slot.retry = setTimeout(() => {
          slot.retry = undefined;
          void this.start(uid, slot);
        }, PROXY_RETRY_MS);
        slot.retry.unref();
      } finally {
        slot.starting = undefined;
        this.updateReadiness();
      }
    })();
    return slot.starting;
  }

  private async remove(uid: string, slot: Slot): Promise<void> {
    this.slots.delete(uid);
    if (slot.retry) clearTimeout(slot.retry);
    await slot.starting;
    if (slot.proxy) {
      await slot.proxy.close();
      this.inputs.logger.info(
        { workload: `${slot.workload.namespace}/${slot.workload.name}` },
        'workload proxy stopped',
      );
    }
  }

  private updateReadiness(): void {
    const pending = [...this.slots.values()].some((s) => s.state === 'Pending');
    if (pending) this.readiness.unready('workload proxies');
    else this.readiness.done('workload proxies');
  }

  get activeConnections(): number {
    let n = 0;
    for (const s of this.slots.values()) n += s.proxy?.activeConnections ?? 0;
    return n;
  }

  /** Stop accepting everywhere; resolve when every live connection has ended. */
  async drain(): Promise<void> {
    this.stopped = true;
    for (const s of this.slots.values()) if (s.retry) clearTimeout(s.retry);
    // Proxies already up stop accepting synchronously, before this returns its promise.
    await Promise.all(
      [...this.slots.values()].map((s) =>
        s.starting ? s.starting.then(() => s.proxy?.drain()) : (s.proxy?.drain() ?? Promise.resolve()),
      ),
    );
  }

  /** Close everything now. */
  async forceClose(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.slots.values()].map((s) => s.proxy?.close() ?? Promise.resolve()));
  }

  dump(): Record<string, WorkloadStateDump> {
    const out: Record<string, WorkloadStateDump> = {};
    for (const [uid, s] of [...this.slots].sort(([a], [b]) => a.localeCompare(b))) {
      out[uid] = {
        state: s.state,
        ...(s.error ? { error: s.error } : {}),
        info: {
          name: s.workload.name,
          namespace: s.workload.namespace,
          serviceAccount: s.workload.serviceAccount,
          ip: s.workload.workloadIps[0] ?? '',
        },
        ...(s.proxy ? { ports: s.proxy.addresses() } : {}),
      };
    }
    return out;
  }
}
