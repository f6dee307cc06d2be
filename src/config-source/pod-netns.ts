/**
 * Which network namespace a pod lives in, for capture mode. In Kubernetes, istio-cni hands the
 * pod's namespace to ztunnel (over ZDS); in a local config file the Pod says it itself, with an
 * annotation:
 *
 *   metadata:
 *     annotations:
 *       meshd.io/netns: shop-frontend            # a name as `ip netns list` shows it
 *       meshd.io/netns: /proc/4242/ns/net        # or an absolute path to a netns file
 *
 * A name resolves to /var/run/netns/<name> (where `ip netns add` puts it). Local mode ignores the
 * annotation. A malformed value fails config validation like any other field.
 */
import { ConfigValidationError, describeObject, type LocatedObject } from './kube.js';
import type { ObjectContext } from './fields.js';

export const NETNS_ANNOTATION = 'meshd.io/netns';
/** Where iproute2 keeps named network namespaces. */
export const NETNS_DIR = '/var/run/netns';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The namespace path an annotation value names, or why it cannot be one. */
export function parseNetnsAnnotation(
  value: unknown,
): { ok: true; path: string } | { ok: false; problem: string } {
  if (typeof value !== 'string' || value === '')
    return { ok: false, problem: `must be a non-empty string, got ${JSON.stringify(value)}` };
  if (value.startsWith('/')) {
    if (value.includes('\0') || value.split('/').includes('..'))
      return { ok: false, problem: `"${value}" is not a plain absolute path` };
    return { ok: true, path: value };
  }
  if (!NAME.test(value) || value.length > 255)
    return { ok: false, problem: `"${value}" is neither a network namespace name nor an absolute path` };
  return { ok: true, path: `${NETNS_DIR}/${value}` };
}

const FIX =
  'use the name of a network namespace as `ip netns list` shows it, or an absolute path such as /var/run/netns/<name> or /proc/<pid>/ns/net';

/** Validate a Pod's annotation while compiling (the config is rejected if it is malformed). */
export function checkPodNetns(ctx: ObjectContext): void {
  const annotations = ctx.annotations;
  if (!(NETNS_ANNOTATION in annotations)) return;
  const parsed = parseNetnsAnnotation(annotations[NETNS_ANNOTATION]);
  if (!parsed.ok) ctx.fail(`metadata.annotations["${NETNS_ANNOTATION}"]`, parsed.problem, FIX);
}

/** "namespace/name" of every Pod that declares its network namespace → the namespace's path. */
export function buildPodNetnsIndex(objects: readonly LocatedObject[]): ReadonlyMap<string, string> {
  const index = new Map<string, string>();
  for (const lo of objects) {
    if (lo.obj.kind !== 'Pod') continue;
    const value = lo.obj.metadata.annotations?.[NETNS_ANNOTATION];
    if (value === undefined) continue;
    const parsed = parseNetnsAnnotation(value);
    if (!parsed.ok) {
      // Compilation rejects such a config; reaching this is a caller bug.
      throw new ConfigValidationError(
        lo.loc,
        describeObject(lo.obj),
        `metadata.annotations["${NETNS_ANNOTATION}"]`,
        parsed.problem,
        FIX,
      );
    }
    index.set(`${lo.obj.metadata.namespace ?? 'default'}/${lo.obj.metadata.name}`, parsed.path);
  }
  return index;
}
