import { describe, expect, it } from 'vitest';
import {
  filterByLocality,
  pickEndpoint,
  pickWeighted,
  rankLocality,
  selectWorkloadIp,
} from './load-balance.js';
import type { GatewayAddress, LoadBalancing, Service } from './model.js';
import { MeshState } from './store.js';
import { testService, testWorkload } from './test-helpers/builders.js';

const wl = testWorkload;

const svc = testService;

const shopBackend = svc('backend', 'shop', '10.96.0.10', { 80: 8080, 9000: 0 });
const otherBackend = svc('backend', 'other', '10.96.0.11', { 80: 8080 });
const onlyOther = svc('private', 'other', '10.96.0.12', { 80: 80 }, { visibility: 'Namespace' });
const shared1 = svc('a', 'x', '10.96.0.50', { 80: 80 });
const shared2 = svc('b', 'y', '10.96.0.50', { 80: 80 }, { canonical: true });
const key = 'shop/backend.shop.svc.cluster.local';

const b0 = wl('backend-0', 'shop', '10.0.0.10', { services: { [key]: { 80: 8080, 9000: 9100 } } });
const b1 = wl('backend-1', 'shop', '10.0.0.11', { services: { [key]: { 80: 8080 } }, node: 'node-b' });
const b2 = wl('backend-2', 'shop', '10.0.0.12', {
  services: { [key]: { 80: 8080, 9000: 9200 } },
  status: 'Unhealthy',
});
const noIp = wl('backend-3', 'shop', [], { services: { [key]: { 80: 8080 } } });
const plain = wl('legacy', 'shop', '10.0.0.20', { protocol: 'TCP', node: 'node-a' });
const wp = wl('waypoint-abc', 'shop', '10.0.0.30', {
  nativeTunnel: true,
  services: { 'shop/waypoint.shop.svc.cluster.local': { 15008: 15008 } },
});
const wpSvc = svc('waypoint', 'shop', undefined, { 15008: 15008 });

const state = MeshState.build({
  workloads: [b0, b1, b2, noIp, plain, wp],
  services: [shopBackend, otherBackend, onlyOther, shared1, shared2, wpSvc],
});

describe('workload lookups', () => {
  it('by uid and by IP (canonical form)', () => {
    expect(state.findWorkloadByUid('Kubernetes//Pod/shop/backend-1')).toBe(b1);
    expect(state.findWorkloadByIp('10.0.0.11')).toBe(b1);
    expect(state.findWorkloadByIp('::ffff:10.0.0.11')).toBe(b1);
    expect(state.findWorkloadByIp('10.0.0.99')).toBeUndefined();
    expect(state.findWorkloadByIp('10.0.0.11', 'remote')).toBeUndefined();
  });

  it('ranks workloads sharing an IP: pods first, then HBONE', () => {
    const a = wl('a', 'ns', '10.1.1.1', { uid: 'Kubernetes/networking.istio.io/WorkloadEntry/ns/a' });
    const b = wl('b', 'ns', '10.1.1.1', { protocol: 'TCP' });
    const c = wl('c', 'ns', '10.1.1.1');
    expect(MeshState.build({ workloads: [a, b, c] }).findWorkloadByIp('10.1.1.1')).toBe(c);
    expect(MeshState.build({ workloads: [a, b] }).findWorkloadByIp('10.1.1.1')).toBe(b);
  });

  it('local captured workloads of a node exclude TCP and native-tunnel workloads', () => {
    expect(state.findLocalWorkloads('node-a').map((w) => w.name)).toEqual([
      'backend-0',
      'backend-2',
      'backend-3',
    ]);
    expect(state.findLocalWorkloads('node-b')).toEqual([b1]);
    expect(state.findLocalWorkloads('nope')).toEqual([]);
  });

  it('rejects duplicates and bad IPs at build time', () => {
    expect(() => MeshState.build({ workloads: [b0, b0] })).toThrow(/duplicate workload uid/);
    expect(() => MeshState.build({ services: [shopBackend, shopBackend] })).toThrow(/duplicate service/);
    expect(() => MeshState.build({ workloads: [wl('x', 'ns', '10.0.0.256')] })).toThrow(/invalid IP/);
  });
});

