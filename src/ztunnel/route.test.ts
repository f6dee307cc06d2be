import { describe, expect, it } from 'vitest';
import { MeshState, type GatewayAddress, type Service, type Workload } from '../state/index.js';
import { testService, testWorkload } from '../state/test-helpers/builders.js';
import { buildRequest, type BuildRequestInput, type RouteDecision, type RouteTarget } from './route.js';

const SVC = (ns: string, name: string) => `${ns}/${name}.${ns}.svc.cluster.local`;

/** A pod in `shop` whose service account is its name without the ordinal (backend-0 → backend). */
const wl = (name: string, ip: string, over: Partial<Workload> = {}): Workload =>
  testWorkload(name, 'shop', ip, { serviceAccount: name.replace(/-\d+$/, ''), ...over });

const svc = (
  name: string,
  vip: string | undefined,
  ports: Record<number, number>,
  over: Partial<Service> = {},
): Service => testService(name, 'shop', vip, ports, over);

const gw = (name: string): GatewayAddress => ({
  destination: { kind: 'hostname', namespace: 'shop', hostname: `${name}.shop.svc.cluster.local` },
  hboneMtlsPort: 15008,
});

const client = wl('client-0', '127.0.1.1');
const b0 = wl('backend-0', '127.0.1.2', { services: { [SVC('shop', 'backend')]: { 80: 8080, 81: 9081 } } });
const b1 = wl('backend-1', '127.0.2.2', {
  capacity: 3,
  services: { [SVC('shop', 'backend')]: { 80: 8080 } },
});
const bSick = wl('backend-2', '127.0.2.3', {
  status: 'Unhealthy',
  services: { [SVC('shop', 'backend')]: { 80: 8080 } },
});
const fe0 = wl('frontend-0', '127.0.1.5', {
  services: { [SVC('shop', 'frontend')]: { 80: 8080 }, [SVC('shop', 'ledger')]: { 7000: 7000 } },
});
const wp0 = wl('waypoint-0', '127.0.2.9', {
  nativeTunnel: true,
  services: { [SVC('shop', 'waypoint')]: { 15008: 15008 } },
});
const db0 = wl('db-0', '127.0.3.1', { protocol: 'TCP', services: { [SVC('shop', 'db')]: { 5432: 5432 } } });
const sick0 = wl('sick-0', '127.0.3.2', {
  status: 'Unhealthy',
  services: { [SVC('shop', 'sick')]: { 80: 80 } },
});
const pinned0 = wl('pinned-0', '127.0.1.8', {
  waypoint: gw('waypoint'),
  services: { [SVC('shop', 'pinned')]: { 80: 8080 } },
});
const bad0 = wl('bad-0', '127.0.1.9', { services: { [SVC('shop', 'bad')]: { 80: 15008 } } });
const v6 = wl('v6-0', 'fd00::2', { services: { [SVC('shop', 'v6')]: { 80: 8080 } } });

