/**
 * Waypoints: `gateway.networking.k8s.io` Gateways of class istio-waypoint, the
 * `istio.io/use-waypoint` labels that point traffic at them, and the waypoint's own Service.
 *
 * Rules (istiod's waypoint resolution, made strict where istiod would silently bypass L7 policy):
 * - An object's own label wins over its Namespace's; the value `none` opts out.
 * - A label naming a waypoint that does not exist, or whose HBONE listener's allowedRoutes does
 *   not admit the object's namespace, is a validation error (istiod would send the traffic
 *   direct, skipping the waypoint's policy).
 * - A waypoint serves `service` traffic unless its `istio.io/waypoint-for` label says otherwise.
 *   An object's own label pointing at a waypoint for the wrong traffic type is an error; a
 *   namespace label simply does not apply to that traffic type (as in istiod).
 * - A Service that is itself a waypoint never gets a waypoint.
 * - A waypoint without instance pods is fine: routing fails closed at connection time.
 */
import type { GatewayAddress, Service } from '../state/index.js';
import { serviceKey } from '../state/index.js';
import {
  type Compilation,
  type WaypointFor,
  type WaypointGateway,
  waypointAddress,
} from './compile-types.js';
import { selects, type ObjectContext } from './fields.js';

export const USE_WAYPOINT_LABEL = 'istio.io/use-waypoint';
export const USE_WAYPOINT_NAMESPACE_LABEL = 'istio.io/use-waypoint-namespace';
export const WAYPOINT_FOR_LABEL = 'istio.io/waypoint-for';
export const WAYPOINT_CLASS = 'istio-waypoint';
export const HBONE_PORT = 15008;

const WAYPOINT_FOR: readonly WaypointFor[] = ['service', 'workload', 'all', 'none'];

export function compileGateway(c: Compilation, ctx: ObjectContext): void {
  const spec = ctx.spec;
  const cls = ctx.str(spec.gatewayClassName, 'spec.gatewayClassName');
  if (cls !== WAYPOINT_CLASS) {
    ctx.warn(
      'spec.gatewayClassName',
      `only Gateways of class ${WAYPOINT_CLASS} (waypoints) are used by meshd; class "${cls ?? ''}" is ignored`,
    );
    return;
  }
  let hbone: Record<string, unknown> | undefined;
  let hboneField = '';
  ctx.list(spec.listeners, 'spec.listeners').forEach((l, i) => {
    const field = `spec.listeners[${i}]`;
    const m = ctx.mapping(l, field) ?? {};
    const port = ctx.port(m.port, `${field}.port`);
    const protocol = ctx.str(m.protocol, `${field}.protocol`);
    if (protocol === 'HBONE' && port === HBONE_PORT && !hbone) {
      hbone = m;
      hboneField = field;
    }
  });
  if (!hbone) {
    ctx.fail(
      'spec.listeners',
      `a waypoint Gateway needs an HBONE listener on port ${HBONE_PORT}`,
      `add listeners: [{name: mesh, port: ${HBONE_PORT}, protocol: HBONE}]`,
    );
  }
  const nsField = `${hboneField}.allowedRoutes.namespaces`;
  const routes = ctx.mapping(hbone.allowedRoutes, `${hboneField}.allowedRoutes`) ?? {};
  const nsm = ctx.mapping(routes.namespaces, nsField) ?? {};
  const from = ctx.str(nsm.from, `${nsField}.from`) ?? 'Same';
  if (from !== 'Same' && from !== 'All' && from !== 'Selector') {
    ctx.fail(`${nsField}.from`, `unknown value "${from}"`, 'use Same, All or Selector');
  }
  const allowedSelector =
    from === 'Selector' ? (ctx.matchLabels(nsm.selector, `${nsField}.selector`) ?? {}) : {};
  const waypointFor = (ctx.labels[WAYPOINT_FOR_LABEL] ?? 'service') as WaypointFor;
  if (!WAYPOINT_FOR.includes(waypointFor)) {
    ctx.fail(
      `metadata.labels.${WAYPOINT_FOR_LABEL}`,
      `unknown value "${String(waypointFor)}"`,
      `use one of ${WAYPOINT_FOR.join(', ')}`,
    );
  }
  const gw: WaypointGateway = {
    ctx,
    name: ctx.name,
    namespace: ctx.namespace,
    hostname: `${ctx.name}.${ctx.namespace}.svc.${c.opts.clusterDomain}`,
    waypointFor,
    allowedFrom: from,
    allowedSelector,
  };
  c.waypoints.set(`${gw.namespace}/${gw.name}`, gw);
}

type Traffic = 'service' | 'workload';

/**
 * Resolve the use-waypoint labels of one object (or namespace). Returns 'none' for an explicit
 * opt-out, undefined when the labels say nothing (or a namespace label does not apply to this
 * traffic type), else the waypoint's address.
 */
