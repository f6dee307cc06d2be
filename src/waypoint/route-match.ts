/**
 * Whether one HTTPRoute match (path AND method AND every header AND every query parameter) fits
 * a request. Path matching sees the normalized path without its query string, as Envoy does.
 */
import type { HeaderMap } from './http-types.js';
import { headerValue } from './http-types.js';
import { pathHasPrefix } from './path.js';
import type { PathMatch, RouteMatch, ValueMatch } from './route-types.js';

/** What route matching needs from a request, prepared once per request. */
export interface MatchableRequest {
  method: string;
  /** Normalized path, without the query string. */
  path: string;
  /** Query parameters in order (decoded). */
  query: ReadonlyArray<readonly [string, string]>;
  headers: HeaderMap;
}

export function matchesPath(m: PathMatch, path: string): boolean {
  switch (m.kind) {
    case 'Exact':
      return path === m.value;
    case 'PathPrefix':
      return pathHasPrefix(path, m.value);
    case 'RegularExpression':
      return m.re.test(path);
  }
}

export function matchesValue(m: ValueMatch, value: string): boolean {
  return m.kind === 'Exact' ? value === m.value : m.re.test(value);
}

export function matchesRoute(m: RouteMatch, req: MatchableRequest): boolean {
  if (!matchesPath(m.path, req.path)) return false;
  if (m.method !== undefined && m.method !== req.method) return false;
  for (const h of m.headers) {
    const v = headerValue(req.headers, h.name);
    if (v === undefined || !matchesValue(h.match, v)) return false;
  }
  for (const q of m.queryParams) {
    // Repeated parameters: the first value counts (Gateway API recommendation).
    const first = req.query.find(([name]) => name === q.name);
    if (first === undefined || !matchesValue(q.match, first[1])) return false;
  }
  return true;
}