describe('service lookups', () => {
  it.each([
    ['10.96.0.10', 'shop', 'shop/backend'],
    ['10.96.0.10', undefined, 'shop/backend'],
    ['10.96.0.12', 'other', 'other/private'],
    ['10.96.0.12', 'shop', undefined],
    ['10.96.0.50', 'x', 'x/a'],
    ['10.96.0.50', 'elsewhere', 'y/b'],
    ['10.96.0.99', 'shop', undefined],
  ])('VIP %s from %s → %s', (ip, ns, want) => {
    const s = state.findServiceByVip(ip, ns);
    expect(s ? `${s.namespace}/${s.name}` : undefined).toBe(want);
  });

  it.each([
    ['backend', 'shop', 'shop/backend'],
    ['backend', 'other', 'other/backend'],
    ['backend', 'nowhere', undefined],
    ['backend.other', 'shop', 'other/backend'],
    ['backend.shop', 'other', 'shop/backend'],
    ['backend.other.svc', 'shop', 'other/backend'],
    ['backend.other.svc.cluster.local', 'shop', 'other/backend'],
    ['backend.other.svc.cluster.local.', 'shop', 'other/backend'],
    ['BACKEND.Shop', 'other', 'shop/backend'],
    ['private', 'shop', undefined],
    ['private', 'other', 'other/private'],
    ['backend.', 'shop', undefined],
    ['backend.nope', 'shop', undefined],
  ])('hostname %s from %s → %s', (name, ns, want) => {
    const s = state.findServiceByHostname(name, ns);
    expect(s ? `${s.namespace}/${s.name}` : undefined).toBe(want);
  });

  it('uses the configured cluster domain', () => {
    const s = svc('api', 'prod', '10.96.1.1', { 80: 80 }, { hostname: 'api.prod.svc.corp.example' });
    const st = MeshState.build({ services: [s] }, { clusterDomain: 'corp.example' });
    expect(st.findServiceByHostname('api', 'prod')).toBe(s);
    expect(st.findServiceByHostname('api.prod.svc', 'x')).toBe(s);
    expect(st.findServiceByHostname('api.prod.svc.cluster.local', 'x')).toBeUndefined();
  });
});

describe('findEndpoints: health and target-port resolution', () => {
  const ep = (s: Service, port: number, includeUnhealthy = false) =>
    state.findEndpoints(s, port, { includeUnhealthy }).map((e) => `${e.workload.name}:${e.targetPort}`);

  it.each([
    ['numeric target port, healthy only, no IP skipped', 80, false, ['backend-0:8080', 'backend-1:8080']],
    ['including unhealthy', 80, true, ['backend-0:8080', 'backend-1:8080', 'backend-2:8080']],
    ['named port resolved per workload; no mapping → excluded', 9000, false, ['backend-0:9100']],
    ['unknown service port', 81, true, []],
  ])('%s', (_n, port, unhealthy, want) => {
    expect(ep(shopBackend, port, unhealthy)).toEqual(want);
  });

  it('service targetPort used when the workload has no mapping for the port', () => {
    const s = svc('web', 'shop', '10.96.3.3', { 80: 8081 });
    const w = wl('web-0', 'shop', '10.0.3.3', { services: { 'shop/web.shop.svc.cluster.local': {} } });
    expect(MeshState.build({ workloads: [w], services: [s] }).findEndpoints(s, 80)).toEqual([
      { workload: w, targetPort: 8081 },
    ]);
  });

  it('AllowAll health policy includes unhealthy endpoints', () => {
    const s = {
      ...shopBackend,
      loadBalancing: { routingPreferences: [], mode: 'Standard', healthPolicy: 'AllowAll' } as LoadBalancing,
    };
    const st = MeshState.build({ workloads: [b0, b2], services: [s] });
    expect(st.findEndpoints(s, 80).map((e) => e.workload.name)).toEqual(['backend-0', 'backend-2']);
  });
});

