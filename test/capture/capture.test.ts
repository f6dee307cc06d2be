/**
 * Capture mode end to end, as Istio users run ambient: two nodes and their pods as network
 * namespaces (test/helpers/cluster.ts), one `meshd ztunnel --capture` per node running in the
 * node's namespace, apps in the pods' namespaces, Istio's in-pod iptables rules in the captured
 * pods. No SOCKS5 anywhere: applications connect to a service VIP or a pod IP and are captured.
 *
 *   node 1: client (captured, shop/sa client)      outsider (not enrolled, no rules)
 *   node 2: server (captured, shop/sa server) with an echo app on 8080, Service echo 10.77.250.10:80
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NetnsCluster,
  connectIn,
  exchangeIn,
  httpGetIn,
  listOwnNamespaces,
  listenIn,
  removeLeftovers,
  type ClusterNode,
  type ClusterPod,
} from '../helpers/cluster.js';
import { capture, captureNote } from '../helpers/privileges.js';
import { runCli, startDaemon, stopAll, type Daemon, type LogLine } from '../helpers/process.js';
import { metricSum, parsePrometheus, type Sample } from '../helpers/prom.js';

const TD = 'cluster.local';
const CLIENT_ID = `spiffe://${TD}/ns/shop/sa/client`;
const SERVER_ID = `spiffe://${TD}/ns/shop/sa/server`;
const ECHO_VIP = '10.77.250.10';
const LOOP_VIP = '10.77.250.11';
const ECHO_HOST = 'echo.shop.svc.cluster.local';

function meshYaml(
  c: { n1: ClusterNode; n2: ClusterNode; client: ClusterPod; server: ClusterPod; outsider: ClusterPod },
  strict: boolean,
): string {
  const node = (n: ClusterNode) =>
    `apiVersion: v1\nkind: Node\nmetadata: {name: node${n.id}}\nstatus: {addresses: [{type: InternalIP, address: ${n.ip}}]}\n`;
  const pod = (name: string, ns: string, sa: string, p: ClusterPod, app: string) =>
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: ${ns}\n  labels: {app: ${app}}\n  annotations: {meshd.io/netns: ${p.name}}\n` +
    `spec: {nodeName: node${p.node.id}, serviceAccountName: ${sa}}\nstatus: {podIP: ${p.ip}}\n`;
  const docs = [
    node(c.n1),
    node(c.n2),
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}\n`,
    `apiVersion: v1\nkind: Namespace\nmetadata: {name: legacy}\n`,
    pod('client', 'shop', 'client', c.client, 'client'),
    pod('server', 'shop', 'server', c.server, 'echo'),
    pod('outsider', 'legacy', 'default', c.outsider, 'outsider'),
    `apiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: shop}\nspec: {clusterIP: ${ECHO_VIP}, selector: {app: echo}, ports: [{name: tcp, port: 80, targetPort: 8080}]}\n`,
    // A Service whose target port is the server's own HBONE port: following it would loop.
    `apiVersion: v1\nkind: Service\nmetadata: {name: loop, namespace: shop}\nspec: {clusterIP: ${LOOP_VIP}, selector: {app: echo}, ports: [{name: tcp, port: 80, targetPort: 15008}]}\n`,
  ];
  if (strict) {
    docs.push(
      `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: strict, namespace: shop}\nspec: {mtls: {mode: STRICT}}\n`,
    );
  }
  return docs.join('---\n');
}

/**
 * What of ours could leak into the host's own network namespace: addresses and routes in
 * 10.77.0.0/16, and Istio's chains or the mesh marks in its iptables rules.
 */
function hostNetworkState(): string {
  const ours = (text: string, re: RegExp) =>
    text
      .split('\n')
      .filter((l) => re.test(l))
      .sort()
      .join('\n');
  const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
  return [
    ours(sh('ip', ['-o', 'addr', 'show']), /\b10\.77\./),
    ours(sh('ip', ['route', 'show', 'table', 'all']), /\b10\.77\./),
    ours(sh('ip', ['rule', 'show']), /0x111/),
    ours(sh('iptables-save', []), /ISTIO|0x539|0x111/),
  ].join('\n---\n');
}

