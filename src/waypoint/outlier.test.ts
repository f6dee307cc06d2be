import { describe, expect, it } from 'vitest';
import type { OutlierDetectionSettings } from './outlier.js';
import { ISTIO_OUTLIER_DEFAULTS, OutlierDetector } from './outlier.js';
import { ISTIO_DEFAULT_DESTINATION_POLICY } from './destination-policy.js';
import { seededRandom } from './random.js';
import type { AttemptOutcome } from './retry-policy.js';
import { manualClock } from './test-helpers/index.js';
import { UpstreamCluster } from './upstream-cluster.js';

const HOSTS = Array.from({ length: 10 }, (_, i) => `10.0.0.${i}:8080`);
const [H0 = '', H1 = '', H2 = ''] = HOSTS;
const s5xx: AttemptOutcome = { kind: 'response', status: 503 };
const ok: AttemptOutcome = { kind: 'response', status: 200 };

function detector(settings: Partial<OutlierDetectionSettings> = {}, hosts = HOSTS) {
  const clock = manualClock(1_000);
  const od = new OutlierDetector({ ...ISTIO_OUTLIER_DEFAULTS, ...settings }, clock);
  od.setHosts(hosts);
  return { clock, od };
}

function errors(od: OutlierDetector, host: string, n: number, outcome: AttemptOutcome = s5xx): void {
  for (let i = 0; i < n; i++) od.recordOutcome(host, outcome);
}

describe('OutlierDetector (consecutive 5xx, Envoy semantics)', () => {
  it('ejects after the fifth consecutive 5xx, for baseEjectionTime, then returns the host', () => {
    const { clock, od } = detector();
    errors(od, H0, 4);
    expect(od.isEjected(H0)).toBe(false);
    expect(od.recordOutcome(H0, s5xx)).toBe('consecutive-5xx');
    expect(od.isEjected(H0)).toBe(true);
    expect(od.remainingEjectionMs(H0)).toBe(30_000);
    clock.advance(29_999);
    expect(od.isEjected(H0)).toBe(true);
    clock.advance(1);
    expect(od.isEjected(H0)).toBe(false);
  });

  it('a success in between resets the count', () => {
    const { od } = detector();
    errors(od, H0, 4);
    od.recordOutcome(H0, ok);
    errors(od, H0, 4);
    expect(od.isEjected(H0)).toBe(false);
  });

  it('the ejection time grows with each re-ejection and shrinks with healthy intervals', () => {
    const { clock, od } = detector({ baseEjectionTimeMs: 30_000, intervalMs: 10_000 });
    const eject = (): number => {
      errors(od, H0, 5);
      expect(od.isEjected(H0)).toBe(true);
      const ms = od.remainingEjectionMs(H0);
      clock.advance(ms);
      expect(od.isEjected(H0)).toBe(false);
      return ms;
    };
    expect([eject(), eject(), eject()]).toEqual([30_000, 60_000, 90_000]);
    expect(od.ejectionMultiplier(H0)).toBe(3);
    clock.advance(25_000); // two full healthy intervals
    expect(od.ejectionMultiplier(H0)).toBe(1);
    expect(eject()).toBe(60_000);
  });

  it('caps the ejection time at maxEjectionTime', () => {
    const { clock, od } = detector({ baseEjectionTimeMs: 100_000, maxEjectionTimeMs: 300_000 });
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      errors(od, H0, 5);
      times.push(od.remainingEjectionMs(H0));
      clock.advance(times[times.length - 1] ?? 0);
    }
    expect(times).toEqual([100_000, 200_000, 300_000, 300_000, 300_000]);
  });

  it('honours maxEjectionPercent (10 % of 10 hosts = one host)', () => {
    const { od } = detector();
    errors(od, H0, 5);
    errors(od, H1, 5);
    expect(od.ejectedHosts()).toEqual([H0]);
    errors(od, H1, 5); // the counter was reset by the refused ejection: 5 more are needed, still refused
    expect(od.ejectedHosts()).toEqual([H0]);
  });

  it.each([
    ['5 hosts, 10 %, Envoy ≥ 1.31 default: nothing can be ejected', 5, 10, false, 0],
    ['5 hosts, 10 %, alwaysEjectOneHost: exactly one', 5, 10, true, 1],
    ['5 hosts, 40 %: two', 5, 40, false, 2],
    ['5 hosts, 100 %: all', 5, 100, false, 5],
  ])('%s', (_n, count, pct, always, ejected) => {
    const hosts = HOSTS.slice(0, count);
    const { od } = detector({ maxEjectionPercent: pct, alwaysEjectOneHost: always }, hosts);
    for (const h of hosts) errors(od, h, 5);
    expect(od.ejectedHosts()).toHaveLength(ejected);
  });

  it('counts gateway errors separately when consecutiveGatewayErrors is set', () => {
    const { od } = detector({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 3 });
    od.recordOutcome(H0, { kind: 'response', status: 502 });
    od.recordOutcome(H0, { kind: 'response', status: 500 }); // a non-gateway 5xx resets the gateway count
    od.recordOutcome(H0, { kind: 'response', status: 503 });
    od.recordOutcome(H0, { kind: 'response', status: 504 });
    expect(od.isEjected(H0)).toBe(false);
    expect(od.recordOutcome(H0, { kind: 'failure', failure: 'timeout' })).toBe('consecutive-gateway-errors');
  });

  it('without split mode connect failures count as 5xx; with it they count as local-origin failures', () => {
    const plain = detector();
    errors(plain.od, H0, 5, { kind: 'failure', failure: 'connect-failure' });
    expect(plain.od.isEjected(H0)).toBe(true);

    const split = detector({ splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2 });
    split.od.recordOutcome(H0, { kind: 'failure', failure: 'connect-failure' });
    split.od.recordOutcome(H0, { kind: 'response', status: 503 }); // a response means the connection worked
    split.od.recordOutcome(H0, { kind: 'failure', failure: 'reset' });
    expect(split.od.isEjected(H0)).toBe(false);
    expect(split.od.recordOutcome(H0, { kind: 'failure', failure: 'timeout' })).toBe(
      'consecutive-local-origin-failures',
    );
  });

  it('errors for an ejected host neither extend nor re-trigger the ejection; its counters restart on return', () => {
    const { clock, od } = detector();
    errors(od, H0, 5);
    clock.advance(10_000);
    errors(od, H0, 20);
    expect(od.remainingEjectionMs(H0)).toBe(20_000);
    clock.advance(20_000);
    errors(od, H0, 4);
    expect(od.isEjected(H0)).toBe(false);
  });

  it('forgets removed hosts; new hosts start healthy', () => {
    const { od } = detector();
    errors(od, H0, 5);
    od.setHosts(HOSTS.slice(1));
    expect(od.ejectedHosts()).toEqual([]);
    expect(od.hostCount).toBe(9);
  });
});

