/**
 * Request paths: splitting off the query, Istio's default path normalization, query parsing, and
 * the element-wise prefix logic that Gateway API PathPrefix matching and ReplacePrefixMatch share.
 */

export interface SplitPath {
  path: string;
  /** The query string without the leading '?', or undefined when there is none. */
  query: string | undefined;
}

export function splitPathAndQuery(target: string): SplitPath {
  const q = target.indexOf('?');
  return q < 0
    ? { path: target, query: undefined }
    : { path: target.slice(0, q), query: target.slice(q + 1) };
}

export function joinPathAndQuery(path: string, query: string | undefined): string {
  return query === undefined ? path : `${path}?${query}`;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * Istio's default `pathNormalization: BASE` (Envoy `normalize_path`): percent-encoded unreserved
 * characters are decoded, other escapes get upper-case hex, and `.`/`..` segments are resolved
 * (RFC 3986 §5.2.4), clamped at the root. `%2F` stays encoded and slashes are not merged, as in
 * BASE. A target that is not origin-form (does not start with '/'), or carries a fragment or a
 * malformed escape, is rejected: Envoy answers such requests with 400.
 */
export function normalizeRequestPath(
  target: string,
): { ok: true; path: string } | { ok: false; reason: string } {
  const { path, query } = splitPathAndQuery(target);
  if (!path.startsWith('/')) return { ok: false, reason: `request path "${target}" is not origin-form` };
  if (path.includes('#')) return { ok: false, reason: 'request path contains a fragment' };
  let decoded = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i] ?? '';
    if (c !== '%') {
      decoded += c;
      continue;
    }
    const hex = path.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return { ok: false, reason: 'request path has a malformed %-escape' };
    const ch = String.fromCharCode(parseInt(hex, 16));
    decoded += UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
    i += 2;
  }
  const out: string[] = [];
  const segments = decoded.split('/').slice(1);
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else {
      out.push(seg);
    }
  });
  return { ok: true, path: joinPathAndQuery('/' + out.join('/'), query) };
}

/** Query parameters in order; names and values are percent-decoded ('+' is left alone). */
export function parseQuery(query: string | undefined): Array<[string, string]> {
  if (!query) return [];
  const out: Array<[string, string]> = [];
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    out.push([safeDecode(name), safeDecode(value)]);
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * PathPrefix as Gateway API defines it: element-wise on '/'-separated segments, with a trailing
 * '/' on the prefix ignored. `/abc` matches `/abc`, `/abc/` and `/abc/def`, not `/abcd`.
 * `prefix` must already be normalized (see normalizePrefix).
 */
export function pathHasPrefix(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path[prefix.length] === '/';
}

/** Trailing '/' is ignored on a PathPrefix value, except for the root itself. */
export function normalizePrefix(prefix: string): string {
  if (prefix === '/') return prefix;
  const trimmed = prefix.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/**
 * ReplacePrefixMatch, element-wise: `/foo/bar` with prefix `/foo` → `/xyz/bar`; `/foo` with
 * replacement `` → `/`; `/foo/` with `/xyz` → `/xyz/`. The caller guarantees that the path
 * matched `prefix` (normalized).
 */
export function replacePathPrefix(path: string, prefix: string, replacement: string): string {
  const rest = prefix === '/' ? (path === '/' ? '' : path) : path.slice(prefix.length);
  const repl = replacement.replace(/\/+$/, '');
  const out = repl + rest;
  if (out === '') return '/';
  return out.startsWith('/') ? out : '/' + out;
}
