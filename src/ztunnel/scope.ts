/**
 * Which pods one ztunnel process serves, and where its daemon ports listen.
 *
 * - Node mode (`--node NAME`, the DaemonSet model): every enrolled pod whose spec.nodeName is
 *   NAME; admin, metrics and readiness listen on the Node's InternalIP.
 * - Dedicated mode (`--dedicated NAMESPACE/POD`, the sidecar model, as Istio's ztunnel dedicated
 *   mode): exactly one enrolled pod; its node comes from the pod, and the daemon ports listen on
 *   the pod's IP, because many dedicated proxies share one node.
 *
 * buildDaemonScope is a pure decision over the first config snapshot: a bad flag or a pod that
 * cannot be served is a failure value carrying a MeshError that says what to fix.
 */
import { MeshError } from '../errors.js';
import { isCaptured, type MeshState, type Workload } from '../state/index.js';

export interface DaemonScope {
  /** The node whose pods are served (in dedicated mode, the pod's node). */
  nodeName: string;
  /** Where admin/metrics/readiness listen: the Node's InternalIP, or the pod's IP when dedicated. */
  daemonAddress: string;
  /** Dedicated mode: the uid of the one workload served. */
  dedicatedUid?: string;
  /** Dedicated mode: `namespace/pod`, for logs. */
  dedicated?: string;
}

export interface DaemonScopeInput {
  configPath: string;
  nodes: ReadonlyMap<string, { address: string }>;
  state: MeshState;
  /** Pods declared in the file (`namespace/name`), workloads or not, to tell "unknown" from "not running". */
  declaredPods: ReadonlySet<string>;
  node?: string;
  dedicated?: string;
}

export type DaemonScopeResult = { ok: true; scope: DaemonScope } | { ok: false; error: MeshError };

const fail = (message: string, hint: string, code: 'MESH_ERR_CONFIG' | 'MESH_ERR_INVALID_ARGUMENT') => ({
  ok: false as const,
  error: new MeshError(code, message, { hint }),
});

/** `namespace/pod` → its parts, or undefined when the text is not of that shape. */
export function parsePodRef(text: string): { namespace: string; name: string } | undefined {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(text);
  return m?.[1] && m[3] ? { namespace: m[1], name: m[3] } : undefined;
}

function findPod(state: MeshState, namespace: string, name: string): Workload | undefined {
  return state.workloads.find(
    (w) => w.namespace === namespace && w.name === name && w.uid.endsWith(`//Pod/${namespace}/${name}`),
  );
}

export function buildDaemonScope(input: DaemonScopeInput): DaemonScopeResult {
  const { configPath, nodes, state, node, dedicated } = input;
  if (dedicated === undefined) {
    if (node === undefined || node === '')
      return fail(
        'either --node NAME (serve every enrolled pod of a node) or --dedicated NAMESPACE/POD (serve one pod) is required',
        'add --node with the name of a v1 Node in the config, or --dedicated with a pod',
        'MESH_ERR_INVALID_ARGUMENT',
      );
    const info = nodes.get(node);
    if (!info) {
      const known = [...nodes.keys()].sort().join(', ') || 'none';
      return fail(
        `node "${node}" is not declared in ${configPath} (nodes: ${known})`,
        'add a v1 Node with that name and an InternalIP in status.addresses, or pass --node with one of the declared names',
        'MESH_ERR_CONFIG',
      );
    }
    return { ok: true, scope: { nodeName: node, daemonAddress: info.address } };
  }

  const ref = parsePodRef(dedicated);
  if (!ref)
    return fail(
      `--dedicated "${dedicated}" is not NAMESPACE/POD`,
      'name one pod as namespace/name, for example --dedicated shop/frontend-0',
      'MESH_ERR_INVALID_ARGUMENT',
    );
  const key = `${ref.namespace}/${ref.name}`;
  const w = findPod(state, ref.namespace, ref.name);
  if (!w) {
    if (input.declaredPods.has(key))
      return fail(
        `pod ${key} in ${configPath} is not a running workload: it has no spec.nodeName or status.podIP, or it has terminated`,
        'give the pod spec.nodeName (a declared Node) and status.podIP',
        'MESH_ERR_CONFIG',
      );
    const inNs = [...input.declaredPods].filter((p) => p.startsWith(`${ref.namespace}/`)).sort();
    const shown = inNs.length > 10 ? `${inNs.slice(0, 10).join(', ')}, …` : inNs.join(', ') || 'none';
    return fail(
      `pod ${key} is not declared in ${configPath} (pods in namespace ${ref.namespace}: ${shown})`,
      'add a v1 Pod with that namespace and name, or pass --dedicated with a declared pod',
      'MESH_ERR_CONFIG',
    );
  }
  if (w.nativeTunnel)
    return fail(
      `pod ${key} is a waypoint: it terminates HBONE itself and has no ztunnel`,
      'run a dedicated ztunnel for an application pod instead',
      'MESH_ERR_CONFIG',
    );
  if (!isCaptured(w))
    return fail(
      `pod ${key} is not enrolled in the mesh, so a dedicated ztunnel has nothing to serve`,
      `label namespace ${ref.namespace} istio.io/dataplane-mode=ambient (and do not label the pod istio.io/dataplane-mode=none)`,
      'MESH_ERR_CONFIG',
    );
  if (node !== undefined && node !== w.node)
    return fail(
      `--node ${node} does not match pod ${key}, which runs on node ${w.node}`,
      'leave out --node in dedicated mode: the pod names its node',
      'MESH_ERR_INVALID_ARGUMENT',
    );
  const ip = w.workloadIps[0];
  if (ip === undefined) return fail(`pod ${key} has no IP`, 'set status.podIP', 'MESH_ERR_CONFIG');
  return {
    ok: true,
    scope: { nodeName: w.node, daemonAddress: ip, dedicatedUid: w.uid, dedicated: key },
  };
}

/** Does a process with this scope serve workload `w`? (Locality is checked by the caller.) */
export function scopeServes(scope: Pick<DaemonScope, 'dedicatedUid'>, w: Pick<Workload, 'uid'>): boolean {
  return scope.dedicatedUid === undefined || scope.dedicatedUid === w.uid;
}
