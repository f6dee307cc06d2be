import { afterEach, describe, expect, it, vi } from 'vitest';
import { isMeshError } from '../errors.js';
import { createRegistry, readMetric, type Registry } from '../telemetry/metrics.js';
import { MeshCa } from './ca.js';
import { CertificateManager, type CertStateName, type CertificateManagerOptions } from './cert-manager.js';
import { formatSpiffeId, spiffeIdOf, type SpiffeId } from './spiffe.js';
import { TestSource } from './test-helpers/sources.js';
import type { WorkloadCertificate } from './tls.js';

const ca = MeshCa.create();
const HOUR = 3_600_000;
const EXPIRY = 'meshd_certificate_expiration_timestamp_seconds';
const FETCHES = 'meshd_certificate_fetches_total';
const id = (sa: string): SpiffeId => spiffeIdOf('cluster.local', 'shop', sa);
const FRONTEND = id('frontend');
const FRONTEND_URI = formatSpiffeId(FRONTEND);

const managers: CertificateManager[] = [];
afterEach(() => {
  for (const m of managers.splice(0)) m.close();
  vi.useRealTimers();
});

function setup(
  ttlMs: number,
  opts: Partial<CertificateManagerOptions> = {},
): { m: CertificateManager; source: TestSource; registry: Registry } {
  const source = new TestSource(ca, ttlMs);
  const registry = createRegistry();
  const m = new CertificateManager({
    source,
    registry,
    backoff: { initialMs: 50, maxMs: 200, jitter: 0 },
    ...opts,
  });
  managers.push(m);
  return { m, source, registry };
}

function nextState(m: CertificateManager, uri: string, want: CertStateName): Promise<number> {
  return new Promise((resolve) => {
    const on = (u: string, s: CertStateName) => {
      if (u !== uri || s !== want) return;
      m.off('state', on);
      resolve(Date.now());
    };
    m.on('state', on);
  });
}

