/**
 * Fault injection from VirtualService `http[].fault`, decided per request with an injected random
 * source. As in Envoy's fault filter, the delay is decided first and the abort second, each with
 * its own draw; the flags are DI (delay injected) and FI (aborted).
 *
 * The VirtualService http entries of a Service are tried in order and the first one whose match
 * fits the request decides (that is how Envoy picks the route carrying the fault): if it has no
 * fault, no fault is injected even if a later entry would match with one.
 */
import type { HeaderMap } from './http-types.js';
import { headerValue } from './http-types.js';
import type { Random } from './random.js';
import type { ResponseFlag } from './response.js';

export type VsStringMatch =
  | { kind: 'exact'; value: string }
  | { kind: 'prefix'; value: string }
  | { kind: 'regex'; value: string; re: RegExp }
  /** Header given with an empty match object: the header must be present. */
  | { kind: 'present' };

export interface VsMatch {
  uri: VsStringMatch | undefined;
  ignoreUriCase: boolean;
  method: VsStringMatch | undefined;
  authority: VsStringMatch | undefined;
  /** Lower-case names. */
  headers: ReadonlyArray<{ name: string; match: VsStringMatch }>;
  withoutHeaders: ReadonlyArray<{ name: string; match: VsStringMatch }>;
  queryParams: ReadonlyArray<{ name: string; match: VsStringMatch }>;
  port: number | undefined;
  sourceNamespace: string | undefined;
}

export interface FaultInjection {
  delay: { fixedDelayMs: number; percent: number } | undefined;
  abort: { httpStatus: number; grpcStatus: number | undefined; percent: number } | undefined;
}

export interface FaultRoute {
  /** OR of matches; empty matches every request. */
  matches: readonly VsMatch[];
  fault: FaultInjection | undefined;
  source: { namespace: string; name: string; index: number };
}

export interface FaultRequest {
  method: string;
  /** Normalized path without the query. */
  path: string;
  query: ReadonlyArray<readonly [string, string]>;
  host: string;
  headers: HeaderMap;
  port: number;
  sourceNamespace: string | undefined;
}

export interface FaultDecision {
  delayMs: number;
  abort: { httpStatus: number; grpcStatus: number | undefined } | undefined;
  responseFlags: ResponseFlag[];
}

export function matchesVsString(m: VsStringMatch, value: string | undefined, ignoreCase = false): boolean {
  if (value === undefined) return false;
  const v = ignoreCase ? value.toLowerCase() : value;
  switch (m.kind) {
    case 'present':
      return true;
    case 'exact':
      return v === (ignoreCase ? m.value.toLowerCase() : m.value);
    case 'prefix':
      return v.startsWith(ignoreCase ? m.value.toLowerCase() : m.value);
    case 'regex':
      return m.re.test(value);
  }
}

export function matchesVs(m: VsMatch, req: FaultRequest): boolean {
  if (m.uri && !matchesVsString(m.uri, req.path, m.ignoreUriCase)) return false;
  if (m.method && !matchesVsString(m.method, req.method)) return false;
  if (m.authority && !matchesVsString(m.authority, req.host)) return false;
  if (m.port !== undefined && m.port !== req.port) return false;
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== req.sourceNamespace) return false;
  for (const h of m.headers) if (!matchesVsString(h.match, headerValue(req.headers, h.name))) return false;
  for (const h of m.withoutHeaders)
    if (matchesVsString(h.match, headerValue(req.headers, h.name))) return false;
  for (const q of m.queryParams) {
    const first = req.query.find(([n]) => n === q.name);
    if (!matchesVsString(q.match, first?.[1])) return false;
  }
  return true;
}

function chance(random: Random, percent: number): boolean {
  if (percent <= 0) return false;
  if (percent >= 100) return true;
  return random() * 100 < percent;
}

/** Undefined when no fault applies to this request. */
export function buildFaultDecision(
  routes: readonly FaultRoute[],
  req: FaultRequest,
  random: Random,
): FaultDecision | undefined {
  const route = routes.find((r) => r.matches.length === 0 || r.matches.some((m) => matchesVs(m, req)));
  const fault = route?.fault;
  if (!fault) return undefined;
  const flags: ResponseFlag[] = [];
  let delayMs = 0;
  if (fault.delay && chance(random, fault.delay.percent)) {
    delayMs = fault.delay.fixedDelayMs;
    flags.push('DI');
  }
  let abort: FaultDecision['abort'];
  if (fault.abort && chance(random, fault.abort.percent)) {
    abort = { httpStatus: fault.abort.httpStatus, grpcStatus: fault.abort.grpcStatus };
    flags.push('FI');
  }
  return flags.length === 0 ? undefined : { delayMs, abort, responseFlags: flags };
}
