/**
 * security.istio.io PeerAuthentication → L4 DENY policies, shaped as istiod shapes them for
 * ztunnel:
 * - Effective mode per workload with Istio precedence: the oldest selector policy of the pod's
 *   namespace that selects it, else the oldest namespace-wide policy, else the oldest mesh-wide
 *   policy (root namespace, no selector); UNSET inherits from the next level. "Oldest" is by
 *   metadata.creationTimestamp, then by order in the file.
 * - Effective STRICT → the workload references `<root>/istio_converted_static_strict`, a DENY of
 *   traffic without a peer identity (notPrincipals: [presence]). PERMISSIVE and DISABLE (HBONE
 *   is always mTLS) deny nothing.
 * - portLevelMtls (only on selector policies, as Istio requires) is implemented as istiod does:
 *   a per-policy WorkloadSelector DENY `converted_peer_authentication_<name>` that the selected
 *   workloads reference instead of the static policy. Under a STRICT parent it denies identity-
 *   less traffic except on the PERMISSIVE/DISABLE ports; under a non-STRICT parent it denies
 *   identity-less traffic on the STRICT ports only.
 *   One deliberate difference: the parent mode of a selector policy is computed with plain
 *   inheritance (its own mode, else the namespace's, else the mesh's). istiod's converter
 *   mixes these levels in a way that, for some combinations (e.g. mesh STRICT + namespace
 *   UNSET + a PERMISSIVE port), drops STRICT for the whole workload; we never weaken more than
 *   the ports the user listed.
 */
import {
  STATIC_STRICT_POLICY_NAME,
  rbacMatch,
  type Authorization,
  type AuthorizationRule,
} from '../state/index.js';
import type { Compilation, PodInfo } from './compile-types.js';
import { selects, type ObjectContext } from './fields.js';

type Mode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';
const MODES: readonly Mode[] = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'];

export interface PeerAuthn {
  ctx: ObjectContext;
  name: string;
  namespace: string;
  /** undefined or empty = namespace-wide (mesh-wide in the root namespace). */
  selector: Record<string, string> | undefined;
  mode: Mode;
  portLevel: Array<[number, Mode]>;
  /** Sort key: creation time (ms, Infinity if absent), then file order. */
  created: number;
  order: number;
}

const STRICT_MATCH = rbacMatch({ notPrincipals: [{ kind: 'presence' }] });

function readMode(ctx: ObjectContext, v: unknown, field: string): Mode {
  const m = ctx.mapping(v, field);
  if (!m) return 'UNSET';
  ctx.onlyKeys(m, field, ['mode']);
  const mode = (ctx.str(m.mode, `${field}.mode`) ?? 'UNSET') as Mode;
  if (!MODES.includes(mode))
    ctx.fail(`${field}.mode`, `unknown mode "${String(mode)}"`, `use one of ${MODES.join(', ')}`);
  return mode;
}

export function parsePeerAuthentication(ctx: ObjectContext, order: number): PeerAuthn {
  const spec = ctx.spec;
  ctx.onlyKeys(spec, 'spec', ['selector', 'mtls', 'portLevelMtls']);
  const selector = ctx.matchLabels(spec.selector, 'spec.selector');
  const hasSelector = selector !== undefined && Object.keys(selector).length > 0;
  const portLevel: Array<[number, Mode]> = [];
  const plm = ctx.mapping(spec.portLevelMtls, 'spec.portLevelMtls') ?? {};
  for (const [port, v] of Object.entries(plm)) {
    const field = `spec.portLevelMtls.${port}`;
    portLevel.push([ctx.portString(port, field), readMode(ctx, v, field)]);
  }
  if (portLevel.length > 0 && !hasSelector) {
    ctx.fail(
      'spec.portLevelMtls',
      'requires a workload selector',
      'add spec.selector.matchLabels, or move the port settings to a selector policy',
    );
  }
  const ts = ctx.lo.obj.metadata.creationTimestamp;
  const created = ts === undefined ? Number.POSITIVE_INFINITY : Date.parse(ts);
  if (Number.isNaN(created))
    ctx.fail(
      'metadata.creationTimestamp',
      `"${ts}" is not an RFC 3339 time`,
      'write e.g. 2024-01-02T03:04:05Z',
    );
  return {
    ctx,
    name: ctx.name,
    namespace: ctx.namespace,
    selector: hasSelector ? selector : undefined,
    mode: readMode(ctx, spec.mtls, 'spec.mtls'),
    portLevel: portLevel.sort((a, b) => a[0] - b[0]),
    created,
    order,
  };
}

