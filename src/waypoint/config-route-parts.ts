/**
 * HTTPRoute parts shared by rules and backendRefs: matches, header modifiers, redirects and
 * rewrites, validated as Gateway API's CRD schema and CEL rules validate them.
 */
import type { ObjectContext } from './config-reader.js';
import {
  readEnum,
  readInt,
  readList,
  readObject,
  readString,
  requireString,
  warnUnknownFields,
} from './config-reader.js';
import { normalizePrefix } from './path.js';
import { compileFullMatchRegex } from './regex.js';
import type {
  HeaderMatch,
  HeaderModifier,
  PathMatch,
  PathModifier,
  QueryParamMatch,
  RedirectStatus,
  RequestRedirect,
  RouteMatch,
  UrlRewrite,
  ValueMatch,
} from './route-types.js';

export const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
export const PRECISE_HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;
export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
] as const;

/** Gateway API's rules for Exact and PathPrefix values (and path modifier values). */
export function checkPathValue(ctx: ObjectContext, value: string, field: string): void {
  const bad = (why: string): never =>
    ctx.fail(
      field,
      `"${value}" ${why}`,
      'write an absolute path such as /api/v1, without //, /./, /../, %2F or #',
    );
  if (!value.startsWith('/')) bad('must start with "/"');
  for (const s of ['//', '/./', '/../', '%2f', '%2F', '#'])
    if (value.includes(s)) bad(`must not contain "${s}"`);
  if (value.endsWith('/..') || value.endsWith('/.')) bad('must not end with "/." or "/.."');
  if (!PATH_CHARS.test(value)) bad('contains characters that are not allowed in a path');
}

function regexOrFail(ctx: ObjectContext, source: string, field: string): RegExp {
  const r = compileFullMatchRegex(source);
  if (!r.ok)
    ctx.fail(field, `invalid regular expression "${source}": ${r.reason}`, 'write an RE2 expression');
  return r.re;
}

function readPathMatch(ctx: ObjectContext, value: unknown, field: string): PathMatch {
  const o = readObject(ctx, value, field);
  if (!o) return { kind: 'PathPrefix', value: '/' };
  warnUnknownFields(ctx, o, field, ['type', 'value']);
  const type =
    readEnum(ctx, o.type, `${field}.type`, ['Exact', 'PathPrefix', 'RegularExpression']) ?? 'PathPrefix';
  const v = readString(ctx, o.value, `${field}.value`, { maxLength: 1024 }) ?? '/';
  if (type === 'RegularExpression')
    return { kind: type, value: v, re: regexOrFail(ctx, v, `${field}.value`) };
  checkPathValue(ctx, v, `${field}.value`);
  return type === 'Exact' ? { kind: 'Exact', value: v } : { kind: 'PathPrefix', value: normalizePrefix(v) };
}

function readValueMatches<T extends HeaderMatch | QueryParamMatch>(
  ctx: ObjectContext,
  value: unknown,
  field: string,
  lowerCaseNames: boolean,
): T[] {
  const out: T[] = [];
  const seen = new Set<string>();
  readList(ctx, value, field, 16).forEach((item, i) => {
    const f = `${field}[${i}]`;
    const o = readObject(ctx, item, f) ?? {};
    warnUnknownFields(ctx, o, f, ['type', 'name', 'value']);
    const type = readEnum(ctx, o.type, `${f}.type`, ['Exact', 'RegularExpression']) ?? 'Exact';
    const rawName = requireString(ctx, o.name, `${f}.name`, {
      maxLength: 256,
      pattern: HEADER_NAME,
      patternHint: "use letters, digits and !#$%&'*+-.^_`|~ only",
    });
    const name = lowerCaseNames ? rawName.toLowerCase() : rawName;
    const v = requireString(ctx, o.value, `${f}.value`, { maxLength: 4096, nonEmpty: true });
    if (seen.has(name)) {
      ctx.warn(`${f}.name`, `"${rawName}" is listed twice; only the first entry is used (Gateway API)`);
      return;
    }
    seen.add(name);
    const match: ValueMatch =
      type === 'Exact'
        ? { kind: 'Exact', value: v }
        : { kind: 'RegularExpression', value: v, re: regexOrFail(ctx, v, `${f}.value`) };
    out.push({ name, match } as T);
  });
  return out;
}

export function readRouteMatch(ctx: ObjectContext, value: unknown, field: string): RouteMatch {
  const o = readObject(ctx, value, field) ?? {};
  warnUnknownFields(ctx, o, field, ['path', 'headers', 'queryParams', 'method']);
  return {
    path: readPathMatch(ctx, o.path, `${field}.path`),
    headers: readValueMatches<HeaderMatch>(ctx, o.headers, `${field}.headers`, true),
    queryParams: readValueMatches<QueryParamMatch>(ctx, o.queryParams, `${field}.queryParams`, false),
    method: readEnum(ctx, o.method, `${field}.method`, HTTP_METHODS),
  };
}

function isValidHeaderValue(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (!(c === 0x09 || (c >= 0x20 && c !== 0x7f))) return false;
  }
  return true;
}

