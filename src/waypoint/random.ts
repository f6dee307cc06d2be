/**
 * Injected sources of time and randomness. Every decision in the waypoint that depends on chance
 * (weighted backends, fault percentages, load balancing, backoff jitter) or on time (outlier
 * ejection) takes one of these, so that tests can replay a decision exactly.
 */
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';

/** A uniform draw in [0, 1), like Math.random. */
export type Random = () => number;
/** Monotonic milliseconds. Only differences matter. */
export type Clock = () => number;
/** `n` random bytes (trace and span ids). */
export type RandomBytes = (n: number) => Uint8Array;

export const defaultRandom: Random = Math.random;
export const defaultClock: Clock = () => performance.now();
/**
 * Cryptographically random bytes from a 4 KiB pool refilled in one call: trace and span ids are
 * drawn for every request, and one getrandom() per id showed in profiles. Each caller gets its
 * own copy; no byte is handed out twice.
 */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;
export const defaultRandomBytes: RandomBytes = (n) => {
  if (n > POOL_BYTES) return randomFillSync(Buffer.alloc(n));
  if (poolOffset + n > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    poolOffset = 0;
  }
  const out = Buffer.from(pool.subarray(poolOffset, poolOffset + n));
  poolOffset += n;
  return out;
};

/**
 * A small deterministic generator (mulberry32) for tests and reproducible simulations. Not for
 * anything secret.
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, n) from a uniform draw. */
export function randomIndex(random: Random, n: number): number {
  return Math.min(n - 1, Math.floor(random() * n));
}