describe('findWaypoint', () => {
  it('hostname form resolves to the waypoint service endpoints', () => {
    const gw: GatewayAddress = {
      destination: { kind: 'hostname', namespace: 'shop', hostname: 'waypoint.shop.svc.cluster.local' },
      hboneMtlsPort: 15008,
    };
    const r = state.findWaypoint(gw);
    expect(r?.service).toBe(wpSvc);
    expect(r?.endpoints).toEqual([{ workload: wp, targetPort: 15008 }]);
    expect(r?.instances).toEqual([wp]);
  });

  it('address form: a workload IP', () => {
    const r = state.findWaypoint({
      destination: { kind: 'address', network: '', ip: '10.0.0.30' },
      hboneMtlsPort: 15008,
    });
    expect(r?.endpoints).toEqual([{ workload: wp, targetPort: 15008 }]);
  });

  it('unknown address → undefined', () => {
    expect(
      state.findWaypoint({
        destination: { kind: 'hostname', namespace: 'x', hostname: 'nope' },
        hboneMtlsPort: 15008,
      }),
    ).toBeUndefined();
  });
});

describe('load balancing', () => {
  it('weighted random by capacity with an injected random', () => {
    const items = [
      { n: 'a', w: 1 },
      { n: 'b', w: 3 },
      { n: 'c', w: 0 },
    ];
    const pick = (r: number) =>
      pickWeighted(
        items,
        (i) => i.w,
        () => r,
      )?.n;
    expect([0, 0.24, 0.25, 0.99].map(pick)).toEqual(['a', 'a', 'b', 'b']);
    expect(
      pickWeighted(
        [],
        () => 1,
        () => 0,
      ),
    ).toBeUndefined();
    expect(
      pickWeighted(
        [
          { n: 'z', w: 0 },
          { n: 'y', w: 0 },
        ],
        (i) => i.w,
        () => 0.6,
      )?.n,
    ).toBe('y');
  });

  const src = wl('client', 'shop', '10.0.9.9', {
    locality: { region: 'eu', zone: 'eu-1', subzone: '' },
    node: 'n1',
  });
  const near = {
    workload: wl('near', 'shop', '10.0.9.1', { locality: { region: 'eu', zone: 'eu-1', subzone: '' } }),
    targetPort: 80,
  };
  const region = {
    workload: wl('region', 'shop', '10.0.9.2', { locality: { region: 'eu', zone: 'eu-2', subzone: '' } }),
    targetPort: 80,
  };
  const far = {
    workload: wl('far', 'shop', '10.0.9.3', { locality: { region: 'us', zone: 'us-1', subzone: '' } }),
    targetPort: 80,
  };
  const lb = (mode: LoadBalancing['mode']): LoadBalancing => ({
    routingPreferences: ['Network', 'Region', 'Zone'],
    mode,
    healthPolicy: 'OnlyHealthy',
  });

  it.each([
    ['Failover prefers the same zone', lb('Failover'), [near, region, far], ['near']],
    ['Failover falls back to the region', lb('Failover'), [region, far], ['region']],
    ['Failover falls back to anything', lb('Failover'), [far], ['far']],
    ['Strict keeps only full matches', lb('Strict'), [region, far], []],
    ['Standard ignores locality', lb('Standard'), [near, far], ['near', 'far']],
  ])('%s', (_n, config, endpoints, want) => {
    expect(
      filterByLocality({ endpoints, source: src, loadBalancing: config }).map((e) => e.workload.name),
    ).toEqual(want);
  });

  it('network match outranks everything after it', () => {
    const other = wl('x', 'shop', '10.0.9.4', { network: 'remote', locality: src.locality });
    expect(rankLocality(['Network', 'Region', 'Zone'], src, other)).toEqual({ rank: 2, complete: false });
    expect(rankLocality(['Network', 'Region', 'Zone'], src, far.workload)).toEqual({
      rank: 3,
      complete: false,
    });
  });

  it('pickEndpoint combines locality and weight', () => {
    const picked = pickEndpoint({
      endpoints: [far, near],
      source: src,
      loadBalancing: lb('Failover'),
      random: () => 0.9,
    });
    expect(picked?.workload.name).toBe('near');
  });

  it('selectWorkloadIp prefers the requested IP, then the same family', () => {
    const w = wl('dual', 'shop', ['10.0.0.1', 'fd00::1']);
    expect(selectWorkloadIp(w, 'fd00::1')).toBe('fd00::1');
    expect(selectWorkloadIp(w, 'fd00::99')).toBe('fd00::1');
    expect(selectWorkloadIp(w, '10.9.9.9')).toBe('10.0.0.1');
    expect(selectWorkloadIp(w)).toBe('10.0.0.1');
  });
});
