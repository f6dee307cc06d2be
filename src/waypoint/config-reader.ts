/**
 * Small strict readers for YAML-decoded Kubernetes objects. Each reader checks one field and, on
 * bad input, throws a ConfigValidationError naming the file, document, object, field and fix; a
 * field it does not know is a warning (the API server would prune it) with a "did you mean".
 */
import type { ConfigWarning, LocatedObject } from '../config-source/kube.js';
import { ConfigValidationError, describeObject } from '../config-source/kube.js';

export class ObjectContext {
  readonly object: string;
  readonly namespace: string;
  readonly name: string;

  constructor(
    readonly located: LocatedObject,
    private readonly sink: ConfigWarning[],
  ) {
    this.namespace = located.obj.metadata.namespace ?? 'default';
    this.name = located.obj.metadata.name;
    this.object = describeObject({
      kind: located.obj.kind,
      metadata: { ...located.obj.metadata, namespace: this.namespace },
    });
  }

  fail(field: string, problem: string, fix: string): never {
    throw new ConfigValidationError(this.located.loc, this.object, field, problem, fix);
  }

  warn(field: string, message: string): void {
    this.sink.push({ loc: this.located.loc, object: this.object, field, message });
  }
}

type Json = Record<string, unknown>;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`;
}

export function readObject(ctx: ObjectContext, value: unknown, field: string): Json | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    ctx.fail(field, `expected a mapping, got ${typeName(value)}`, `write ${field} as key: value pairs`);
  }
  return value as Json;
}

export function readList(ctx: ObjectContext, value: unknown, field: string, max?: number): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value))
    ctx.fail(field, `expected a list, got ${typeName(value)}`, `write ${field} as a YAML list ("- ...")`);
  if (max !== undefined && value.length > max) {
    ctx.fail(field, `has ${value.length} entries; at most ${max} are allowed`, `split it or remove entries`);
  }
  return value;
}

export interface StringOptions {
  maxLength?: number;
  pattern?: RegExp;
  patternHint?: string;
  nonEmpty?: boolean;
}

export function readString(
  ctx: ObjectContext,
  value: unknown,
  field: string,
  opts: StringOptions = {},
): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    ctx.fail(
      field,
      `expected a string, got ${typeName(value)}`,
      `quote the value: ${field}: "${JSON.stringify(value)}"`,
    );
  }
  if (opts.nonEmpty && value.length === 0)
    ctx.fail(field, 'must not be empty', 'give it a value or remove the field');
  if (opts.maxLength !== undefined && value.length > opts.maxLength) {
    ctx.fail(field, `is ${value.length} characters long; the limit is ${opts.maxLength}`, 'shorten it');
  }
  if (opts.pattern && !opts.pattern.test(value)) {
    ctx.fail(field, `"${value}" is not valid`, opts.patternHint ?? `it must match ${String(opts.pattern)}`);
  }
  return value;
}

export function requireString(
  ctx: ObjectContext,
  value: unknown,
  field: string,
  opts: StringOptions = {},
): string {
  const s = readString(ctx, value, field, opts);
  if (s === undefined) ctx.fail(field, 'is required', `add ${field}`);
  return s;
}

export function readInt(
  ctx: ObjectContext,
  value: unknown,
  field: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    ctx.fail(field, `expected an integer, got ${typeName(value)}`, `write a whole number`);
  }
  if ((range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max)) {
    ctx.fail(field, `${n} is out of range`, `use a value from ${range.min ?? '-∞'} to ${range.max ?? '∞'}`);
  }
  return n;
}

export function readNumber(
  ctx: ObjectContext,
  value: unknown,
  field: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    ctx.fail(field, `expected a number, got ${typeName(value)}`, 'write a number such as 10 or 0.5');
  }
  if ((range.min !== undefined && value < range.min) || (range.max !== undefined && value > range.max)) {
    ctx.fail(
      field,
      `${value} is out of range`,
      `use a value from ${range.min ?? '-∞'} to ${range.max ?? '∞'}`,
    );
  }
  return value;
}

export function readBool(ctx: ObjectContext, value: unknown, field: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean')
    ctx.fail(field, `expected true or false, got ${typeName(value)}`, 'write true or false');
  return value;
}

export function readEnum<T extends string>(
  ctx: ObjectContext,
  value: unknown,
  field: string,
  allowed: readonly T[],
): T | undefined {
  const s = readString(ctx, value, field);
  if (s === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(s)) {
    ctx.fail(
      field,
      `"${s}" is not one of ${allowed.join(', ')}${suggest(s, allowed)}`,
      `use one of: ${allowed.join(', ')}`,
    );
  }
  return s as T;
}

/** Warns about keys not in `known` (a typo would otherwise be silently ignored). */
export function warnUnknownFields(
  ctx: ObjectContext,
  obj: Json,
  field: string,
  known: readonly string[],
): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) {
      ctx.warn(`${field}.${key}`, `unknown field, ignored${suggest(key, known)}`);
    }
  }
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0] ?? 0;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j] ?? 0;
      dp[j] = Math.min(
        (dp[j] ?? 0) + 1,
        (dp[j - 1] ?? 0) + 1,
        prev + (a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1),
      );
      prev = tmp;
    }
  }
  return dp[b.length] ?? 0;
}

/** `; did you mean "x"?` for the closest known word, if it is close enough. */
export function suggest(word: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(word, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3))
    ? `; did you mean "${best}"?`
    : '';
}

/** The apiVersion group: "" for core, else the part before '/'. */
export function apiGroupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** The Service an Istio host names (`name.ns.svc.<domain>`), if any. */
export function serviceOfHost(
  host: string,
  clusterDomain: string,
): { namespace: string; name: string } | undefined {
  const suffix = `.svc.${clusterDomain}`;
  const m = host.endsWith(suffix) ? /^([^.]+)\.([^.]+)$/.exec(host.slice(0, -suffix.length)) : null;
  return m ? { namespace: m[2] ?? '', name: m[1] ?? '' } : undefined;
}
