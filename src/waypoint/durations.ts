/**
 * The two duration dialects the waypoint's inputs use, both parsed strictly (a typo is an error,
 * never a silent zero):
 * - Gateway API (GEP-2257): `^([0-9]{1,5}(h|m|s|ms)){1,4}$`, e.g. `10s`, `1h30m`, `500ms`, `0s`;
 * - Istio (protobuf Duration as Go's time.ParseDuration accepts it): `1.5s`, `3m`, `100ms`, `1h`.
 * Both return whole milliseconds, or `undefined` when the text is not valid.
 */

const GEP2257 = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
const GEP2257_PART = /([0-9]{1,5})(ms|h|m|s)/g;
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

export function parseGatewayDuration(text: string): number | undefined {
  if (!GEP2257.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(GEP2257_PART)) total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0);
  return total;
}

const GO_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

export function parseIstioDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === '0') return 0;
  if (s.length === 0) return undefined;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    GO_PART.lastIndex = pos;
    const m = GO_PART.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? NaN);
    pos = GO_PART.lastIndex;
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}
