/**
 * Which waypoint instance this process is: the Gateway NAME in NS must be an istio-waypoint
 * Gateway, and its instances are the Pods labelled `gateway.networking.k8s.io/gateway-name: NAME`
 * in NS; `--pod` picks one when there are several. The instance's identity is its service
 * account's SPIFFE id, and it listens on its pod IP. A pure function of the config, so that every
 * failure is tested and says what to fix.
 */
import type { LocatedObject } from '../config-source/index.js';
import { GATEWAY_NAME_LABEL, WAYPOINT_CLASS } from '../config-source/index.js';
import type { MeshState, Workload } from '../state/index.js';
import { identityOf } from '../state/index.js';
import type { WaypointSelf } from './inbound.js';

export interface WaypointInstance {
  self: WaypointSelf;
  workload: Workload;
  /** The pod IP: every listener of the waypoint binds here. */
  ip: string;
  /** spiffe://<td>/ns/<ns>/sa/<sa> */
  identity: string;
}

export type InstanceResult =
  { ok: true; instance: WaypointInstance } | { ok: false; reason: string; hint: string };

const GATEWAY_GROUP = 'gateway.networking.k8s.io/';

export function buildWaypointInstance(input: {
  objects: readonly LocatedObject[];
  state: MeshState;
  name: string;
  namespace: string;
  pod: string | undefined;
  clusterDomain: string;
}): InstanceResult {
  const { name, namespace } = input;
  const gateways = input.objects.filter(
    (o) =>
      o.obj.kind === 'Gateway' &&
      o.obj.apiVersion.startsWith(GATEWAY_GROUP) &&
      o.obj.metadata.name === name &&
      (o.obj.metadata.namespace ?? 'default') === namespace,
  );
  const gw = gateways[0];
  if (!gw) {
    return {
      ok: false,
      reason: `no Gateway "${name}" in namespace "${namespace}" in the config`,
      hint: `declare it (apiVersion gateway.networking.k8s.io/v1, gatewayClassName: ${WAYPOINT_CLASS}, listeners: [{name: mesh, port: 15008, protocol: HBONE}]), or pass the --name/--namespace of an existing waypoint`,
    };
  }
  const cls = (gw.obj.spec as { gatewayClassName?: unknown } | undefined)?.gatewayClassName;
  if (cls !== WAYPOINT_CLASS) {
    return {
      ok: false,
      reason: `Gateway ${namespace}/${name} has gatewayClassName ${JSON.stringify(cls ?? null)}, so it is not a waypoint`,
      hint: `set spec.gatewayClassName: ${WAYPOINT_CLASS}, or pass the --name of a waypoint Gateway`,
    };
  }
  const pods = input.objects
    .filter(
      (o) =>
        o.obj.kind === 'Pod' &&
        (o.obj.metadata.namespace ?? 'default') === namespace &&
        o.obj.metadata.labels?.[GATEWAY_NAME_LABEL] === name,
    )
    .map((o) => o.obj.metadata.name)
    .sort();
  if (pods.length === 0) {
    return {
      ok: false,
      reason: `no Pod in namespace "${namespace}" is labelled ${GATEWAY_NAME_LABEL}: ${name}`,
      hint: `declare the waypoint's Pod with that label (spec.serviceAccountName, spec.nodeName, status.podIP)`,
    };
  }
  let podName: string;
  if (input.pod !== undefined) {
    if (!pods.includes(input.pod)) {
      return {
        ok: false,
        reason: `Pod ${namespace}/${input.pod} is not an instance of waypoint ${name} (its instances: ${pods.join(', ')})`,
        hint: `pass --pod with one of them, or label the Pod ${GATEWAY_NAME_LABEL}: ${name}`,
      };
    }
    podName = input.pod;
  } else if (pods.length > 1) {
    return {
      ok: false,
      reason: `waypoint ${namespace}/${name} has ${pods.length} instance Pods (${pods.join(', ')}); which one is this process?`,
      hint: 'pass --pod <name>',
    };
  } else {
    podName = pods[0] ?? '';
  }
  const workload = input.state.workloads.find(
    (w) => w.namespace === namespace && w.name === podName && w.nativeTunnel,
  );
  const ip = workload?.workloadIps[0];
  if (!workload || ip === undefined) {
    return {
      ok: false,
      reason: `Pod ${namespace}/${podName} has no IP in the config, so the waypoint has nowhere to listen`,
      hint: 'set status.podIP on the Pod (in local mode, a loopback address such as 127.0.1.10)',
    };
  }
  return {
    ok: true,
    instance: {
      self: { name, namespace, hostname: `${name}.${namespace}.svc.${input.clusterDomain}` },
      workload,
      ip,
      identity: identityOf(workload),
    },
  };
}
