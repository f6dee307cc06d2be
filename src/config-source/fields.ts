/**
 * Typed reads of one object's fields. Every problem becomes a ConfigValidationError naming the
 * file, document, object and field, with a fix; warnings and debug notes go to shared sinks.
 */
import { canonicalIp } from '../state/index.js';
import { ConfigValidationError, describeObject, type ConfigWarning, type LocatedObject } from './kube.js';

export interface Diagnostics {
  warnings: ConfigWarning[];
  /** Debug-level notes (e.g. a policy left to the waypoint). */
  notes: string[];
}

export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (isMapping(v)) return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

export class ObjectContext {
  readonly object: string;

  constructor(
    readonly lo: LocatedObject,
    private readonly diag: Diagnostics,
  ) {
    this.object = describeObject(lo.obj);
  }

  get name(): string {
    return this.lo.obj.metadata.name;
  }

  get namespace(): string {
    return this.lo.obj.metadata.namespace ?? '';
  }

  get labels(): Record<string, string> {
    return this.lo.obj.metadata.labels ?? {};
  }

  get annotations(): Record<string, string> {
    return this.lo.obj.metadata.annotations ?? {};
  }

  /** spec as a mapping ({} when absent). */
  get spec(): Record<string, unknown> {
    return this.mapping(this.lo.obj.spec, 'spec') ?? {};
  }

  /** status as a mapping ({} when absent). */
  get status(): Record<string, unknown> {
    return this.mapping(this.lo.obj.status, 'status') ?? {};
  }

  fail(field: string, problem: string, fix: string): never {
    throw new ConfigValidationError(this.lo.loc, this.object, field, problem, fix);
  }

  warn(field: string, message: string): void {
    this.diag.warnings.push({ loc: this.lo.loc, object: this.object, field, message });
  }

  note(message: string): void {
    this.diag.notes.push(`${this.object}: ${message}`);
  }

  /** A mapping, or undefined when absent/null. */
  mapping(v: unknown, field: string): Record<string, unknown> | undefined {
    if (v === undefined || v === null) return undefined;
    if (!isMapping(v))
      this.fail(field, `must be a mapping, got ${typeName(v)}`, `write ${field} as key: value pairs`);
    return v;
  }

  /** A list ([] when absent/null). */
  list(v: unknown, field: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v))
      this.fail(field, `must be a list, got ${typeName(v)}`, `write ${field} as a YAML list (- item)`);
    return v as unknown[];
  }

  str(v: unknown, field: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      const fix =
        typeof v === 'number' || typeof v === 'boolean'
          ? `quote the value: "${String(v)}"`
          : 'write a single string';
      this.fail(field, `must be a string, got ${typeName(v)}`, fix);
    }
    return v;
  }

  requiredStr(v: unknown, field: string, fix: string): string {
    const s = this.str(v, field);
    if (s === undefined || s === '') this.fail(field, 'is required', fix);
    return s;
  }

  strList(v: unknown, field: string): string[] {
    return this.list(v, field).map((item, i) => {
      if (typeof item !== 'string' || item === '') {
        this.fail(`${field}[${i}]`, `must be a non-empty string, got ${typeName(item)}`, 'quote each value');
      }
      return item;
    });
  }

  bool(v: unknown, field: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean')
      this.fail(field, `must be true or false, got ${typeName(v)}`, 'write true or false');
    return v;
  }

  /** A TCP port 1-65535 (or 0..65535 with allowZero). */
  port(v: unknown, field: string, allowZero = false): number {
    const min = allowZero ? 0 : 1;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.fail(
        field,
        `must be a port number, got ${typeName(v)}`,
        `write an integer between ${min} and 65535`,
      );
    }
    if (v < min || v > 65535)
      this.fail(field, `port ${v} is out of range`, `use a port between ${min} and 65535`);
    return v;
  }

  /** A port given as a string (AuthorizationPolicy ports, PeerAuthentication keys). */
  portString(v: unknown, field: string): number {
    const s = typeof v === 'number' ? String(v) : v;
    if (typeof s !== 'string' || !/^[0-9]{1,5}$/.test(s)) {
      this.fail(
        field,
        `must be a port number, got ${typeName(v)}`,
        'write a port between 1 and 65535, e.g. "8080"',
      );
    }
    return this.port(Number(s), field);
  }

  /** An IP literal, returned in canonical form. */
  ip(v: unknown, field: string): string {
    const s = this.str(v, field);
    const c = s === undefined ? undefined : canonicalIp(s);
    if (c === undefined) {
      this.fail(
        field,
        `${JSON.stringify(v)} is not an IP address`,
        'write an IPv4 or IPv6 address such as 10.0.1.5 or fd00::5',
      );
    }
    return c;
  }

  /** Reject keys outside `allowed`: a silently ignored typo could change security. */
  onlyKeys(v: Record<string, unknown>, field: string, allowed: readonly string[]): void {
    for (const k of Object.keys(v)) {
      if (!allowed.includes(k)) {
        const at = field ? `${field}.${k}` : k;
        this.fail(at, `unknown field "${k}"`, `use one of: ${allowed.join(', ')}`);
      }
    }
  }

  /** `{matchLabels: {...}}`; matchExpressions are not supported by Istio's WorkloadSelector. */
  matchLabels(v: unknown, field: string): Record<string, string> | undefined {
    const m = this.mapping(v, field);
    if (m === undefined) return undefined;
    this.onlyKeys(m, field, ['matchLabels']);
    const labels = this.mapping(m.matchLabels, `${field}.matchLabels`) ?? {};
    for (const [k, val] of Object.entries(labels)) {
      if (typeof val !== 'string') {
        this.fail(
          `${field}.matchLabels.${k}`,
          `must be a string, got ${typeName(val)}`,
          `quote it: ${k}: "${String(val)}"`,
        );
      }
    }
    return labels as Record<string, string>;
  }
}

/** Do the labels contain every selector entry? (An empty selector selects everything.) */
export function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
