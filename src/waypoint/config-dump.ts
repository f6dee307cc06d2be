/**
 * The compiled waypoint config as plain JSON for the admin `/config_dump`: Maps become objects,
 * Sets arrays, regular expressions their source, and Infinity (unlimited thresholds) "unlimited".
 */
import type { WaypointConfig } from './config.js';

export function toJsonValue(v: unknown): unknown {
  if (v instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of v as Map<unknown, unknown>) out[String(k)] = toJsonValue(x);
    return out;
  }
  if (v instanceof Set) return [...(v as Set<unknown>)].map(toJsonValue);
  if (v instanceof RegExp) return v.source;
  if (Array.isArray(v)) return v.map(toJsonValue);
  if (typeof v === 'number' && !Number.isFinite(v)) return v > 0 ? 'unlimited' : String(v);
  if (typeof v === 'function' || typeof v === 'symbol') return undefined;
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const j = toJsonValue(x);
      if (j !== undefined) out[k] = j;
    }
    return out;
  }
  return v;
}

export function buildWaypointConfigDump(config: WaypointConfig): unknown {
  return toJsonValue(config);
}
