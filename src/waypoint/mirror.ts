/**
 * Request mirroring (HTTPRoute RequestMirror), as Envoy's request mirror policy behaves: each
 * sampled request is copied to a least-request endpoint of the mirror Service with `-shadow`
 * appended to its host, fire-and-forget. The copy's answer is read and discarded; it never delays,
 * changes or fails the real request.
 *
 * Invariants:
 * - the copy gets the request body as the real request reads it (a passive tee on the client's
 *   body): the client is never read faster for the mirror's sake, and a mirror that falls more
 *   than MIRROR_BUFFER_BYTES behind is cut off rather than buffered;
 * - each copy holds its endpoint's active-request count until it ends, and ends within the route
 *   timeout (Envoy's default 15 s when the route sets none), so a stuck mirror backend cannot
 *   pile up copies;
 * - no retries, no outlier bookkeeping, no access-log line or metric of its own (Envoy logs and
 *   reports the real request only).
 */
import { PassThrough, type Readable } from 'node:stream';
import { chooseBackendEndpoint, findBackendCluster } from './backend-endpoints.js';
import type { BackendService } from './request-plan.js';
import { RequestBody } from './request-body.js';
import type { UpstreamClusterSet } from './upstream-cluster.js';
import type { UpstreamConnections } from './upstream-pool.js';
import type { UpstreamRequestSpec } from './upstream-types.js';
import type { WaypointView } from './view.js';

/** Envoy's per-request buffer limit (1 MiB) bounds how far a mirror may lag the real request. */
export const MIRROR_BUFFER_BYTES = 1024 * 1024;
/** Envoy's default route timeout, applied to a copy when the route sets none. */
export const MIRROR_DEFAULT_TIMEOUT_MS = 15_000;

export interface MirrorDeps {
  clusters: UpstreamClusterSet;
  connections: UpstreamConnections;
}

/** `reviews.shop:9080` → `reviews.shop-shadow:9080` (Envoy's shadow host). */
export function buildShadowHost(host: string): string {
  const m = /^(.*?)(:\d+)?$/.exec(host);
  const name = m?.[1] ?? host;
  return `${name}-shadow${m?.[2] ?? ''}`;
}

export function proxyToMirrors(
  deps: MirrorDeps,
  view: WaypointView,
  mirrors: readonly BackendService[],
  request: UpstreamRequestSpec,
  body: Readable,
  timeoutMs: number | undefined,
): void {
  for (const m of mirrors) startMirror(deps, view, m, request, body, timeoutMs ?? MIRROR_DEFAULT_TIMEOUT_MS);
}

function startMirror(
  deps: MirrorDeps,
  view: WaypointView,
  mirror: BackendService,
  request: UpstreamRequestSpec,
  body: Readable,
  timeoutMs: number,
): void {
  const backend = findBackendCluster(deps.clusters, view, mirror);
  const { cluster } = backend;
  const endpoint = chooseBackendEndpoint(backend);
  if (!endpoint) return;
  const copy = new PassThrough();
  const onData = (chunk: Buffer): void => {
    if (copy.writableLength + copy.readableLength > MIRROR_BUFFER_BYTES) {
      stopTee();
      copy.destroy(new Error('the mirror fell more than 1 MiB behind the request'));
    } else copy.write(chunk);
  };
  const onEnd = (): void => {
    stopTee();
    copy.end();
  };
  const onGone = (): void => {
    stopTee();
    if (!copy.writableEnded) copy.destroy(new Error('the client went away'));
  };
  const stopTee = (): void => {
    body.off('data', onData);
    body.off('end', onEnd);
    body.off('close', onGone);
  };
  if (body.readableEnded) copy.end();
  else {
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('close', onGone);
  }
  const done = cluster.startRequest(endpoint.key);
  const attempt = deps.connections.send(
    endpoint,
    { ...request, host: buildShadowHost(request.host) },
    new RequestBody(copy, 0),
    cluster.policy,
  );
  const timer = setTimeout(
    () => attempt.abort('timeout', `mirror: no answer within ${timeoutMs} ms`),
    timeoutMs,
  );
  void attempt.result.then((r) => {
    clearTimeout(timer);
    if (r.ok) r.response.discard();
    else {
      stopTee();
      copy.destroy();
    }
    done();
  });
}
