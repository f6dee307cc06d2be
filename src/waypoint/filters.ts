/**
 * HTTPRoute filters as pure functions: header modifiers, RequestRedirect (the Location header)
 * and URLRewrite. Nothing here mutates its input.
 */
import type { HeaderMap } from './http-types.js';
import { joinPathAndQuery, normalizePrefix, replacePathPrefix, splitPathAndQuery } from './path.js';
import type { HeaderModifier, PathMatch, PathModifier, RequestRedirect, UrlRewrite } from './route-types.js';

/**
 * Applies a header modifier: `remove` deletes by name, `set` replaces every value, `add` appends
 * a value after the existing ones (a repeated header; on the wire `foo` + add `bar` reads as
 * `foo,bar`). Names are compared case-insensitively (the map's names are lower-case).
 */
export function applyHeaderModifier(headers: HeaderMap, mod: HeaderModifier): HeaderMap {
  const out: HeaderMap = { ...headers };
  for (const name of mod.remove) delete out[name.toLowerCase()];
  for (const { name, value } of mod.set) out[name.toLowerCase()] = value;
  for (const { name, value } of mod.add) {
    const key = name.toLowerCase();
    const existing = out[key];
    if (existing === undefined) out[key] = value;
    else out[key] = typeof existing === 'string' ? [existing, value] : [...existing, value];
  }
  return out;
}

/** Splits `host[:port]` (also `[v6]:port`). */
export function splitHostPort(host: string): { hostname: string; port: number | undefined } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  if (!m) return { hostname: host, port: undefined };
  return { hostname: m[1] ?? host, port: m[2] !== undefined ? Number(m[2]) : undefined };
}

/** Path after a path modifier; `matched` is the rule match that selected the route. */
export function applyPathModifier(path: string, mod: PathModifier, matched: PathMatch | undefined): string {
  if (mod.kind === 'ReplaceFullPath') return mod.value;
  // Compile-time validation guarantees a PathPrefix match whenever ReplacePrefixMatch is used.
  const prefix = matched?.kind === 'PathPrefix' ? matched.value : '/';
  return replacePathPrefix(path, normalizePrefix(prefix), mod.value);
}

export interface RedirectInput {
  /** The request target (path and query) after normalization. */
  path: string;
  host: string;
  scheme: 'http' | 'https';
  /** The service port the client addressed (the "listener port" of a mesh route). */
  servicePort: number;
  match: PathMatch | undefined;
}

/**
 * Location for a RequestRedirect, per Gateway API: scheme and hostname default to the request's;
 * the port is the filter's, else the well-known port of a scheme the filter sets, else the port
 * the request used (its Host port, or the Service port when Host has none); the port is omitted
 * for http:80 and https:443. The path is replaced per the modifier; the query string is kept.
 */
export function buildRedirectLocation(r: RequestRedirect, req: RedirectInput): string {
  const scheme = r.scheme ?? req.scheme;
  const reqHost = splitHostPort(req.host);
  const hostname = r.hostname ?? reqHost.hostname;
  let port: number;
  if (r.port !== undefined) port = r.port;
  else if (r.scheme !== undefined) port = r.scheme === 'https' ? 443 : 80;
  else port = reqHost.port ?? req.servicePort;
  const { path, query } = splitPathAndQuery(req.path);
  const newPath = r.path ? applyPathModifier(path, r.path, req.match) : path;
  const defaultPort = (scheme === 'http' && port === 80) || (scheme === 'https' && port === 443);
  return `${scheme}://${hostname}${defaultPort ? '' : `:${port}`}${joinPathAndQuery(newPath, query)}`;
}

/** URLRewrite: hostname replaces Host; the path modifier rewrites the path; the query is kept. */
export function applyUrlRewrite(
  rw: UrlRewrite,
  req: { path: string; host: string },
  match: PathMatch | undefined,
): { path: string; host: string } {
  const { path, query } = splitPathAndQuery(req.path);
  return {
    path: rw.path ? joinPathAndQuery(applyPathModifier(path, rw.path, match), query) : req.path,
    host: rw.hostname ?? req.host,
  };
}
