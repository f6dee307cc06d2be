/**
 * Node, Namespace and Pod objects → node addresses, enrolment, and Workloads.
 *
 * Choices (documented here because Kubernetes leaves them to controllers we do not run):
 * - workloadName: label app.kubernetes.io/name, else label app, else the pod name. In a cluster
 *   istiod derives it from the owning controller (Deployment name); in local mode there are no
 *   controllers, and those labels are what people set to the controller's name. workloadType is
 *   'pod' (istiod reports POD for pods).
 * - canonicalName: service.istio.io/canonical-name, app.kubernetes.io/name, app, else the
 *   workloadName; canonicalRevision: service.istio.io/canonical-revision,
 *   app.kubernetes.io/version, version, else "latest" (istiod's label order and default).
 * - A pod without spec.nodeName (unscheduled), without an IP, or in phase Succeeded/Failed is
 *   not a workload yet: skipped with a warning.
 * - A pod in an undeclared namespace is compiled as if the namespace existed without labels
 *   (not enrolled), with one warning per namespace.
 */
import type { Workload } from '../state/index.js';
import { type Compilation, type NamespaceInfo, type PodInfo } from './compile-types.js';
import type { ObjectContext } from './fields.js';
import { checkPodNetns } from './pod-netns.js';

export const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode';
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

/** Reserve an IP for one owner; a second owner is an error. */
export function claimIp(c: Compilation, ctx: ObjectContext, field: string, ip: string): void {
  const owner = c.ipOwners.get(ip);
  if (owner !== undefined) {
    ctx.fail(
      field,
      `IP ${ip} is already used by ${owner}`,
      'give every Pod, Node and Service cluster IP its own address',
    );
  }
  c.ipOwners.set(ip, ctx.object);
}

export function compileNode(c: Compilation, ctx: ObjectContext): void {
  const addresses = ctx.list(ctx.status.addresses, 'status.addresses');
  let address: string | undefined;
  addresses.forEach((a, i) => {
    const field = `status.addresses[${i}]`;
    const m = ctx.mapping(a, field) ?? {};
    const type = ctx.str(m.type, `${field}.type`);
    if (type === 'InternalIP' && address === undefined) {
      address = ctx.ip(m.address, `${field}.address`);
      claimIp(c, ctx, `${field}.address`, address);
    }
  });
  if (address === undefined) {
    ctx.fail(
      'status.addresses',
      'has no InternalIP address',
      'add status: {addresses: [{type: InternalIP, address: 127.0.0.x}]}; in local mode the node daemon listens there',
    );
  }
  c.nodes.set(ctx.name, { name: ctx.name, address, labels: { ...ctx.labels } });
}

export function compileNamespace(c: Compilation, ctx: ObjectContext): void {
  const mode = ctx.labels[DATAPLANE_MODE_LABEL];
  if (mode !== undefined && mode !== 'ambient' && mode !== 'none') {
    ctx.warn(
      `metadata.labels.${DATAPLANE_MODE_LABEL}`,
      `unknown value "${mode}"; only "ambient" enrols a namespace`,
    );
  }
  c.namespaces.set(ctx.name, { ctx, labels: { ...ctx.labels }, enrolled: mode === 'ambient' });
}

function namespaceOf(c: Compilation, ctx: ObjectContext): NamespaceInfo {
  const ns = ctx.namespace;
  let info = c.namespaces.get(ns);
  if (!info) {
    ctx.warn(
      'metadata.namespace',
      `Namespace "${ns}" is not declared; its pods are not enrolled (add a Namespace with label ${DATAPLANE_MODE_LABEL}: ambient to enrol them)`,
    );
    info = { ctx: undefined, labels: {}, enrolled: false };
    c.namespaces.set(ns, info);
  }
  return info;
}

function podIps(c: Compilation, ctx: ObjectContext): string[] {
  const status = ctx.status;
  const ips: string[] = [];
  const add = (v: unknown, field: string) => {
    const ip = ctx.ip(v, field);
    if (!ips.includes(ip)) ips.push(ip);
  };
  if (status.podIP !== undefined && status.podIP !== null) add(status.podIP, 'status.podIP');
  ctx.list(status.podIPs, 'status.podIPs').forEach((entry, i) => {
    const m = ctx.mapping(entry, `status.podIPs[${i}]`) ?? {};
    add(m.ip, `status.podIPs[${i}].ip`);
  });
  ips.forEach((ip) => claimIp(c, ctx, 'status.podIP', ip));
  return ips;
}

function namedPorts(ctx: ObjectContext): Map<string, number> {
  const out = new Map<string, number>();
  const spec = ctx.spec;
  for (const list of ['initContainers', 'containers'] as const) {
    ctx.list(spec[list], `spec.${list}`).forEach((container, ci) => {
      const cfield = `spec.${list}[${ci}]`;
      const cm = ctx.mapping(container, cfield) ?? {};
      ctx.list(cm.ports, `${cfield}.ports`).forEach((p, pi) => {
        const pfield = `${cfield}.ports[${pi}]`;
        const pm = ctx.mapping(p, pfield) ?? {};
        const port = ctx.port(pm.containerPort, `${pfield}.containerPort`);
        const name = ctx.str(pm.name, `${pfield}.name`);
        if (name === undefined) return;
        if (out.has(name)) {
          ctx.fail(
            `${pfield}.name`,
            `port name "${name}" is used twice in this pod`,
            'give each container port a unique name',
          );
        }
        out.set(name, port);
      });
    });
  }
  return out;
}