function nextUpdate(m: CertificateManager, uri: string): Promise<{ cert: WorkloadCertificate; at: number }> {
  return new Promise((resolve) => {
    const on = (u: string, cert: WorkloadCertificate) => {
      if (u !== uri) return;
      m.off('updated', on);
      resolve({ cert, at: Date.now() });
    };
    m.on('updated', on);
  });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('CertificateManager with short-lived certificates', () => {
  it('renews a certificate at about half its lifetime, before it expires', async () => {
    const { m, registry } = setup(2_000);
    const first = await m.fetchCertificate(FRONTEND);
    expect(m.stateOf(FRONTEND)).toBe('Available');
    const context = m.findSecureContext(FRONTEND);
    expect(context).toBeDefined();
    expect(await m.fetchSecureContext(FRONTEND)).toBe(context);
    expect(await readMetric(registry, EXPIRY, { identity: FRONTEND_URI })).toBe(first.notAfterMs / 1000);

    const { cert: second, at } = await nextUpdate(m, FRONTEND_URI);
    const halfway = first.notBeforeMs + (first.notAfterMs - first.notBeforeMs) / 2;
    expect(at).toBeGreaterThanOrEqual(halfway - 5); // timers may run a hair before the wall clock
    expect(at).toBeLessThan(first.notAfterMs);
    expect(second.serialNumber).not.toBe(first.serialNumber);
    expect(await m.fetchCertificate(FRONTEND)).toBe(second);
    expect(m.findSecureContext(FRONTEND)).not.toBe(context);
    expect(await readMetric(registry, EXPIRY, { identity: FRONTEND_URI })).toBe(second.notAfterMs / 1000);
    expect(await readMetric(registry, FETCHES, { result: 'success' })).toBe(2);
  });

  it('serves the old certificate while the CA fails, becomes Unavailable at expiry, and recovers', async () => {
    const { m, source, registry } = setup(2_000);
    const first = await m.fetchCertificate(FRONTEND);
    source.mode = 'fail';
    const unavailable = nextState(m, FRONTEND_URI, 'Unavailable');

    await source.waitForCalls(2); // the refresh at 50 % fails
    expect(m.stateOf(FRONTEND)).toBe('Available');
    expect(await m.fetchCertificate(FRONTEND)).toBe(first);
    expect(m.findSecureContext(FRONTEND)).toBeDefined();
    expect(await readMetric(registry, EXPIRY, { identity: FRONTEND_URI })).toBe(first.notAfterMs / 1000);

    const at = await unavailable;
    expect(at).toBeGreaterThanOrEqual(first.notAfterMs);
    expect(source.calls.length).toBeGreaterThan(2); // it kept retrying with backoff
    expect(m.findSecureContext(FRONTEND)).toBeUndefined();
    expect(await readMetric(registry, EXPIRY, { identity: FRONTEND_URI })).toBe(0);
    expect((await registry.metrics()).includes(FRONTEND_URI)).toBe(false);
    const err = await rejection(m.fetchCertificate(FRONTEND));
    expect(err.message).toMatch(/CA unreachable/);
    expect(m.dump()).toMatchObject([
      { identity: FRONTEND_URI, state: 'Unavailable', error: 'CA unreachable' },
    ]);

    source.mode = 'issue';
    await nextState(m, FRONTEND_URI, 'Available');
    const recovered = await m.fetchCertificate(FRONTEND);
    expect(recovered.serialNumber).not.toBe(first.serialNumber);
    expect(recovered.notAfterMs).toBeGreaterThan(Date.now());
    expect(await readMetric(registry, EXPIRY, { identity: FRONTEND_URI })).toBe(recovered.notAfterMs / 1000);
    expect(await readMetric(registry, FETCHES, { result: 'failure' })).toBeGreaterThan(0);
  });
});

describe('CertificateManager fetching', () => {
  it('fails fast while Unavailable instead of calling the CA again', async () => {
    const { m, source } = setup(HOUR, { backoff: { initialMs: HOUR, maxMs: HOUR, jitter: 0 } });
    source.mode = 'fail';
    expect((await rejection(m.fetchCertificate(FRONTEND))).message).toBe('CA unreachable');
    expect(m.stateOf(FRONTEND)).toBe('Unavailable');
    const err = await rejection(m.fetchCertificate(FRONTEND));
    expect(isMeshError(err, 'MESH_ERR_CERT_UNAVAILABLE')).toBe(true);
    expect(err.message).toBe(`no certificate for ${FRONTEND_URI}: CA unreachable`);
    expect(source.calls).toHaveLength(1);
  });

  it('collapses concurrent requests for one identity into one fetch', async () => {
    const { m, source } = setup(HOUR);
    source.mode = 'hold';
    const waiting = [1, 2, 3, 4, 5].map(() => m.fetchCertificate(FRONTEND));
    m.prefetch(FRONTEND);
    const ctx = m.fetchSecureContext(FRONTEND);
    await source.waitForCalls(1);
    source.release();
    const certs = await Promise.all(waiting);
    expect(new Set(certs).size).toBe(1);
    expect(await ctx).toBe(m.findSecureContext(FRONTEND));
    expect(source.calls).toEqual([FRONTEND_URI]);
  });

  it('runs at most 8 fetches at once across many identities', async () => {
    const { m, source } = setup(HOUR);
    source.mode = 'hold';
    const ids = Array.from({ length: 20 }, (_, i) => id(`sa-${i}`));
    const all = Promise.all(ids.map((i) => m.fetchCertificate(i)));
    await source.waitForCalls(8);
    expect(source.inFlight).toBe(8);
    for (let released = 0; released < 20; released++) {
      await source.waitForCalls(Math.min(20, released + 8));
      expect(source.inFlight).toBeLessThanOrEqual(8);
      source.release();
    }
    const certs = await all;
    expect(certs.map((c) => c.uri)).toEqual(ids.map(formatSpiffeId));
    expect(source.maxInFlight).toBe(8);
    expect(m.identities()).toHaveLength(20);
  });

  it('serves a waiting connection before prefetches, promoting a queued prefetch when one asks', async () => {
    const { m, source } = setup(HOUR, { maxConcurrentFetches: 1 });
    source.mode = 'hold';
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(id) as [SpiffeId, SpiffeId, SpiffeId, SpiffeId];
    const pa = m.fetchCertificate(a);
    m.prefetch(b);
    m.prefetch(d);
    const pc = m.fetchCertificate(c);
    const pd = m.fetchCertificate(d); // d was queued as a prefetch; now a connection waits for it
    for (let n = 1; n <= 4; n++) {
      await source.waitForCalls(n);
      source.release();
    }
    await Promise.all([pa, pc, pd]);
    expect(source.calls).toEqual([a, d, c, b].map(formatSpiffeId));
  });

  it.each([
    [
      'a certificate for another identity',
      (c: WorkloadCertificate) => ({ ...c, uri: 'spiffe://cluster.local/ns/shop/sa/admin' }),
      /CA returned a certificate for spiffe:\/\/cluster\.local\/ns\/shop\/sa\/admin, not/,
    ],
    [
      'an expired certificate',
      (c: WorkloadCertificate) => ({ ...c, notAfterMs: Date.now() - 1000 }),
      /CA returned a certificate that expired at/,
    ],
  ])('refuses %s from the source', async (_name, tamper, message) => {
    const { m, source, registry } = setup(HOUR, { backoff: { initialMs: HOUR, maxMs: HOUR, jitter: 0 } });
    source.tamper = tamper;
    expect((await rejection(m.fetchCertificate(FRONTEND))).message).toMatch(message);
    expect(m.stateOf(FRONTEND)).toBe('Unavailable');
    expect(m.findSecureContext(FRONTEND)).toBeUndefined();
    expect(await readMetric(registry, FETCHES, { result: 'success' })).toBe(0);
  });

  it('dumps each identity with its chain and roots for /config_dump', async () => {
    const { m } = setup(HOUR);
    const cert = await m.fetchCertificate(FRONTEND);
    const [entry] = m.dump();
    expect(entry).toMatchObject({ identity: FRONTEND_URI, state: 'Available' });
    expect(entry?.certChain).toHaveLength(1);
    expect(entry?.certChain[0]?.serialNumber).toBe(cert.serialNumber);
    expect(entry?.certChain[0]?.expirationTime).toBe(new Date(cert.notAfterMs).toISOString());
    expect(Buffer.from(entry?.certChain[0]?.pem ?? '', 'base64').toString()).toBe(cert.chainPem[0]);
    expect(entry?.rootCerts).toHaveLength(1);
    expect(entry && 'error' in entry).toBe(false);
  });
});

describe('CertificateManager timers (fake clock)', () => {
  it('backs off ≈1 s doubling with jitter up to the cap, and resets after a success', async () => {
    vi.useFakeTimers({ now: Date.now() });
    const { m, source } = setup(HOUR, {
      backoff: { initialMs: 1000, maxMs: 4000, jitter: 0.2 },
      random: () => 1, // the top of the jitter range: +20 %
    });
    source.mode = 'fail';
    await rejection(m.fetchCertificate(FRONTEND));
    await vi.advanceTimersByTimeAsync(20_000);
    const gaps = source.callTimes.slice(1).map((t, i) => t - (source.callTimes[i] ?? 0));
    expect(gaps.slice(0, 5)).toEqual([1200, 2400, 4800, 4800, 4800]);

    source.mode = 'issue';
    await vi.advanceTimersToNextTimerAsync(); // the next retry succeeds
    expect(m.stateOf(FRONTEND)).toBe('Available');
    const cert = await m.fetchCertificate(FRONTEND);
    const renewedAt = source.callTimes.length;
    source.mode = 'fail';
    await vi.advanceTimersToNextTimerAsync(); // the refresh at 50 % fails
    expect(source.calls.length).toBe(renewedAt + 1);
    expect(source.callTimes.at(-1)).toBe(cert.notBeforeMs + HOUR / 2);
    await vi.advanceTimersByTimeAsync(1199);
    expect(source.calls.length).toBe(renewedAt + 1);
    await vi.advanceTimersByTimeAsync(1); // first retry after a success: back to 1 s (+20 %)
    expect(source.calls.length).toBe(renewedAt + 2);
    expect(m.stateOf(FRONTEND)).toBe('Available'); // the certificate is still valid
  });

  it('applies the jitter below as well as above the base delay', async () => {
    vi.useFakeTimers({ now: Date.now() });
    const { m, source } = setup(HOUR, {
      backoff: { initialMs: 1000, maxMs: 150_000, jitter: 0.2 },
      random: () => 0,
    });
    source.mode = 'fail';
    await rejection(m.fetchCertificate(FRONTEND));
    await vi.advanceTimersByTimeAsync(6000);
    const gaps = source.callTimes.slice(1).map((t, i) => t - (source.callTimes[i] ?? 0));
    expect(gaps.slice(0, 3)).toEqual([800, 1600, 3200]);
  });

  it('forget() drops the state, the timers and the metric', async () => {
    vi.useFakeTimers({ now: Date.now() });
    const { m, source, registry } = setup(HOUR);
    await m.fetchCertificate(FRONTEND);
    await m.fetchCertificate(id('backend'));
    expect(vi.getTimerCount()).toBe(4); // refresh + expiry, per identity
    expect(await readMetric(registry, EXPIRY, { identity: FRONTEND_URI })).toBeGreaterThan(0);

    m.forget(FRONTEND);
    expect(m.stateOf(FRONTEND)).toBeUndefined();
    expect(m.identities()).toEqual([formatSpiffeId(id('backend'))]);
    expect(m.findSecureContext(FRONTEND)).toBeUndefined();
    expect(vi.getTimerCount()).toBe(2);
    expect(await readMetric(registry, EXPIRY, { identity: FRONTEND_URI })).toBe(0);

    m.retainOnly([]);
    expect(m.identities()).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(3 * HOUR);
    expect(source.calls).toHaveLength(2);
    expect(m.identities()).toEqual([]);
  });

  it('forget() during a fetch drops the result, and fails callers whose fetch never started', async () => {
    vi.useFakeTimers({ now: Date.now() });
    const { m, source } = setup(HOUR, { maxConcurrentFetches: 1 });
    source.mode = 'hold';
    const running = m.fetchCertificate(FRONTEND);
    const queued = m.fetchCertificate(id('backend'));
    await source.waitForCalls(1);
    m.forget(id('backend'));
    const err = await rejection(queued);
    expect(isMeshError(err, 'MESH_ERR_CERT_UNAVAILABLE')).toBe(true);
    expect(err.message).toMatch(/was forgotten/);

    m.forget(FRONTEND);
    source.release();
    expect((await running).uri).toBe(FRONTEND_URI); // the caller still gets what it waited for
    expect(m.identities()).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
    expect(source.calls).toEqual([FRONTEND_URI]);
  });

  it('close() stops the timers and fails queued and later callers', async () => {
    vi.useFakeTimers({ now: Date.now() });
    const { m, source } = setup(HOUR, { maxConcurrentFetches: 1 });
    await m.fetchCertificate(FRONTEND);
    source.mode = 'hold';
    const running = m.fetchCertificate(id('a'));
    const queued = m.fetchCertificate(id('b'));
    await source.waitForCalls(2);
    m.close();
    expect(vi.getTimerCount()).toBe(0);
    expect((await rejection(queued)).message).toMatch(/closed/);
    expect((await rejection(m.fetchCertificate(FRONTEND))).message).toMatch(/closed/);
    source.release();
    await running;
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(2 * HOUR);
    expect(source.calls).toHaveLength(2);
  });

  it('never hands out an expired certificate, even before its timers have run', async () => {
    vi.useFakeTimers({ now: Date.now() });
    const { m, registry } = setup(HOUR);
    const cert = await m.fetchCertificate(FRONTEND);
    vi.setSystemTime(cert.notAfterMs + 1); // the wall clock jumps; no timer has fired
    expect(m.findSecureContext(FRONTEND)).toBeUndefined();
    const err = await rejection(m.fetchCertificate(FRONTEND));
    expect(isMeshError(err, 'MESH_ERR_CERT_UNAVAILABLE')).toBe(true);
    expect(err.message).toMatch(/expired at .* before it could be renewed/);
    expect(m.stateOf(FRONTEND)).toBe('Unavailable');
    expect(await readMetric(registry, EXPIRY, { identity: FRONTEND_URI })).toBe(0);
    await vi.advanceTimersByTimeAsync(HOUR); // the overdue refresh runs and succeeds
    expect(m.stateOf(FRONTEND)).toBe('Available');
    expect((await m.fetchCertificate(FRONTEND)).notAfterMs).toBeGreaterThan(Date.now());
  });
});
