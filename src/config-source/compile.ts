/**
 * Kubernetes objects → the L4 model (MeshState) plus node addresses and diagnostics.
 *
 * Order matters and is fixed: duplicates, then Nodes, Namespaces, waypoint Gateways, Pods,
 * Services (+ waypoint Services), AuthorizationPolicies, PeerAuthentications, workload
 * waypoints; last the Workloads are built and indexed. The first invalid object stops the
 * compile with a ConfigValidationError; recoverable findings become warnings.
 *
 * HTTPRoute, GRPCRoute, DestinationRule and VirtualService are left to the waypoint's compiler
 * (they stay in the snapshot's objects). ServiceAccount and GatewayClass need no compiling.
 * Everything else is ignored with a warning.
 */
import { MeshState } from '../state/index.js';
import { compileAuthorizationPolicy } from './compile-authz.js';
import { applyPeerAuthentications, parsePeerAuthentication, type PeerAuthn } from './compile-peer-authn.js';
import { compileService } from './compile-services.js';
import {
  DEFAULT_COMPILE_OPTIONS,
  type Compilation,
  type CompileOptions,
  type NodeInfo,
  type ResolvedOptions,
} from './compile-types.js';
import {
  assignPodWaypoints,
  compileGateway,
  synthesizeWaypointServices,
  validateNamespaceWaypoints,
} from './compile-waypoints.js';
import { buildWorkload, compileNamespace, compileNode, compilePod } from './compile-workloads.js';
import { ObjectContext } from './fields.js';
import { ConfigValidationError, describeObject, type ConfigWarning, type LocatedObject } from './kube.js';
import { parseKubeYaml } from './parse.js';

export interface CompiledConfig {
  state: MeshState;
  nodes: ReadonlyMap<string, NodeInfo>;
  warnings: ConfigWarning[];
  /** Debug-level notes, e.g. policies left to the waypoint. */
  notes: string[];
}

type Handler =
  'Node' | 'Namespace' | 'Pod' | 'Service' | 'AuthorizationPolicy' | 'PeerAuthentication' | 'Gateway';

/** group/kind → compiler. The group is the apiVersion without its version ("" for core). */
const HANDLERS: Readonly<Record<string, Handler>> = {
  '/Node': 'Node',
  '/Namespace': 'Namespace',
  '/Pod': 'Pod',
  '/Service': 'Service',
  'security.istio.io/AuthorizationPolicy': 'AuthorizationPolicy',
  'security.istio.io/PeerAuthentication': 'PeerAuthentication',
  'gateway.networking.k8s.io/Gateway': 'Gateway',
};

/** Kinds read by other components (or needing no compiling): no warning. */
const QUIET_KINDS = new Set([
  'gateway.networking.k8s.io/HTTPRoute',
  'gateway.networking.k8s.io/GRPCRoute',
  'gateway.networking.k8s.io/GatewayClass',
  'gateway.networking.k8s.io/ReferenceGrant',
  'networking.istio.io/DestinationRule',
  'networking.istio.io/VirtualService',
  '/ServiceAccount',
]);

const CONTROLLERS = new Set([
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'Job',
  'CronJob',
  'ReplicationController',
]);

function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

function checkDuplicates(objects: readonly LocatedObject[]): void {
  const seen = new Map<string, LocatedObject>();
  for (const lo of objects) {
    const m = lo.obj.metadata;
    const key = `${groupOf(lo.obj.apiVersion)}/${lo.obj.kind}/${m.namespace ?? ''}/${m.name}`;
    const first = seen.get(key);
    if (first) {
      throw new ConfigValidationError(
        lo.loc,
        describeObject(lo.obj),
        'metadata.name',
        `duplicate object: already declared in ${first.loc.file} document ${first.loc.document}`,
        'remove one of them or give it another name',
      );
    }
    seen.set(key, lo);
  }
}

export function resolveCompileOptions(options: CompileOptions = {}): ResolvedOptions {
  const o = { ...DEFAULT_COMPILE_OPTIONS };
  for (const [k, v] of Object.entries(options))
    if (v !== undefined) (o as Record<string, string>)[k] = v as string;
  return o;
}

export function compileObjects(
  objects: readonly LocatedObject[],
  options: CompileOptions = {},
): CompiledConfig {
  checkDuplicates(objects);
  const c: Compilation = {
    opts: resolveCompileOptions(options),
    warnings: [],
    notes: [],
    nodes: new Map(),
    namespaces: new Map(),
    waypoints: new Map(),
    pods: [],
    services: [],
    policies: [],
    ipOwners: new Map(),
  };
  const byHandler = new Map<Handler, ObjectContext[]>();
  for (const lo of objects) {
    const ctx = new ObjectContext(lo, c);
    const gk = `${groupOf(lo.obj.apiVersion)}/${lo.obj.kind}`;
    const handler = HANDLERS[gk];
    if (handler) {
      const list = byHandler.get(handler) ?? [];
      list.push(ctx);
      byHandler.set(handler, list);
    } else if (CONTROLLERS.has(lo.obj.kind)) {
      ctx.warn(
        'kind',
        `meshd local mode reads Pods, not controllers: declare the ${lo.obj.kind}'s Pods (with spec.nodeName and status.podIP) instead; ignored`,
      );
    } else if (!QUIET_KINDS.has(gk)) {
      ctx.warn('kind', `${lo.obj.apiVersion} ${lo.obj.kind} is not used by meshd local mode; ignored`);
    }
  }
  const each = (h: Handler, f: (ctx: ObjectContext, i: number) => void) =>
    (byHandler.get(h) ?? []).forEach(f);

  each('Node', (ctx) => compileNode(c, ctx));
  each('Namespace', (ctx) => compileNamespace(c, ctx));
  each('Gateway', (ctx) => compileGateway(c, ctx));
  validateNamespaceWaypoints(c);
  each('Pod', (ctx) => compilePod(c, ctx));
  each('Service', (ctx) => compileService(c, ctx));
  synthesizeWaypointServices(c);
  each('AuthorizationPolicy', (ctx) => compileAuthorizationPolicy(c, ctx));
  const pas: PeerAuthn[] = [];
  each('PeerAuthentication', (ctx, i) => pas.push(parsePeerAuthentication(ctx, i)));
  applyPeerAuthentications(c, pas);
  assignPodWaypoints(c);

  const state = MeshState.build(
    { workloads: c.pods.map((p) => buildWorkload(c, p)), services: c.services, policies: c.policies },
    { clusterDomain: c.opts.clusterDomain },
  );
  return { state, nodes: c.nodes, warnings: c.warnings, notes: c.notes };
}

/** Parse and compile one YAML text. Throws ConfigValidationError when invalid. */
export function compileYaml(
  text: string,
  file: string,
  options: CompileOptions = {},
): CompiledConfig & { objects: LocatedObject[] } {
  const objects = parseKubeYaml(text, file);
  return { ...compileObjects(objects, options), objects };
}
