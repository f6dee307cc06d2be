/**
 * Value matching for authorization: Istio's string forms (exact, `abc*`, `*abc`, `*`), Envoy URI
 * templates in paths (`{*}` one segment, `{**}` any number of segments, last only), and CIDRs.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { AuthzValue, StringPattern } from './authz-types.js';

export function buildStringPattern(value: string, lowerCase = false): StringPattern {
  const v = lowerCase ? value.toLowerCase() : value;
  if (v === '*') return { kind: 'presence' };
  if (v.startsWith('*')) return { kind: 'suffix', value: v.slice(1) };
  if (v.endsWith('*')) return { kind: 'prefix', value: v.slice(0, -1) };
  return { kind: 'exact', value: v };
}

export function matchesPattern(p: StringPattern, value: string): boolean {
  switch (p.kind) {
    case 'presence':
      return value.length > 0;
    case 'exact':
      return value === p.value;
    case 'prefix':
      return value.startsWith(p.value);
    case 'suffix':
      return value.endsWith(p.value);
  }
}

/** Compiles a path template, or explains why it is not a valid one. */
export function buildPathTemplate(
  template: string,
): { ok: true; re: RegExp } | { ok: false; reason: string } {
  if (!template.startsWith('/')) return { ok: false, reason: 'a path template must start with "/"' };
  const segments = template.split('/').slice(1);
  let re = '';
  for (const [i, seg] of segments.entries()) {
    if (seg === '{*}') re += '/[^/]+';
    else if (seg === '{**}') {
      if (i !== segments.length - 1) return { ok: false, reason: '{**} must be the last segment' };
      re += '/.*';
    } else if (/[{}*]/.test(seg)) {
      return {
        ok: false,
        reason: `segment "${seg}" mixes text with an operator; use {*} or {**} as whole segments`,
      };
    } else re += '/' + seg.replace(/[.+?^$()[\]|\\]/g, '\\$&');
  }
  return { ok: true, re: new RegExp(`^${re}$`) };
}

/** Strips the IPv4-mapped IPv6 prefix so that ::ffff:10.0.0.1 matches 10.0.0.0/8. */
export function canonicalIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m?.[1] ?? ip;
}

/** Builds one BlockList from IPs and CIDRs; returns the first invalid entry instead if any. */
export function buildCidrList(
  entries: readonly string[],
): { ok: true; list: BlockList } | { ok: false; bad: string } {
  const list = new BlockList();
  for (const e of entries) {
    const [addr = '', prefixText] = e.split('/');
    const family = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
    if (!family) return { ok: false, bad: e };
    const max = family === 'ipv4' ? 32 : 128;
    const prefix = prefixText === undefined ? max : /^\d+$/.test(prefixText) ? Number(prefixText) : NaN;
    if (!(prefix >= 0 && prefix <= max)) return { ok: false, bad: e };
    list.addSubnet(addr, prefix, family);
  }
  return { ok: true, list };
}

export function matchesAuthzValue(v: AuthzValue, value: string): boolean {
  switch (v.kind) {
    case 'string':
      return matchesPattern(v.pattern, value);
    case 'path-template':
      return v.re.test(value);
    case 'cidrs': {
      const ip = canonicalIp(value);
      const family = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : undefined;
      return family !== undefined && v.list.check(ip, family);
    }
  }
}
