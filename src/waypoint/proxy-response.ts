/**
 * Writing responses downstream: a synthetic (local) response, or an upstream response streamed
 * through with backpressure (the upstream body is paused while the client is not reading), its
 * trailers forwarded at the end.
 *
 * Invariant: `proxyToDownstream` settles exactly once, when the response ended, the upstream
 * broke off (the client's stream is reset: a truncated body must not look complete), the client
 * went away (the upstream is cancelled), or the caller's deadline fired.
 */
import { applyHeaderModifier } from './filters.js';
import type { DownstreamExchange } from './downstream.js';
import type { HeaderMap } from './http-types.js';
import type { ResponseFlag, SyntheticResponse } from './response.js';
import type { HeaderModifier } from './route-types.js';
import type { UpstreamResponse } from './upstream-types.js';

/** Send a local reply. Returns the body bytes written. */
export function sendSyntheticResponse(ex: DownstreamExchange, r: SyntheticResponse): number {
  if (ex.aborted || ex.responseStarted) return 0;
  const body = Buffer.from(r.body, 'utf8');
  const headers: HeaderMap = { ...r.headers };
  if (body.length > 0 || ex.protocol === 'http1') headers['content-length'] = String(body.length);
  ex.respond(r.status, headers, body.length === 0);
  if (body.length > 0) {
    ex.sink.write(body);
    ex.end();
  }
  return body.length;
}

export interface StreamedResponse {
  bytes: number;
  /** Why the response did not complete: UC upstream broke off, DC client went away, UT deadline. */
  flag: ResponseFlag | undefined;
  grpcStatus: number | undefined;
}

export interface ResponseStream {
  done: Promise<StreamedResponse>;
  /** The route deadline passed: cut the response off (flag UT). */
  expire(): void;
}

function grpcStatusOf(headers: HeaderMap | undefined): number | undefined {
  const g = headers?.['grpc-status'];
  return typeof g === 'string' && /^\d+$/.test(g) ? Number(g) : undefined;
}

/** Stream `resp` to the client, applying the route's response header modifiers first. */
export function proxyToDownstream(
  ex: DownstreamExchange,
  resp: UpstreamResponse,
  modifiers: readonly HeaderModifier[],
): ResponseStream {
  let headers = resp.headers;
  for (const m of modifiers) headers = applyHeaderModifier(headers, m);
  let expire: () => void = () => undefined;
  const done = new Promise<StreamedResponse>((resolve) => {
    let bytes = 0;
    let settled = false;
    const src = resp.body;
    const sink = ex.sink;
    const finish = (flag: ResponseFlag | undefined, grpcStatus: number | undefined): void => {
      if (settled) return;
      settled = true;
      src.off('data', onData);
      sink.off('drain', onDrain);
      resolve({ bytes, flag, grpcStatus });
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (!sink.write(chunk)) src.pause();
    };
    const onDrain = (): void => {
      src.resume();
    };
    const cutOff = (flag: ResponseFlag): void => {
      if (settled) return;
      resp.abort();
      ex.reset();
      finish(flag, resp.grpcStatus);
    };
    expire = () => cutOff('UT');
    if (resp.endStream) {
      // Keep a trailers-only response (gRPC's error form) trailers-only.
      ex.respond(resp.status, headers, true);
      resp.discard();
      finish(undefined, resp.grpcStatus);
      return;
    }
    ex.respond(resp.status, headers, false);
    src.on('data', onData);
    sink.on('drain', onDrain);
    src.once('end', () => {
      const trailers = resp.trailers();
      ex.end(trailers);
      finish(undefined, grpcStatusOf(trailers) ?? resp.grpcStatus);
    });
    src.once('close', () => {
      // A close without 'end' is the upstream breaking off mid-body.
      if (!src.readableEnded) cutOff('UC');
    });
    src.on('error', () => undefined);
    ex.onClose(() => {
      if (!settled && ex.aborted) {
        resp.abort();
        finish('DC', resp.grpcStatus);
      }
    });
  });
  return { done, expire: () => expire() };
}
