/**
 * The compiled form of HTTPRoute rules attached to Services (GAMMA mesh routes), as the route
 * selector and the filters consume them. Everything here is immutable data built once per config.
 */
import type { RetryPolicy } from './retry-policy.js';

export type PathMatch =
  | { kind: 'Exact'; value: string }
  /** `value` is normalized: no trailing '/' except for the root. */
  | { kind: 'PathPrefix'; value: string }
  | { kind: 'RegularExpression'; value: string; re: RegExp };

export type ValueMatch =
  { kind: 'Exact'; value: string } | { kind: 'RegularExpression'; value: string; re: RegExp };

export interface HeaderMatch {
  /** Lower-case. */
  name: string;
  match: ValueMatch;
}

export interface QueryParamMatch {
  /** Exact, case-sensitive. */
  name: string;
  match: ValueMatch;
}

export interface RouteMatch {
  path: PathMatch;
  headers: readonly HeaderMatch[];
  queryParams: readonly QueryParamMatch[];
  method: string | undefined;
}

export interface HeaderModifier {
  set: ReadonlyArray<{ name: string; value: string }>;
  add: ReadonlyArray<{ name: string; value: string }>;
  /** Lower-case names. */
  remove: readonly string[];
}

export type PathModifier =
  { kind: 'ReplaceFullPath'; value: string } | { kind: 'ReplacePrefixMatch'; value: string };

export type RedirectStatus = 301 | 302 | 303 | 307 | 308;

export interface RequestRedirect {
  scheme: 'http' | 'https' | undefined;
  hostname: string | undefined;
  port: number | undefined;
  path: PathModifier | undefined;
  statusCode: RedirectStatus;
}

export interface UrlRewrite {
  hostname: string | undefined;
  path: PathModifier | undefined;
}

export type RouteFilter =
  | { type: 'RequestHeaderModifier'; modifier: HeaderModifier }
  | { type: 'ResponseHeaderModifier'; modifier: HeaderModifier }
  | { type: 'RequestRedirect'; redirect: RequestRedirect }
  | { type: 'URLRewrite'; rewrite: UrlRewrite }
  | { type: 'RequestMirror'; mirror: RequestMirror };

/** A copy of each matched request, sent fire-and-forget; its answer is discarded (Envoy shadow). */
export interface RequestMirror {
  target: BackendTarget;
  /** Share of requests mirrored, 0 to 100 (Gateway API percent or fraction; 100 when unset). */
  percent: number;
}

export type BackendTarget =
  | { kind: 'Service'; namespace: string; name: string; hostname: string; port: number }
  /** A backend Istio would drop (unknown kind, missing Service): its share of requests gets 500. */
  | { kind: 'Invalid'; reason: string };

export interface WeightedBackend {
  target: BackendTarget;
  /** > 0: backends with weight 0 are dropped at compile time. */
  weight: number;
  requestHeaders: HeaderModifier | undefined;
  responseHeaders: HeaderModifier | undefined;
}

export interface RouteRef {
  namespace: string;
  name: string;
  /** Milliseconds since the epoch; +Infinity when the object has no creationTimestamp. */
  createdAt: number;
}

export interface RouteTimeouts {
  /** Whole transaction including retries (Envoy route timeout); undefined = none. */
  requestMs: number | undefined;
  /** One attempt (Envoy per_try_timeout); undefined = none. */
  perTryMs: number | undefined;
}

export interface RouteRule {
  route: RouteRef;
  ruleIndex: number;
  ruleName: string | undefined;
  matches: readonly RouteMatch[];
  filters: readonly RouteFilter[];
  backends: readonly WeightedBackend[];
  /** Answer directly (Istio: no backend with weight > 0 and no redirect → 500). */
  directResponse: { status: number } | undefined;
  /** The rule's retry policy, or undefined to use the waypoint default (see buildRetryPolicy). */
  retry: RetryPolicy | undefined;
  timeouts: RouteTimeouts;
}

/** One (rule, match) pair attached to a Service, pre-sorted by Gateway API precedence. */
export interface RouteEntry {
  /** Service port from the parentRef, or undefined for all ports. */
  port: number | undefined;
  rule: RouteRule;
  matchIndex: number;
  match: RouteMatch;
}