describe.skipIf(!capture.ok)(`capture mode across two nodes${captureNote}`, () => {
  let cluster: NetnsCluster | undefined;
  let dir = '';
  let hostBefore = '';
  let n1: ClusterNode, n2: ClusterNode;
  let client: ClusterPod, server: ClusterPod, outsider: ClusterPod;
  let zt1: Daemon, zt2: Daemon;
  const apps: net.Server[] = [];
  /** Remote address of every connection the echo app accepted. */
  const appPeers: string[] = [];
  let writeConfig: (strict: boolean) => void;

  beforeAll(async () => {
    removeLeftovers();
    hostBefore = hostNetworkState();
    cluster = new NetnsCluster('t');
    n1 = cluster.addNode(1);
    n2 = cluster.addNode(2);
    client = cluster.addPod(n1, 2, { captured: true });
    outsider = cluster.addPod(n1, 3, { captured: false });
    server = cluster.addPod(n2, 2, { captured: true });
    apps.push(
      await listenIn(server, 8080, (s) => {
        appPeers.push(s.remoteAddress ?? '');
        s.on('error', () => s.destroy());
        s.pipe(s);
      }),
    );

    dir = mkdtempSync(join(tmpdir(), 'meshd-capture-'));
    const cfg = join(dir, 'mesh.yaml');
    writeConfig = (strict) => {
      writeFileSync(`${cfg}.tmp`, meshYaml({ n1, n2, client, server, outsider }, strict));
      renameSync(`${cfg}.tmp`, cfg);
    };
    writeConfig(false);
    const ca = await runCli(['ca', 'init', '--dir', join(dir, 'ca')]);
    expect(ca.code, ca.stderr).toBe(0);
    const args = (node: string) => [
      'ztunnel',
      '--capture',
      '--config',
      cfg,
      '--node',
      node,
      '--ca-dir',
      join(dir, 'ca'),
    ];
    zt1 = startDaemon('ztunnel-node1', args('node1'), {}, { netns: n1.name });
    zt2 = startDaemon('ztunnel-node2', args('node2'), {}, { netns: n2.name });
    for (const zt of [zt1, zt2]) {
      const started = await zt.waitForMsg('ztunnel started');
      expect(started.ready, zt.tail()).toBe(true);
      expect(started.mode).toBe('capture');
    }
  });

  afterAll(async () => {
    await stopAll();
    for (const a of apps) a.close();
    cluster?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
    // Everything lived in our namespaces: nothing may be left, in them or on the host.
    expect(listOwnNamespaces()).toEqual([]);
    if (hostBefore) expect(hostNetworkState()).toBe(hostBefore);
  });

  const metrics = async (node: ClusterNode): Promise<Sample[]> =>
    parsePrometheus(await httpGetIn(node, node.ip, 15020, '/metrics'));
  const accessLog = (zt: Daemon, pred: (l: LogLine) => boolean, what: string) =>
    zt.waitForLog((l) => l.scope === 'access' && pred(l), 10_000, what);

  it('installs the in-pod redirect rules only in captured pods, and the listeners inside them', () => {
    const rules = cluster?.iptablesSave(client) ?? '';
    expect(rules).toMatch(
      /-A ISTIO_OUTPUT ! -d 127\.0\.0\.1\/32 -p tcp .*! --mark 0x539\/0xfff -j REDIRECT --to-ports 15001/,
    );
    expect(rules).toMatch(
      /-A ISTIO_PRERT ! -d 127\.0\.0\.1\/32 -p tcp .*! --dport 15008 .*-j REDIRECT --to-ports 15006/,
    );
    expect(cluster?.iptablesSave(outsider)).not.toMatch(/ISTIO/);
    const up = zt1.lines.find((l) => l.msg === 'workload proxy started' && l.workload === 'shop/client');
    expect(up).toMatchObject({ hbone: 15008, socks5: 15080, outbound: 15001, inboundPlaintext: 15006 });
  });

  it('(a) a captured client reaches a service VIP and a pod IP on another node over mTLS, without SOCKS5', async () => {
    const viaVip = await exchangeIn(client, ECHO_VIP, 80, 'hello world');
    expect(viaVip).toEqual({ data: 'hello world' });
    const viaPod = await exchangeIn(client, server.ip, 8080, 'hello world');
    expect(viaPod).toEqual({ data: 'hello world' });
    // The app sees the client's own IP: the destination ztunnel dials it transparently.
    expect(appPeers.slice(-2)).toEqual([client.ip, client.ip]);

    const out = await accessLog(
      zt1,
      (l) =>
        l.direction === 'outbound' &&
        l['dst.hbone_addr'] === `${server.ip}:8080` &&
        l['dst.service'] === ECHO_HOST,
      'outbound access log for the VIP',
    );
    expect(out).toMatchObject({
      'src.workload': 'client',
      'src.identity': CLIENT_ID,
      'dst.addr': `${server.ip}:15008`,
      'dst.workload': 'server',
      'dst.identity': SERVER_ID,
      bytes_sent: 11,
      bytes_recv: 11,
    });
    expect(String(out['src.addr'])).toMatch(new RegExp(`^${client.ip.replace(/\./g, '\\.')}:`));
    const inb = await accessLog(
      zt2,
      (l) => l.direction === 'inbound' && l['dst.service'] === ECHO_HOST,
      'inbound access log for the VIP',
    );
    expect(inb).toMatchObject({
      'src.identity': CLIENT_ID,
      'src.workload': 'client',
      'dst.identity': SERVER_ID,
      'dst.hbone_addr': `${server.ip}:8080`,
      status: 200,
    });
    // The pod-IP connection has no service; the destination guesses it from the target port.
    await zt2.waitForLog(
      () =>
        zt2.accessLogs().filter((l) => l.direction === 'inbound' && l['src.identity'] === CLIENT_ID).length >=
        2,
      10_000,
      'the inbound log for the pod IP',
    );

    const mtls = {
      source_principal: CLIENT_ID,
      destination_principal: SERVER_ID,
      source_workload: 'client',
      destination_workload: 'echo',
      connection_security_policy: 'mutual_tls',
      response_flags: '-',
    };
    const src = await metrics(n1);
    expect(metricSum(src, 'istio_tcp_connections_opened_total', { reporter: 'source', ...mtls })).toBe(2);
    expect(metricSum(src, 'istio_tcp_received_bytes_total', { reporter: 'source', ...mtls })).toBe(22);
    expect(metricSum(src, 'istio_tcp_sent_bytes_total', { reporter: 'source', ...mtls })).toBe(22);
    expect(
      metricSum(src, 'istio_tcp_connections_closed_total', {
        reporter: 'source',
        destination_service: ECHO_HOST,
      }),
    ).toBe(1);
    const dst = await metrics(n2);
    expect(metricSum(dst, 'istio_tcp_connections_closed_total', { reporter: 'destination', ...mtls })).toBe(
      2,
    );
    expect(metricSum(dst, 'istio_tcp_received_bytes_total', { reporter: 'destination', ...mtls })).toBe(22);
  });

  it('(c) loops through capture are refused', async () => {
    const refused = (r: { data: string; error?: string }) => expect(r.data).toBe('');
    // Straight at the captured-outbound and plaintext-inbound listeners: their original
    // destination is the listener itself.
    refused(await exchangeIn(client, '127.0.0.1', 15001, 'loop'));
    await accessLog(
      zt1,
      (l) =>
        l.direction === 'outbound' &&
        l['dst.addr'] === '127.0.0.1:15001' &&
        /loop back/.test(String(l.error)),
      'loop refusal at 15001',
    );
    refused(await exchangeIn(client, client.ip, 15006, 'loop'));
    await accessLog(
      zt1,
      (l) =>
        l.msg === 'connection failed' &&
        l['dst.addr'] === `${client.ip}:15006` &&
        /recursive/.test(String(l.error)),
      'loop refusal at 15006',
    );
    // Captured on the way out: the server pod's ztunnel port, directly or through a Service.
    refused(await exchangeIn(client, server.ip, 15008, 'loop'));
    await accessLog(
      zt1,
      (l) =>
        l['dst.addr'] === `${server.ip}:15008` &&
        l.direction === 'outbound' &&
        /loop back/.test(String(l.error)),
      'loop refusal for the server ztunnel port',
    );
    refused(await exchangeIn(client, LOOP_VIP, 80, 'loop'));
    await accessLog(
      zt1,
      (l) => l['dst.addr'] === `${LOOP_VIP}:80` && /loop back/.test(String(l.error)),
      'loop refusal through a Service targeting 15008',
    );
    // The app's own pod IP is not captured (it leaves through lo): its ztunnel's 15008 only
    // speaks mTLS, so plaintext gets nothing back.
    refused(await exchangeIn(client, client.ip, 15008, 'loop'));
    expect(appPeers).toHaveLength(2);
  });

  it('(b) plaintext from outside the mesh is allowed, then rejected once PeerAuthentication is STRICT', async () => {
    expect(await exchangeIn(outsider, server.ip, 8080, 'plain')).toEqual({ data: 'plain' });
    expect(appPeers.at(-1)).toBe(outsider.ip);
    const allowed = await accessLog(
      zt2,
      (l) => l.direction === 'inbound' && String(l['src.addr']).startsWith(`${outsider.ip}:`),
      'plaintext inbound access log',
    );
    expect(allowed).toMatchObject({
      'src.workload': 'outsider',
      'dst.workload': 'server',
      'dst.addr': `${server.ip}:8080`,
      bytes_recv: 5,
      bytes_sent: 5,
    });
    expect(allowed['src.identity']).toBeUndefined();
    expect(allowed.error).toBeUndefined();
    const plain = {
      reporter: 'destination',
      source_workload: 'outsider',
      source_principal: 'unknown',
      destination_principal: SERVER_ID,
      connection_security_policy: 'unknown',
    };
    let dst = await metrics(n2);
    expect(metricSum(dst, 'istio_tcp_connections_closed_total', { ...plain, response_flags: '-' })).toBe(1);
    expect(metricSum(dst, 'istio_tcp_received_bytes_total', plain)).toBe(5);
    expect(zt1.accessLogs().some((l) => String(l['src.addr']).startsWith(`${outsider.ip}:`))).toBe(false);

    // A live plaintext connection, open while the policy changes.
    const live = connectIn(outsider, server.ip, 8080);
    live.setEncoding('utf8');
    // Closed from the far side: FIN ('end', the socket is half-open) or reset ('close').
    const liveClosed = new Promise<void>((resolve) => {
      live.once('end', () => resolve());
      live.once('close', () => resolve());
    });
    live.on('error', () => live.destroy());
    await once(live, 'connect');
    live.write('live');
    expect(String((await once(live, 'data'))[0])).toBe('live');

    writeConfig(true);
    await zt2.waitForLog((l) => l.msg === 'config loaded' && l.generation === 2, 10_000, 'the STRICT config');
    // Late enforcement: the live connection is closed by the policy change.
    await liveClosed;
    const closedByPolicy = await accessLog(
      zt2,
      (l) => /policy change/.test(String(l.error)) && String(l['src.addr']).startsWith(`${outsider.ip}:`),
      'the policy-change close',
    );
    expect(closedByPolicy).toMatchObject({ response_flags: 'DENY', bytes_recv: 4, bytes_sent: 4 });
    live.destroy();

    const denied = await exchangeIn(outsider, server.ip, 8080, 'plain');
    expect(denied.data).toBe('');
    const deny = await accessLog(
      zt2,
      (l) => /policy rejection/.test(String(l.error)) && String(l['src.addr']).startsWith(`${outsider.ip}:`),
      'the DENY access log',
    );
    expect(String(deny.error)).toMatch(
      /policy rejection: explicitly denied by: istio-system\/istio_converted_static_strict/,
    );
    dst = await metrics(n2);
    // One closed by the policy change, one refused.
    expect(metricSum(dst, 'istio_tcp_connections_closed_total', { ...plain, response_flags: 'DENY' })).toBe(
      2,
    );
    expect(appPeers.filter((p) => p === outsider.ip)).toHaveLength(2);

    // mTLS traffic carries an identity, so STRICT lets it through.
    expect(await exchangeIn(client, ECHO_VIP, 80, 'still fine')).toEqual({ data: 'still fine' });
  });
});