function isReady(ctx: ObjectContext): boolean {
  if ((ctx.lo.obj.metadata as { deletionTimestamp?: unknown }).deletionTimestamp != null) return false;
  const conditions = ctx.list(ctx.status.conditions, 'status.conditions');
  for (const [i, cond] of conditions.entries()) {
    const m = ctx.mapping(cond, `status.conditions[${i}]`) ?? {};
    if (m.type === 'Ready') return ctx.str(m.status, `status.conditions[${i}].status`) !== 'False';
  }
  return true;
}

export function compilePod(c: Compilation, ctx: ObjectContext): void {
  checkPodNetns(ctx);
  const spec = ctx.spec;
  const node = ctx.str(spec.nodeName, 'spec.nodeName');
  if (node === undefined || node === '') {
    ctx.warn('spec.nodeName', 'the pod is not scheduled to a node; it is not a workload until it is');
    return;
  }
  if (!c.nodes.has(node)) {
    ctx.fail(
      'spec.nodeName',
      `Node "${node}" is not declared`,
      'add a Node object with that name (with an InternalIP in status.addresses), or fix spec.nodeName',
    );
  }
  const phase = ctx.str(ctx.status.phase, 'status.phase');
  if (phase === 'Succeeded' || phase === 'Failed') {
    ctx.warn('status.phase', `the pod has terminated (${phase}); it is not a workload`);
    return;
  }
  if (ctx.bool(spec.hostNetwork, 'spec.hostNetwork')) {
    ctx.warn(
      'spec.hostNetwork',
      'hostNetwork pods are not captured by the mesh; treated as a plain (TCP) workload',
    );
  }
  const ips = podIps(c, ctx);
  if (ips.length === 0) {
    ctx.warn('status.podIP', 'the pod has no IP yet; it is not a workload until it has one');
    return;
  }
  const labels = { ...ctx.labels };
  const ns = namespaceOf(c, ctx);
  const podMode = labels[DATAPLANE_MODE_LABEL];
  const gatewayName = labels[GATEWAY_NAME_LABEL];
  const gwKey = gatewayName === undefined ? undefined : `${ctx.namespace}/${gatewayName}`;
  const sa =
    ctx.str(spec.serviceAccountName, 'spec.serviceAccountName') ??
    ctx.str(spec.serviceAccount, 'spec.serviceAccount') ??
    'default';
  const pod: PodInfo = {
    ctx,
    uid: `${c.opts.clusterId}//Pod/${ctx.namespace}/${ctx.name}`,
    name: ctx.name,
    namespace: ctx.namespace,
    labels,
    node,
    serviceAccount: sa,
    ips,
    healthy: isReady(ctx),
    namedPorts: namedPorts(ctx),
    enrolled:
      !ctx.bool(spec.hostNetwork, 'spec.hostNetwork') &&
      (podMode === 'ambient' || (podMode !== 'none' && ns.enrolled)),
    services: {},
    policies: [],
  };
  if (gwKey !== undefined && c.waypoints.has(gwKey)) pod.waypointInstanceOf = gwKey;
  c.pods.push(pod);
}

function firstLabel(labels: Record<string, string>, keys: readonly string[]): string | undefined {
  for (const k of keys) {
    const v = labels[k];
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

export function buildWorkload(c: Compilation, pod: PodInfo): Workload {
  const nodeLabels = c.nodes.get(pod.node)?.labels ?? {};
  const isWaypoint = pod.waypointInstanceOf !== undefined;
  const workloadName = firstLabel(pod.labels, ['app.kubernetes.io/name', 'app']) ?? pod.name;
  const w: Workload = {
    uid: pod.uid,
    name: pod.name,
    namespace: pod.namespace,
    serviceAccount: pod.serviceAccount,
    trustDomain: c.opts.trustDomain,
    workloadIps: pod.ips,
    network: '',
    node: pod.node,
    protocol: isWaypoint || pod.enrolled ? 'HBONE' : 'TCP',
    nativeTunnel: isWaypoint,
    services: pod.services,
    status: pod.healthy ? 'Healthy' : 'Unhealthy',
    canonicalName:
      firstLabel(pod.labels, ['service.istio.io/canonical-name', 'app.kubernetes.io/name', 'app']) ??
      workloadName,
    canonicalRevision:
      firstLabel(pod.labels, [
        'service.istio.io/canonical-revision',
        'app.kubernetes.io/version',
        'version',
      ]) ?? 'latest',
    workloadName,
    workloadType: 'pod',
    locality: {
      region: nodeLabels['topology.kubernetes.io/region'] ?? '',
      zone: nodeLabels['topology.kubernetes.io/zone'] ?? '',
      subzone: nodeLabels['topology.istio.io/subzone'] ?? '',
    },
    capacity: 1,
    clusterId: c.opts.clusterId,
    authorizationPolicies: [...new Set(pod.policies)],
  };
  if (pod.waypoint) w.waypoint = pod.waypoint;
  return w;
}
