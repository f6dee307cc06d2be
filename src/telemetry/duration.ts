/**
 * Durations as operators write them: "500ms", "10s", "5m", "24h", "1h30m", or a bare number of
 * seconds. Parsing is strict so that a typo is an error rather than a silent zero.
 */
import { MeshError } from '../errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;

export function parseDuration(text: string, what = 'duration'): number {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  let total = 0;
  let consumed = 0;
  PART.lastIndex = 0;
  for (let m = PART.exec(s); m !== null; m = PART.exec(s)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0);
    consumed = PART.lastIndex;
  }
  if (s.length === 0 || consumed !== s.length) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid ${what} "${text}"`, {
      hint: 'write a duration like 500ms, 10s, 5m, 24h or 1h30m',
    });
  }
  return Math.round(total);
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