export function readHeaderModifier(ctx: ObjectContext, value: unknown, field: string): HeaderModifier {
  const o = readObject(ctx, value, field);
  if (!o) ctx.fail(field, 'is required for this filter type', `add ${field} with set, add or remove`);
  warnUnknownFields(ctx, o, field, ['set', 'add', 'remove']);
  const used = new Map<string, string>();
  const claim = (name: string, f: string): void => {
    const key = name.toLowerCase();
    const prev = used.get(key);
    if (prev !== undefined) {
      ctx.fail(
        f,
        `header "${name}" already has an action at ${prev}`,
        'give each header name only one of set, add or remove',
      );
    }
    used.set(key, f);
  };
  const pairs = (list: 'set' | 'add'): Array<{ name: string; value: string }> =>
    readList(ctx, o[list], `${field}.${list}`, 16).map((item, i) => {
      const f = `${field}.${list}[${i}]`;
      const p = readObject(ctx, item, f) ?? {};
      warnUnknownFields(ctx, p, f, ['name', 'value']);
      const name = requireString(ctx, p.name, `${f}.name`, { maxLength: 256, pattern: HEADER_NAME });
      const v = requireString(ctx, p.value, `${f}.value`, { maxLength: 4096 });
      if (!isValidHeaderValue(v))
        ctx.fail(`${f}.value`, 'contains control characters', 'remove newlines and control characters');
      claim(name, `${f}.name`);
      return { name: name.toLowerCase(), value: v };
    });
  const set = pairs('set');
  const add = pairs('add');
  const remove = readList(ctx, o.remove, `${field}.remove`, 16).map((item, i) => {
    const f = `${field}.remove[${i}]`;
    const name = requireString(ctx, item, f, { maxLength: 256, pattern: HEADER_NAME });
    claim(name, f);
    return name.toLowerCase();
  });
  return { set, add, remove };
}

function readPathModifier(ctx: ObjectContext, value: unknown, field: string): PathModifier | undefined {
  const o = readObject(ctx, value, field);
  if (!o) return undefined;
  warnUnknownFields(ctx, o, field, ['type', 'replaceFullPath', 'replacePrefixMatch']);
  const type = readEnum(ctx, o.type, `${field}.type`, ['ReplaceFullPath', 'ReplacePrefixMatch']);
  if (type === undefined)
    ctx.fail(`${field}.type`, 'is required', 'set type: ReplaceFullPath or ReplacePrefixMatch');
  const full = readString(ctx, o.replaceFullPath, `${field}.replaceFullPath`, { maxLength: 1024 });
  const prefix = readString(ctx, o.replacePrefixMatch, `${field}.replacePrefixMatch`, { maxLength: 1024 });
  if (type === 'ReplaceFullPath') {
    if (prefix !== undefined)
      ctx.fail(
        `${field}.replacePrefixMatch`,
        'is set but type is ReplaceFullPath',
        'remove it or change type',
      );
    if (full === undefined)
      ctx.fail(
        `${field}.replaceFullPath`,
        'must be set when type is ReplaceFullPath',
        'add replaceFullPath: /new/path',
      );
    if (full !== '') checkPathValue(ctx, full, `${field}.replaceFullPath`);
    return { kind: type, value: full };
  }
  if (full !== undefined)
    ctx.fail(`${field}.replaceFullPath`, 'is set but type is ReplacePrefixMatch', 'remove it or change type');
  if (prefix === undefined)
    ctx.fail(
      `${field}.replacePrefixMatch`,
      'must be set when type is ReplacePrefixMatch',
      'add replacePrefixMatch: /new-prefix',
    );
  if (prefix !== '') checkPathValue(ctx, prefix, `${field}.replacePrefixMatch`);
  return { kind: type, value: prefix };
}

export function readRedirect(ctx: ObjectContext, value: unknown, field: string): RequestRedirect {
  const o = readObject(ctx, value, field);
  if (!o) ctx.fail(field, 'is required for type RequestRedirect', `add ${field}`);
  warnUnknownFields(ctx, o, field, ['scheme', 'hostname', 'path', 'port', 'statusCode']);
  const status = readInt(ctx, o.statusCode, `${field}.statusCode`) ?? 302;
  if (![301, 302, 303, 307, 308].includes(status)) {
    ctx.fail(`${field}.statusCode`, `${status} is not a redirect status`, 'use 301, 302, 303, 307 or 308');
  }
  return {
    scheme: readEnum(ctx, o.scheme, `${field}.scheme`, ['http', 'https']),
    hostname: readString(ctx, o.hostname, `${field}.hostname`, {
      maxLength: 253,
      pattern: PRECISE_HOSTNAME,
      patternHint: 'use a lower-case DNS name without a port',
    }),
    port: readInt(ctx, o.port, `${field}.port`, { min: 1, max: 65535 }),
    path: readPathModifier(ctx, o.path, `${field}.path`),
    statusCode: status as RedirectStatus,
  };
}

export function readRewrite(ctx: ObjectContext, value: unknown, field: string): UrlRewrite {
  const o = readObject(ctx, value, field);
  if (!o) ctx.fail(field, 'is required for type URLRewrite', `add ${field}`);
  warnUnknownFields(ctx, o, field, ['hostname', 'path']);
  return {
    hostname: readString(ctx, o.hostname, `${field}.hostname`, {
      maxLength: 253,
      pattern: PRECISE_HOSTNAME,
      patternHint: 'use a lower-case DNS name without a port',
    }),
    path: readPathModifier(ctx, o.path, `${field}.path`),
  };
}
