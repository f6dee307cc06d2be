/**
 * What `meshd demo` runs, read from the demo YAML: the nodes (one ztunnel each), the waypoints
 * (one `meshd waypoint` per instance pod), and the sample apps that pods' `meshd.io/demo-app`
 * annotations ask for. Pure: objects in, plan out.
 */
import type { LocatedObject, NodeInfo } from '../config-source/index.js';

export const DEMO_APP_ANNOTATION = 'meshd.io/demo-app';
export const DEMO_UPSTREAM_ANNOTATION = 'meshd.io/demo-upstream';
const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';

export interface DemoApp {
  kind: 'echo' | 'frontend';
  pod: string;
  namespace: string;
  ip: string;
  port: number;
  version: string;
  upstream?: string;
}

export interface DemoWaypoint {
  gateway: string;
  namespace: string;
  pod: string;
  ip: string;
}

export interface DemoPlan {
  nodes: Array<{ name: string; address: string }>;
  /** Every pod with an IP, for the commands the demo prints. */
  pods: Array<{ name: string; namespace: string; ip: string }>;
  apps: DemoApp[];
  waypoints: DemoWaypoint[];
}

interface PodShape {
  spec?: { containers?: Array<{ ports?: Array<{ containerPort?: number }> }> };
  status?: { podIP?: string };
}

export function buildDemoPlan(
  objects: readonly LocatedObject[],
  nodes: ReadonlyMap<string, NodeInfo>,
): DemoPlan {
  const apps: DemoApp[] = [];
  const waypoints: DemoWaypoint[] = [];
  const pods: DemoPlan['pods'] = [];
  const istioWaypoints = new Set(
    objects
      .filter(
        (o) =>
          o.obj.kind === 'Gateway' &&
          (o.obj.spec as { gatewayClassName?: string } | undefined)?.gatewayClassName === 'istio-waypoint',
      )
      .map((o) => `${o.obj.metadata.namespace ?? 'default'}/${o.obj.metadata.name}`),
  );
  for (const { obj } of objects) {
    if (obj.kind !== 'Pod') continue;
    const pod = obj as typeof obj & PodShape;
    const ip = pod.status?.podIP;
    const ns = obj.metadata.namespace ?? 'default';
    if (!ip) continue;
    pods.push({ name: obj.metadata.name, namespace: ns, ip });
    const gw = obj.metadata.labels?.[GATEWAY_NAME_LABEL];
    if (gw && istioWaypoints.has(`${ns}/${gw}`)) {
      waypoints.push({ gateway: gw, namespace: ns, pod: obj.metadata.name, ip });
      continue;
    }
    const kind = obj.metadata.annotations?.[DEMO_APP_ANNOTATION];
    if (kind !== 'echo' && kind !== 'frontend') continue;
    const port = pod.spec?.containers?.[0]?.ports?.[0]?.containerPort ?? 8080;
    const upstream = obj.metadata.annotations?.[DEMO_UPSTREAM_ANNOTATION];
    apps.push({
      kind,
      pod: obj.metadata.name,
      namespace: ns,
      ip,
      port,
      version: obj.metadata.labels?.version ?? 'v1',
      ...(upstream ? { upstream } : {}),
    });
  }
  return {
    nodes: [...nodes.values()]
      .map((n) => ({ name: n.name, address: n.address }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    pods,
    apps,
    waypoints,
  };
}