const isStrict = (m: Mode) => m === 'STRICT';

export function convertedPolicyName(paName: string): string {
  return `converted_peer_authentication_${paName}`;
}

export function applyPeerAuthentications(c: Compilation, all: readonly PeerAuthn[]): void {
  if (all.length === 0) return;
  const root = c.opts.rootNamespace;
  const sorted = [...all].sort((a, b) => a.created - b.created || a.order - b.order);
  const mesh = sorted.find((p) => p.namespace === root && !p.selector);
  const nsLevel = (ns: string) => sorted.find((p) => p.namespace === ns && ns !== root && !p.selector);

  /** Effective mode of a namespace, before any selector policy. */
  const inheritedStrict = (ns: string): boolean => {
    const n = nsLevel(ns);
    if (n && n.mode !== 'UNSET') return isStrict(n.mode);
    return mesh !== undefined && isStrict(mesh.mode);
  };
  /** Effective workload-level mode of a selector policy, ignoring its port exceptions. */
  const parentStrict = (pa: PeerAuthn): boolean =>
    pa.mode === 'UNSET' ? inheritedStrict(pa.namespace) : isStrict(pa.mode);
  /** Does this policy's port list change anything relative to its parent mode? */
  const hasPortExceptions = (pa: PeerAuthn): boolean => {
    const strict = parentStrict(pa);
    return pa.portLevel.some(([, m]) => m !== 'UNSET' && isStrict(m) !== strict);
  };

  const staticKey = `${root}/${STATIC_STRICT_POLICY_NAME}`;
  let staticUsed = false;
  const convertedUsed = new Set<PeerAuthn>();
  const refer = (pod: PodInfo, key: string) => pod.policies.push(key);

  for (const pod of c.pods) {
    const workloadPa =
      pod.namespace === root
        ? undefined
        : sorted.find(
            (p) =>
              p.namespace === pod.namespace && p.selector !== undefined && selects(p.selector, pod.labels),
          );
    if (!workloadPa) {
      if (inheritedStrict(pod.namespace)) {
        refer(pod, staticKey);
        staticUsed = true;
      }
      continue;
    }
    if (hasPortExceptions(workloadPa)) {
      convertedUsed.add(workloadPa);
      refer(pod, `${workloadPa.namespace}/${convertedPolicyName(workloadPa.name)}`);
    } else if (parentStrict(workloadPa)) {
      refer(pod, staticKey);
      staticUsed = true;
    }
  }

  if (staticUsed) {
    c.policies.push({
      name: STATIC_STRICT_POLICY_NAME,
      namespace: root,
      scope: 'WorkloadSelector',
      action: 'Deny',
      rules: [{ clauses: [{ matches: [STRICT_MATCH] }] }],
      dryRun: false,
    });
  }
  for (const pa of sorted) {
    if (convertedUsed.has(pa)) c.policies.push(convertPortLevel(pa, parentStrict(pa)));
  }
}

function convertPortLevel(pa: PeerAuthn, strictParent: boolean): Authorization {
  let rules: AuthorizationRule[];
  if (strictParent) {
    // Deny identity-less traffic unless it goes to one of the non-STRICT ports (clauses AND).
    const exempt = pa.portLevel.filter(([, m]) => m === 'PERMISSIVE' || m === 'DISABLE').map(([p]) => p);
    rules = [
      {
        clauses: [
          { matches: [STRICT_MATCH] },
          ...exempt.map((p) => ({ matches: [rbacMatch({ notDestinationPorts: [p] })] })),
        ],
      },
    ];
  } else {
    // Deny identity-less traffic on each STRICT port (rules OR).
    rules = pa.portLevel
      .filter(([, m]) => isStrict(m))
      .map(([p]) => ({
        clauses: [{ matches: [rbacMatch({ notPrincipals: [{ kind: 'presence' }], destinationPorts: [p] })] }],
      }));
  }
  return {
    name: convertedPolicyName(pa.name),
    namespace: pa.namespace,
    scope: 'WorkloadSelector',
    action: 'Deny',
    rules,
    dryRun: false,
  };
}
