/**
 * VirtualService (networking.istio.io) → fault injection only. meshd's waypoint takes routing from
 * HTTPRoute; from a VirtualService it applies `http[].fault` together with the `http[].match`
 * conditions it sits under (uri, method, authority, headers, withoutHeaders, queryParams,
 * ignoreUriCase, port, sourceNamespace). Every other VirtualService feature is ignored with a
 * warning. Match conditions meshd cannot evaluate (sourceLabels, gateways, scheme) are errors,
 * because dropping them would inject faults into more traffic than asked.
 */
import type { ObjectContext } from './config-reader.js';
import { serviceOfHost } from './config-reader.js';
import {
  readBool,
  readInt,
  readList,
  readNumber,
  readObject,
  readString,
  warnUnknownFields,
} from './config-reader.js';
import { parseIstioDuration } from './durations.js';
import type { FaultInjection, FaultRoute, VsMatch, VsStringMatch } from './fault.js';
import { compileFullMatchRegex } from './regex.js';

export const VS_FAULT_ONLY_MESSAGE =
  'meshd supports only fault injection (http[].fault and its match) from VirtualService; routing belongs in HTTPRoute';

const GRPC_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

export interface CompiledVirtualService {
  namespace: string;
  name: string;
  createdAt: number;
  /** Lower-case hosts as written, short names expanded to FQDNs. */
  hosts: string[];
  faults: FaultRoute[];
}

function readStringMatch(
  ctx: ObjectContext,
  value: unknown,
  f: string,
  allowPresence: boolean,
): VsStringMatch {
  const o = readObject(ctx, value, f) ?? {};
  warnUnknownFields(ctx, o, f, ['exact', 'prefix', 'regex']);
  const keys = ['exact', 'prefix', 'regex'].filter((k) => o[k] !== undefined);
  if (keys.length === 0) {
    if (allowPresence) return { kind: 'present' };
    ctx.fail(f, 'has no exact, prefix or regex', 'set exactly one of exact, prefix, regex');
  }
  if (keys.length > 1) ctx.fail(f, `sets ${keys.join(' and ')}`, 'set exactly one of exact, prefix, regex');
  const k = keys[0] as 'exact' | 'prefix' | 'regex';
  const v = readString(ctx, o[k], `${f}.${k}`) ?? '';
  if (k !== 'regex') return { kind: k, value: v };
  const r = compileFullMatchRegex(v);
  if (!r.ok)
    ctx.fail(`${f}.regex`, `invalid regular expression "${v}": ${r.reason}`, 'write an RE2 expression');
  return { kind: 'regex', value: v, re: r.re };
}

function readNamedMatches(ctx: ObjectContext, value: unknown, f: string, lower: boolean): VsMatch['headers'] {
  const o = readObject(ctx, value, f) ?? {};
  return Object.entries(o).map(([name, m]) => ({
    name: lower ? name.toLowerCase() : name,
    match: readStringMatch(ctx, m, `${f}.${name}`, true),
  }));
}

function readMatch(ctx: ObjectContext, value: unknown, f: string): VsMatch {
  const o = readObject(ctx, value, f) ?? {};
  warnUnknownFields(ctx, o, f, [
    'name',
    'uri',
    'scheme',
    'method',
    'authority',
    'headers',
    'port',
    'sourceLabels',
    'gateways',
    'queryParams',
    'ignoreUriCase',
    'withoutHeaders',
    'sourceNamespace',
    'statPrefix',
  ]);
  for (const k of ['scheme', 'sourceLabels', 'gateways']) {
    if (o[k] !== undefined)
      ctx.fail(
        `${f}.${k}`,
        `match on ${k} is not supported by meshd's waypoint`,
        `remove ${k}; supported: uri, method, authority, headers, withoutHeaders, queryParams, ignoreUriCase, port, sourceNamespace`,
      );
  }
  return {
    uri: o.uri === undefined ? undefined : readStringMatch(ctx, o.uri, `${f}.uri`, false),
    ignoreUriCase: readBool(ctx, o.ignoreUriCase, `${f}.ignoreUriCase`) ?? false,
    method: o.method === undefined ? undefined : readStringMatch(ctx, o.method, `${f}.method`, false),
    authority:
      o.authority === undefined ? undefined : readStringMatch(ctx, o.authority, `${f}.authority`, false),
    headers: readNamedMatches(ctx, o.headers, `${f}.headers`, true),
    withoutHeaders: readNamedMatches(ctx, o.withoutHeaders, `${f}.withoutHeaders`, true),
    queryParams: readNamedMatches(ctx, o.queryParams, `${f}.queryParams`, false),
    port: readInt(ctx, o.port, `${f}.port`, { min: 1, max: 65535 }),
    sourceNamespace: readString(ctx, o.sourceNamespace, `${f}.sourceNamespace`),
  };
}

function readPercent(ctx: ObjectContext, o: Record<string, unknown>, f: string, what: string): number {
  const p = readObject(ctx, o.percentage, `${f}.percentage`);
  if (p) {
    warnUnknownFields(ctx, p, `${f}.percentage`, ['value']);
    return readNumber(ctx, p.value, `${f}.percentage.value`, { min: 0, max: 100 }) ?? 0;
  }
  const legacy = readInt(ctx, o.percent, `${f}.percent`, { min: 0, max: 100 });
  if (legacy !== undefined) return legacy;
  ctx.warn(f, `no percentage: Istio ${what} no requests; set percentage.value (e.g. 100)`);
  return 0;
}