const state = MeshState.build({
  workloads: [client, b0, b1, bSick, fe0, wp0, db0, sick0, pinned0, bad0, v6],
  services: [
    svc(
      'backend',
      '127.10.0.2',
      { 80: 8080, 81: 0 },
      { subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/backend-canary'] },
    ),
    svc('frontend', '127.10.0.1', { 80: 8080 }, { waypoint: gw('waypoint') }),
    svc('ledger', undefined, { 7000: 7000 }, { waypoint: gw('waypoint') }),
    svc('waypoint', undefined, { 15008: 15008 }),
    svc('reviews', '127.10.0.5', { 9080: 9080 }, { waypoint: gw('reviews-wp') }),
    svc('reviews-wp', undefined, { 15008: 15008 }),
    svc('db', '127.10.0.3', { 5432: 5432 }),
    svc('empty', '127.10.0.6', { 80: 80 }),
    svc('sick', '127.10.0.7', { 80: 80 }),
    svc('bad', '127.10.0.8', { 80: 15008 }),
    svc('pinned', '127.10.0.9', { 80: 8080 }),
    svc('v6', 'fd00::10', { 80: 8080 }),
  ],
});

const id = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;

/** A compact view of a decision for the table. */
function view(d: RouteDecision): Record<string, unknown> {
  if (!d.ok) return { fail: d.reason };
  const base = {
    proto: d.protocol,
    hop: `${d.nextHop.ip}:${d.nextHop.port}`,
    dst: d.destinationWorkload?.name,
    svc: d.destinationService?.name,
  };
  if (d.protocol === 'HBONE')
    return { ...base, authority: d.authority, ids: d.expectedIdentities, waypoint: d.viaWaypoint };
  return { ...base, passthrough: d.passthrough };
}

interface Case {
  name: string;
  target: RouteTarget;
  source?: Workload;
  sourceIp?: string;
  random?: number;
  want: Record<string, unknown>;
}

const hbone = (
  hop: string,
  authority: string,
  dst: string,
  ids: string[],
  svcName?: string,
  waypoint = false,
) => ({
  proto: 'HBONE',
  hop,
  authority,
  dst,
  ids,
  svc: svcName,
  waypoint,
});

const cases: Case[] = [
  // Service VIP without a waypoint: healthy endpoints, weighted random by capacity (b0:1, b1:3).
  {
    name: 'VIP → endpoint (random 0 → first of weight 1)',
    target: { ip: '127.10.0.2', port: 80 },
    random: 0,
    want: hbone(
      '127.0.1.2:15008',
      '127.0.1.2:8080',
      'backend-0',
      [id('backend-canary'), id('backend')],
      'backend',
    ),
  },
  {
    name: 'VIP → endpoint (random 0.3 → weight-3 endpoint)',
    target: { ip: '127.10.0.2', port: 80 },
    random: 0.3,
    want: hbone(
      '127.0.2.2:15008',
      '127.0.2.2:8080',
      'backend-1',
      [id('backend-canary'), id('backend')],
      'backend',
    ),
  },
  {
    name: 'VIP, named target port resolved per endpoint',
    target: { ip: '127.10.0.2', port: 81 },
    random: 0.99,
    want: hbone(
      '127.0.1.2:15008',
      '127.0.1.2:9081',
      'backend-0',
      [id('backend-canary'), id('backend')],
      'backend',
    ),
  },
  {
    name: 'VIP, unknown service port → error, not passthrough',
    target: { ip: '127.10.0.2', port: 82 },
    want: { fail: 'unknown_service_port' },
  },
  {
    name: 'known service, no endpoints → error',
    target: { ip: '127.10.0.6', port: 80 },
    want: { fail: 'no_healthy_upstream' },
  },
  {
    name: 'known service, only unhealthy endpoints → error',
    target: { ip: '127.10.0.7', port: 80 },
    want: { fail: 'no_healthy_upstream' },
  },
  {
    name: 'service of TCP workloads → plain TCP to target port',
    target: { ip: '127.10.0.3', port: 5432 },
    want: { proto: 'TCP', hop: '127.0.3.1:5432', dst: 'db-0', svc: 'db', passthrough: false },
  },
  // Waypoints.
  {
    name: 'VIP with waypoint → HBONE to the waypoint, authority = original VIP:port',
    target: { ip: '127.10.0.1', port: 80 },
    want: hbone('127.0.2.9:15008', '127.10.0.1:80', 'waypoint-0', [id('waypoint')], 'frontend', true),
  },
  {
    name: 'source is the waypoint (identity + IP) → direct to the endpoint',
    target: { ip: '127.10.0.1', port: 80 },
    source: wp0,
    sourceIp: '127.0.2.9',
    want: hbone('127.0.1.5:15008', '127.0.1.5:8080', 'frontend-0', [id('frontend')], 'frontend'),
  },
  {
    name: 'waypoint identity from another IP is not the waypoint',
    target: { ip: '127.10.0.1', port: 80 },
    source: wp0,
    sourceIp: '127.0.1.1',
    want: hbone('127.0.2.9:15008', '127.10.0.1:80', 'waypoint-0', [id('waypoint')], 'frontend', true),
  },
  {
    name: 'waypoint without instances → fail closed',
    target: { ip: '127.10.0.5', port: 9080 },
    want: { fail: 'no_waypoint_instance' },
  },
  {
    name: 'waypoint wins even for a port the service lacks (the waypoint decides)',
    target: { ip: '127.10.0.1', port: 81 },
    want: hbone('127.0.2.9:15008', '127.10.0.1:81', 'waypoint-0', [id('waypoint')], 'frontend', true),
  },
  {
    name: 'workload waypoint for pod-addressed traffic, authority = pod IP:port',
    target: { ip: '127.0.1.8', port: 8080 },
    want: hbone('127.0.2.9:15008', '127.0.1.8:8080', 'waypoint-0', [id('waypoint')], undefined, true),
  },
  {
    name: 'service-addressed traffic ignores the endpoint workload waypoint',
    target: { ip: '127.10.0.9', port: 80 },
    want: hbone('127.0.1.8:15008', '127.0.1.8:8080', 'pinned-0', [id('pinned')], 'pinned'),
  },
  // SOCKS5 hostname targets.
  {
    name: 'hostname short name → waypoint with the VIP as authority',
    target: { hostname: 'frontend', port: 80 },
    want: hbone('127.0.2.9:15008', '127.10.0.1:80', 'waypoint-0', [id('waypoint')], 'frontend', true),
  },
  {
    name: 'hostname FQDN → endpoint',
    target: { hostname: 'backend.shop.svc.cluster.local', port: 80 },
    random: 0,
    want: hbone(
      '127.0.1.2:15008',
      '127.0.1.2:8080',
      'backend-0',
      [id('backend-canary'), id('backend')],
      'backend',
    ),
  },
  {
    name: 'headless service with a waypoint → hostname authority',
    target: { hostname: 'ledger.shop', port: 7000 },
    want: hbone(
      '127.0.2.9:15008',
      'ledger.shop.svc.cluster.local:7000',
      'waypoint-0',
      [id('waypoint')],
      'ledger',
      true,
    ),
  },
  {
    name: 'unknown hostname → error',
    target: { hostname: 'nope', port: 80 },
    want: { fail: 'unknown_host' },
  },
  {
    name: 'IP literal given as a SOCKS5 domain',
    target: { hostname: '127.10.0.3', port: 5432 },
    want: { proto: 'TCP', hop: '127.0.3.1:5432', dst: 'db-0', svc: 'db', passthrough: false },
  },
  // Workload-addressed.
  {
    name: 'enrolled pod IP → HBONE to pod:15008, authority pod:port',
    target: { ip: '127.0.1.2', port: 8080 },
    want: hbone('127.0.1.2:15008', '127.0.1.2:8080', 'backend-0', [id('backend')]),
  },
  {
    name: 'self traffic still goes through HBONE',
    target: { ip: '127.0.1.1', port: 9000 },
    want: hbone('127.0.1.1:15008', '127.0.1.1:9000', 'client-0', [id('client')]),
  },
  {
    name: 'TCP pod IP → plain TCP',
    target: { ip: '127.0.3.1', port: 5432 },
    want: { proto: 'TCP', hop: '127.0.3.1:5432', dst: 'db-0', svc: undefined, passthrough: false },
  },
  {
    name: 'unknown IP → passthrough',
    target: { ip: '93.184.216.34', port: 443 },
    want: { proto: 'TCP', hop: '93.184.216.34:443', dst: undefined, svc: undefined, passthrough: true },
  },
  {
    name: 'unknown IP on 15008 is not a loop',
    target: { ip: '10.9.9.9', port: 15008 },
    want: { proto: 'TCP', hop: '10.9.9.9:15008', dst: undefined, svc: undefined, passthrough: true },
  },
  {
    name: 'IPv6 VIP → bracketed authority',
    target: { ip: 'fd00::10', port: 80 },
    want: hbone('fd00::2:15008', '[fd00::2]:8080', 'v6-0', [id('v6')], 'v6'),
  },
  // Loops.
  { name: 'loopback on 15001 → loop', target: { ip: '127.0.0.1', port: 15001 }, want: { fail: 'loop' } },
  { name: 'loopback ::1 on 15080 → loop', target: { ip: '::1', port: 15080 }, want: { fail: 'loop' } },
  {
    name: 'local-mode pod IP on 15008 → loop',
    target: { ip: '127.0.1.2', port: 15008 },
    want: { fail: 'loop' },
  },
  { name: 'own pod IP on 15006 → loop', target: { ip: '127.0.1.1', port: 15006 }, want: { fail: 'loop' } },
  {
    name: 'captured non-loopback pod IP on 15008 → loop',
    target: { ip: 'fd00::2', port: 15008 },
    want: { fail: 'loop' },
  },
  {
    name: 'service whose target port is 15008 on a captured pod → loop',
    target: { ip: '127.10.0.8', port: 80 },
    want: { fail: 'loop' },
  },
  { name: 'invalid IP → error', target: { ip: 'abc', port: 80 }, want: { fail: 'invalid_target' } },
  { name: 'port 0 → error', target: { ip: '127.0.1.2', port: 0 }, want: { fail: 'invalid_target' } },
];

function run(
  tc: Pick<Case, 'target' | 'source' | 'sourceIp' | 'random'>,
  extra: Partial<BuildRequestInput> = {},
) {
  const source = tc.source ?? client;
  return buildRequest({
    state,
    source,
    sourceIp: tc.sourceIp ?? source.workloadIps[0]!,
    target: tc.target,
    random: () => tc.random ?? 0,
    ...extra,
  });
}

describe('buildRequest', () => {
  it.each(cases)('$name', (tc) => {
    expect(view(run(tc))).toEqual(tc.want);
  });

  it.each([
    [{ ip: '127.10.0.2', port: 82 }, /Service shop\/backend has no port 82 \(its ports: 80, 81\)/],
    [
      { ip: '127.10.0.6', port: 80 },
      /Service shop\/empty port 80 has no usable endpoint: no pod matching its selector/,
    ],
    [{ ip: '127.10.0.7', port: 80 }, /all 1 endpoint\(s\) are unhealthy; check the pods' readiness/],
    [
      { ip: '127.10.0.5', port: 9080 },
      /uses waypoint shop\/reviews-wp\.shop\.svc\.cluster\.local, which has no ready instance; the connection is refused rather than bypassing/,
    ],
    [{ hostname: 'nope', port: 80 }, /no Service named "nope" is visible from namespace shop/],
    [
      { ip: '127.0.1.2', port: 15008 },
      /refusing 127\.0\.1\.2:15008: port 15008 is one of meshd's own listener ports .* on a loopback address/,
    ],
    [{ ip: 'fd00::2', port: 15008 }, /refusing \[fd00::2\]:15008: .* on mesh workload shop\/v6-0/],
    [{ ip: '127.10.0.8', port: 80 }, /target port of Service shop\/bad/],
  ] as Array<[RouteTarget, RegExp]>)('failure message for %j says what to fix', (target, re) => {
    const d = run({ target });
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.message).toMatch(re);
  });

  it('custom HBONE port and illegal ports are honoured', () => {
    const d = run({ target: { ip: '127.0.1.2', port: 8080 } }, { hbonePort: 16008, illegalPorts: [8080] });
    expect(view(d)).toEqual({ fail: 'loop' });
    expect(
      view(run({ target: { ip: '127.0.1.2', port: 15008 } }, { hbonePort: 16008, illegalPorts: [] })),
    ).toMatchObject({
      hop: '127.0.1.2:16008',
      authority: '127.0.1.2:15008',
    });
  });

  it('weighted random over many draws follows capacity', () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      const d = run({ target: { ip: '127.10.0.2', port: 80 }, random: i / 100 });
      const name = d.ok ? (d.destinationWorkload?.name ?? '') : d.reason;
      counts[name] = (counts[name] ?? 0) + 1;
    }
    expect(counts).toEqual({ 'backend-0': 25, 'backend-1': 75 });
  });

  it('locality preference picks the same-zone endpoint when configured', () => {
    const near = wl('near-0', '127.0.4.1', {
      locality: { region: 'eu', zone: 'a', subzone: '' },
      services: { [SVC('shop', 'geo')]: { 80: 80 } },
    });
    const far = wl('far-0', '127.0.4.2', {
      capacity: 100,
      locality: { region: 'us', zone: 'b', subzone: '' },
      services: { [SVC('shop', 'geo')]: { 80: 80 } },
    });
    const src = wl('src-0', '127.0.4.3', { locality: { region: 'eu', zone: 'a', subzone: '' } });
    const geo = svc(
      'geo',
      '127.10.4.1',
      { 80: 80 },
      {
        loadBalancing: {
          routingPreferences: ['Region', 'Zone'],
          mode: 'Failover',
          healthPolicy: 'OnlyHealthy',
        },
      },
    );
    const st = MeshState.build({ workloads: [near, far, src], services: [geo] });
    const d = buildRequest({
      state: st,
      source: src,
      sourceIp: '127.0.4.3',
      target: { ip: '127.10.4.1', port: 80 },
      random: () => 0.99,
    });
    expect(d.ok && d.destinationWorkload?.name).toBe('near-0');
  });
});
