/**
 * The waypoint process's life: bad command lines and configs are refused with what to fix,
 * SIGTERM drains (in-flight requests finish, nothing new is accepted), and with the waypoint
 * down — or no ready instance at all — connections to its Services fail closed instead of
 * bypassing its policy. A restarted waypoint serves again.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApp } from '../../src/demo/sample-apps.js';
import { eventually } from '../helpers/prom.js';
import { runCli } from '../helpers/process.js';
import { pod, WaypointMesh } from './fixture.js';

const A = '127.0.59';
const B = '127.0.60';
const VIP = '127.10.59';

const mesh = new WaypointMesh({ a: A, b: B, vip: VIP });
const apps: RunningApp[] = [];
const served = (): number => apps.reduce((n, a) => n + a.count(), 0);

beforeAll(async () => {
  apps.push(...Object.values(await mesh.startReviews()));
  await mesh.start();
});

afterAll(async () => {
  await mesh.teardown(apps);
});

describe('meshd waypoint command line', () => {
  const waypoint = (config: string, ...args: string[]) =>
    runCli(['waypoint', '--config', config, '--ca-dir', mesh.caDir, ...args]);

  it.each([
    [['--name', 'nope', '--namespace', 'shop'], /no Gateway "nope" in namespace "shop"/],
    [
      ['--name', 'waypoint', '--namespace', 'shop', '--pod', 'client-0'],
      /client-0 is not an instance of waypoint waypoint/,
    ],
  ])('refuses %j with what to fix', async (args, message) => {
    const r = await waypoint(mesh.configPath, ...args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/\n {2}fix: /);
  });

  it('refuses a Gateway of another class and an ambiguous instance', async () => {
    const other = join(mesh.dir, 'other.yaml');
    writeFileSync(
      other,
      mesh.yaml([
        `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: ingress, namespace: shop}\nspec: {gatewayClassName: istio, listeners: [{name: http, port: 80, protocol: HTTP}]}`,
        pod(
          'waypoint-1',
          'shop',
          'node-b',
          `${B}.31`,
          { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
          'waypoint',
        ),
      ]),
    );
    const ingress = await waypoint(other, '--name', 'ingress', '--namespace', 'shop');
    expect(ingress.stderr).toMatch(/gatewayClassName "istio", so it is not a waypoint/);
    const ambiguous = await waypoint(other, '--name', 'waypoint', '--namespace', 'shop');
    expect(ambiguous.stderr).toMatch(
      /has 2 instance Pods \(waypoint-0, waypoint-1\).*\n {2}fix: pass --pod <name>/,
    );
    expect(ambiguous.code).toBe(1);
  });
});

describe('waypoint lifecycle end to end', () => {
  it('SIGTERM lets an in-flight request finish, then connections fail closed', async () => {
    const agent = mesh.agent();
    expect((await mesh.request(agent, 'reviews.shop:80', '/')).status).toBe(200);
    const inflight = mesh.request(agent, 'reviews.shop:80', '/delay/800');
    await eventually(() =>
      served() >= 2
        ? Promise.resolve()
        : Promise.reject(new Error('the delayed request has not arrived yet')),
    );
    const w = mesh.wp();
    w.signal('SIGTERM');
    await w.waitForMsg('draining');
    expect((await inflight).status).toBe(200);
    const drained = await w.waitForMsg('drained');
    expect(drained.graceful).toBe(true);
    expect(await w.exited).toBe(0);

    // Down: the client's ztunnel cannot reach the waypoint and refuses; the backends see nothing.
    const before = served();
    const fresh = mesh.agent();
    await expect(mesh.request(fresh, 'reviews.shop:80', '/')).rejects.toThrow(/SOCKS5 CONNECT failed/);
    expect(served()).toBe(before);
  });

  it('with no ready waypoint instance, ztunnel refuses instead of going direct', async () => {
    // The waypoint's pod, now not Ready: there is no instance to send to.
    mesh.waypointReady = false;
    await mesh.apply(['# waypoint not ready']);
    const before = served();
    await expect(mesh.request(mesh.agent(), 'reviews.shop:80', '/')).rejects.toThrow(/SOCKS5 CONNECT failed/);
    const refused = await mesh
      .ztunnel('node-a')
      .waitForLog((l) => typeof l.error === 'string' && l.error.includes('no ready instance'));
    expect(refused.error).toMatch(/rather than bypassing the waypoint's policy/);
    expect(served()).toBe(before);
  });

  it('a restarted waypoint serves again, and /quitquitquit stops it', async () => {
    mesh.waypointReady = true;
    await mesh.apply([]);
    await mesh.startWaypoint();
    const r = await mesh.request(mesh.agent(), 'reviews.shop:80', '/');
    expect(r.status).toBe(200);
    // The admin API shuts it down as SIGTERM does.
    const quit = await fetch(`http://${mesh.waypointIp}:15000/quitquitquit`, { method: 'POST' });
    expect(quit.status).toBe(200);
    expect(await mesh.wp().exited).toBe(0);
  });
});