function resolveLabels(
  c: Compilation,
  ctx: ObjectContext,
  labels: Record<string, string>,
  ownerNamespace: string,
  traffic: Traffic,
  inherited: boolean,
): GatewayAddress | 'none' | undefined {
  const name = labels[USE_WAYPOINT_LABEL];
  if (name === undefined) return undefined;
  if (name === 'none') return 'none';
  const field = `metadata.labels.${USE_WAYPOINT_LABEL}`;
  const gwNs = labels[USE_WAYPOINT_NAMESPACE_LABEL] ?? ownerNamespace;
  const gw = c.waypoints.get(`${gwNs}/${name}`);
  if (!gw) {
    ctx.fail(
      field,
      `names waypoint "${name}" in namespace "${gwNs}", but no Gateway of class ${WAYPOINT_CLASS} with that name is declared`,
      `declare it (gatewayClassName: ${WAYPOINT_CLASS}, listener {name: mesh, port: 15008, protocol: HBONE}), fix the name, or set the label to "none"; meshd never bypasses a waypoint's L7 policy silently`,
    );
  }
  if (!admits(c, gw, ownerNamespace)) {
    ctx.fail(
      field,
      `waypoint ${gw.namespace}/${gw.name} does not admit namespace "${ownerNamespace}" (allowedRoutes.namespaces.from: ${gw.allowedFrom})`,
      `set allowedRoutes.namespaces.from: All (or a matching Selector) on the Gateway's HBONE listener, or use a waypoint in "${ownerNamespace}"`,
    );
  }
  if (gw.waypointFor !== 'all' && gw.waypointFor !== traffic) {
    if (inherited) {
      ctx.note(
        `waypoint ${gw.namespace}/${gw.name} is for ${gw.waypointFor} traffic; not applied to ${traffic} traffic`,
      );
      return undefined;
    }
    ctx.fail(
      field,
      `waypoint ${gw.namespace}/${gw.name} handles ${gw.waypointFor} traffic, not ${traffic} traffic`,
      `set label ${WAYPOINT_FOR_LABEL}: all (or ${traffic}) on the Gateway, or point this label at another waypoint`,
    );
  }
  return waypointAddress(gw);
}

function admits(c: Compilation, gw: WaypointGateway, namespace: string): boolean {
  switch (gw.allowedFrom) {
    case 'All':
      return true;
    case 'Same':
      return namespace === gw.namespace;
    case 'Selector':
      return selects(gw.allowedSelector, c.namespaces.get(namespace)?.labels ?? {});
  }
}

/** Check every Namespace's use-waypoint label up front, so a dangling one is always reported. */
export function validateNamespaceWaypoints(c: Compilation): void {
  for (const [name, ns] of c.namespaces) {
    if (ns.ctx) resolveLabels(c, ns.ctx, ns.labels, name, 'service', true);
  }
}

/** The waypoint of an object with these labels: its own label, else its namespace's. */
export function resolveWaypoint(
  c: Compilation,
  ctx: ObjectContext,
  namespace: string,
  traffic: Traffic,
): GatewayAddress | undefined {
  const own = resolveLabels(c, ctx, ctx.labels, namespace, traffic, false);
  if (own === 'none') return undefined;
  if (own) return own;
  const ns = c.namespaces.get(namespace);
  if (!ns?.ctx) return undefined;
  const inherited = resolveLabels(c, ns.ctx, ns.labels, namespace, traffic, true);
  return inherited === 'none' ? undefined : inherited;
}

/** Workload waypoints for pods (only waypoints for workload/all traffic apply). */
export function assignPodWaypoints(c: Compilation): void {
  for (const pod of c.pods) {
    if (pod.waypointInstanceOf !== undefined) continue;
    const wp = resolveWaypoint(c, pod.ctx, pod.namespace, 'workload');
    if (wp) pod.waypoint = wp;
  }
}

/**
 * Give every waypoint its Service (`<name>.<ns>.svc.<domain>`, port 15008) and make its instance
 * pods endpoints of it. A declared Service of the same name keeps its VIPs and other ports.
 */
export function synthesizeWaypointServices(c: Compilation): void {
  for (const gw of c.waypoints.values()) {
    const existingIdx = c.services.findIndex((s) => s.namespace === gw.namespace && s.name === gw.name);
    const existing = existingIdx >= 0 ? c.services[existingIdx] : undefined;
    const svc: Service = existing
      ? { ...existing, ports: { ...existing.ports, [HBONE_PORT]: existing.ports[HBONE_PORT] ?? HBONE_PORT } }
      : {
          name: gw.name,
          namespace: gw.namespace,
          hostname: gw.hostname,
          vips: [],
          ports: { [HBONE_PORT]: HBONE_PORT },
          appProtocols: {},
          subjectAltNames: [],
          // istiod marks waypoint Services PreferClose.
          loadBalancing: {
            routingPreferences: ['Network', 'Region', 'Zone'],
            mode: 'Failover',
            healthPolicy: 'OnlyHealthy',
          },
          visibility: 'Public',
          canonical: false,
        };
    delete svc.waypoint;
    if (existing) c.services[existingIdx] = svc;
    else c.services.push(svc);
    const key = serviceKey(svc);
    const gwKey = `${gw.namespace}/${gw.name}`;
    for (const pod of c.pods) {
      if (pod.waypointInstanceOf !== gwKey) continue;
      pod.services[key] = { ...pod.services[key], [HBONE_PORT]: svc.ports[HBONE_PORT] ?? HBONE_PORT };
    }
  }
}