describe('UpstreamCluster with outlier detection', () => {
  function cluster(settings: Partial<OutlierDetectionSettings>, hosts: string[]) {
    const clock = manualClock(0);
    const c = new UpstreamCluster(
      { ...ISTIO_DEFAULT_DESTINATION_POLICY, outlierDetection: { ...ISTIO_OUTLIER_DEFAULTS, ...settings } },
      { clock, random: seededRandom(3) },
    );
    c.setHosts(hosts);
    return { clock, c };
  }

  it('an ejected host gets no traffic while the others keep serving', () => {
    const { clock, c } = cluster({}, HOSTS);
    for (let i = 0; i < 5; i++) c.recordOutcome(H0, s5xx);
    const picks = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const r = c.chooseHost();
      if (r.ok) picks.add(r.host);
    }
    expect(picks.has(H0)).toBe(false);
    expect(picks.size).toBe(9);
    clock.advance(30_000);
    for (let i = 0; i < 500 && !picks.has(H0); i++) {
      const r = c.chooseHost();
      if (r.ok) picks.add(r.host);
    }
    expect(picks.has(H0)).toBe(true);
  });

  it('panic mode (healthy share below minHealthPercent) routes to all hosts', () => {
    const { c } = cluster({ maxEjectionPercent: 50, minHealthPercent: 60 }, [H0, H1]);
    for (let i = 0; i < 5; i++) c.recordOutcome(H0, s5xx);
    expect(c.eligibleHosts()).toEqual({ hosts: [H0, H1], panic: true });
  });

  it('with every host ejected and no panic threshold there is no healthy upstream', () => {
    const { c } = cluster({ maxEjectionPercent: 100 }, [H0]);
    for (let i = 0; i < 5; i++) c.recordOutcome(H0, s5xx);
    expect(c.chooseHost()).toEqual({ ok: false, reason: 'all-ejected' });
  });

  it('retries prefer hosts not tried before (up to 5 re-picks, as Envoy)', () => {
    const { c } = cluster({}, [H0, H1, H2]);
    const share = (maxAttempts: number): number => {
      let fresh = 0;
      for (let i = 0; i < 2000; i++) {
        const r = c.chooseHost(new Set([H0, H1]), maxAttempts);
        if (r.ok && r.host === H2) fresh++;
      }
      return fresh / 2000;
    };
    // P(untried) = 1 − (2/3)^attempts: 0.868 with 5 attempts, 0.333 with 1.
    expect(share(5)).toBeGreaterThan(0.83);
    expect(share(5)).toBeLessThan(0.9);
    expect(share(1)).toBeLessThan(0.4);
  });
});