function readFault(ctx: ObjectContext, value: unknown, f: string): FaultInjection | undefined {
  const o = readObject(ctx, value, f);
  if (!o) return undefined;
  warnUnknownFields(ctx, o, f, ['delay', 'abort']);
  let delay: FaultInjection['delay'];
  const d = readObject(ctx, o.delay, `${f}.delay`);
  if (d) {
    warnUnknownFields(ctx, d, `${f}.delay`, ['fixedDelay', 'exponentialDelay', 'percentage', 'percent']);
    if (d.exponentialDelay !== undefined)
      ctx.warn(`${f}.delay.exponentialDelay`, 'exponential delays are not supported (nor by Istio); ignored');
    const text = readString(ctx, d.fixedDelay, `${f}.delay.fixedDelay`);
    if (text !== undefined) {
      const ms = parseIstioDuration(text);
      if (ms === undefined || ms < 1)
        ctx.fail(
          `${f}.delay.fixedDelay`,
          `"${text}" is not a duration of at least 1ms`,
          'write it like 500ms or 5s',
        );
      delay = { fixedDelayMs: ms, percent: readPercent(ctx, d, `${f}.delay`, 'delays') };
    } else if (d.exponentialDelay === undefined) {
      ctx.fail(`${f}.delay.fixedDelay`, 'is required', 'add fixedDelay: 5s');
    }
  }
  let abort: FaultInjection['abort'];
  const a = readObject(ctx, o.abort, `${f}.abort`);
  if (a) {
    warnUnknownFields(ctx, a, `${f}.abort`, ['httpStatus', 'grpcStatus', 'http2Error', 'percentage']);
    if (a.http2Error !== undefined)
      ctx.fail(
        `${f}.abort.http2Error`,
        'HTTP/2 error aborts are not supported',
        'use httpStatus or grpcStatus',
      );
    const http = readInt(ctx, a.httpStatus, `${f}.abort.httpStatus`, { min: 200, max: 599 });
    const grpcName = readString(ctx, a.grpcStatus, `${f}.abort.grpcStatus`);
    if ((http === undefined) === (grpcName === undefined))
      ctx.fail(
        `${f}.abort`,
        'needs exactly one of httpStatus or grpcStatus',
        'set httpStatus: 503 (or grpcStatus: UNAVAILABLE)',
      );
    let grpcStatus: number | undefined;
    if (grpcName !== undefined) {
      grpcStatus = GRPC_CODES.indexOf(grpcName);
      if (grpcStatus < 0)
        ctx.fail(
          `${f}.abort.grpcStatus`,
          `"${grpcName}" is not a gRPC status name`,
          `use one of ${GRPC_CODES.join(', ')}`,
        );
    }
    abort = { httpStatus: http ?? 200, grpcStatus, percent: readPercent(ctx, a, `${f}.abort`, 'aborts') };
  }
  return delay || abort ? { delay, abort } : undefined;
}

export function compileVirtualService(
  ctx: ObjectContext,
  spec: unknown,
  createdAt: number,
  env: { clusterDomain: string; serves: (service: { namespace: string; name: string }) => boolean },
): CompiledVirtualService | undefined {
  const clusterDomain = env.clusterDomain;
  const s = readObject(ctx, spec, 'spec') ?? {};
  warnUnknownFields(ctx, s, 'spec', ['hosts', 'gateways', 'http', 'tls', 'tcp', 'exportTo']);
  const gateways = readList(ctx, s.gateways, 'spec.gateways').map((g, i) =>
    readString(ctx, g, `spec.gateways[${i}]`),
  );
  // A VirtualService bound only to gateways does not apply to mesh traffic.
  if (gateways.length > 0 && !gateways.includes('mesh')) return undefined;
  for (const k of ['tls', 'tcp'])
    if (s[k] !== undefined) ctx.warn(`spec.${k}`, `ignored: ${VS_FAULT_ONLY_MESSAGE}`);
  const hosts = readList(ctx, s.hosts, 'spec.hosts').map((h, i) => {
    const v = (readString(ctx, h, `spec.hosts[${i}]`, { nonEmpty: true }) ?? '').toLowerCase();
    return v.includes('.') || v === '*' ? v : `${v}.${ctx.namespace}.svc.${clusterDomain}`;
  });
  if (hosts.length === 0) ctx.fail('spec.hosts', 'is required', 'list the Service, e.g. hosts: [reviews]');
  if (
    !hosts.some((h) => {
      const svc = serviceOfHost(h, clusterDomain);
      return svc === undefined || env.serves(svc);
    })
  ) {
    return undefined;
  }
  const faults = readList(ctx, s.http, 'spec.http').map((item, index): FaultRoute => {
    const f = `spec.http[${index}]`;
    const h = readObject(ctx, item, f) ?? {};
    const ignored = Object.keys(h).filter((k) => k !== 'match' && k !== 'fault' && k !== 'name');
    if (ignored.length > 0) ctx.warn(f, `ignored ${ignored.join(', ')}: ${VS_FAULT_ONLY_MESSAGE}`);
    return {
      matches: readList(ctx, h.match, `${f}.match`).map((m, i) => readMatch(ctx, m, `${f}.match[${i}]`)),
      fault: readFault(ctx, h.fault, `${f}.fault`),
      source: { namespace: ctx.namespace, name: ctx.name, index },
    };
  });
  return { namespace: ctx.namespace, name: ctx.name, createdAt, hosts, faults };
}
