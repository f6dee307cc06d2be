/**
 * `meshd demo --check`: send traffic through the running demo mesh and verify, from the outside,
 * what a user would look at: the responses, the mTLS identities in the access logs, the Istio
 * metrics, the deny, the passthrough, readiness and certificates. Each check is independent and
 * reports what it saw when it fails.
 */
import http from 'node:http';
import { errorMessage } from '../errors.js';
import type { ChildDaemon, LogLine } from './children.js';
import type { DemoPlan } from './plan.js';
import type { RunningApp } from './sample-apps.js';
import { Socks5Error, socksAgent, socksConnect } from './socks5-client.js';
import { exchangeWebSocketMessage } from './websocket.js';

/** The demo mesh as started by the runner: what the checks look at. */
export interface RunningDemo {
  plan: DemoPlan;
  ztunnels: Map<string, ChildDaemon>;
  waypoints: ChildDaemon[];
  apps: RunningApp[];
}

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

interface HttpAnswer {
  status: number;
  body: Record<string, unknown>;
  headers: http.IncomingHttpHeaders;
}

function getVia(socksIp: string, url: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const agent = socksAgent({ host: socksIp, port: 15080 }, { keepAlive: false });
  return new Promise<HttpAnswer>((resolve, reject) => {
    const req = http.get(url, { agent, headers, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = { text };
        }
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timed out: ${url}`)));
    req.on('error', reject);
  }).finally(() => agent.destroy());
}

async function scrape(address: string): Promise<string> {
  const res = await fetch(`http://${address}:15020/metrics`);
  return res.text();
}

function sumMetric(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function waitForAccess(
  daemons: ChildDaemon[],
  pred: (l: LogLine) => boolean,
): Promise<LogLine | undefined> {
  try {
    return await Promise.any(daemons.map((d) => d.waitForLog((l) => l.scope === 'access' && pred(l), 5_000)));
  } catch {
    return undefined;
  }
}

const shareOf = (xs: string[], v: string) => xs.filter((x) => x === v).length / Math.max(1, xs.length);

export async function runDemoChecks(demo: RunningDemo): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const check = async (name: string, fn: () => Promise<string | undefined>) => {
    try {
      const problem = await fn();
      results.push({ name, ok: problem === undefined, detail: problem ?? '' });
    } catch (err) {
      results.push({ name, ok: false, detail: errorMessage(err) });
    }
  };
  const { plan } = demo;
  const ztunnels = [...demo.ztunnels.values()];
  const frontend = plan.apps.find((a) => a.kind === 'frontend');
  const intruder = plan.pods.find((p) => p.name.startsWith('intruder'));
  const legacy = plan.apps.find((a) => a.namespace === 'legacy');
  const waypoint = plan.waypoints[0];
  const backends = plan.apps.filter((a) => a.kind === 'echo' && a.namespace === frontend?.namespace);
  const v1Pods = backends.filter((a) => a.version === 'v1').map((a) => a.pod);
  if (!frontend?.upstream)
    return [
      {
        name: 'the demo config has a frontend pod with meshd.io/demo-upstream',
        ok: false,
        detail: 'nothing to check',
      },
    ];
  const upstream = `http://${frontend.upstream}`;
  const frontendSa = `spiffe://cluster.local/ns/${frontend.namespace}/sa/${frontend.pod.replace(/-\d+$/, '')}`;

  await check('every daemon is ready and every ztunnel holds Available certificates', async () => {
    for (const n of plan.nodes) {
      const ready = await fetch(`http://${n.address}:15021/healthz/ready`);
      if (ready.status !== 200)
        return `${n.name}: /healthz/ready answered ${ready.status}: ${await ready.text()}`;
      const dump = (await (await fetch(`http://${n.address}:15000/config_dump`)).json()) as {
        certificates: Array<{ identity: string; state: string }>;
      };
      const bad = dump.certificates.filter((c) => c.state !== 'Available');
      if (bad.length > 0 || dump.certificates.length === 0)
        return `${n.name}: certificates ${JSON.stringify(dump.certificates.map((c) => [c.identity, c.state]))}`;
    }
    for (const w of plan.waypoints) {
      const ready = await fetch(`http://${w.ip}:15021/healthz/ready`);
      if (ready.status !== 200) return `waypoint ${w.pod}: /healthz/ready answered ${ready.status}`;
    }
    return undefined;
  });

  await check(
    `${frontend.pod} → ${frontend.upstream}: 20 requests reach the v1 backends on both nodes`,
    async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const r = await getVia(frontend.ip, `${upstream}/check`);
        if (r.status !== 200) return `request ${i} answered ${r.status}: ${JSON.stringify(r.body)}`;
        seen.add(String(r.body.pod));
      }
      const missing = v1Pods.filter((p) => !seen.has(p));
      return missing.length === 0
        ? undefined
        : `never reached ${missing.join(', ')} (saw ${[...seen].join(', ')})`;
    },
  );

  const direct = backends.find((b) => b.version === 'v1');
  if (direct) {
    await check(
      `access logs show both mTLS identities (${frontend.pod} → ${direct.pod} by pod IP)`,
      async () => {
        const r = await getVia(frontend.ip, `http://${direct.ip}:${direct.port}/direct`, {
          connection: 'close',
        });
        if (r.status !== 200) return `answered ${r.status}`;
        const line = await waitForAccess(
          ztunnels,
          (l) =>
            l.direction === 'inbound' && l['dst.workload'] === direct.pod && l['src.identity'] === frontendSa,
        );
        if (!line) return `no inbound access-log line from ${frontendSa} at ${direct.pod}`;
        return String(line['dst.identity']).endsWith('/sa/backend')
          ? undefined
          : `dst.identity: ${String(line['dst.identity'])}`;
      },
    );
  }

  await check('Istio TCP metrics count mutual_tls connections on both nodes', async () => {
    for (const n of plan.nodes) {
      const text = await scrape(n.address);
      const mtls = sumMetric(text, 'istio_tcp_connections_opened_total', {
        connection_security_policy: 'mutual_tls',
      });
      if (mtls === 0) return `${n.name}: no mutual_tls connections in istio_tcp_connections_opened_total`;
    }
    return undefined;
  });

  await check(`the frontend app calls ${frontend.upstream} through the mesh`, async () => {
    const r = await getVia(frontend.ip, `http://frontend.${frontend.namespace}/`);
    const up = r.body.upstream as Record<string, unknown> | undefined;
    if (r.status !== 200 || !up?.pod) return `answered ${r.status}: ${JSON.stringify(r.body)}`;
    return undefined;
  });

  if (waypoint) {
    await check('the waypoint routes x-canary: true to v2 (10 of 10)', async () => {
      for (let i = 0; i < 10; i++) {
        const r = await getVia(frontend.ip, `${upstream}/canary`, { 'x-canary': 'true' });
        if (r.status !== 200 || r.body.version !== 'v2')
          return `request ${i}: ${r.status} version ${String(r.body.version)}`;
      }
      return undefined;
    });

    await check(
      'a WebSocket through the waypoint: upgraded (101), routed by x-canary to v2, echoed',
      async () => {
        const [host, port] = frontend.upstream!.split(':');
        const socket = await socksConnect({ host: frontend.ip, port: 15080 }, frontend.upstream!);
        const r = await exchangeWebSocketMessage(socket, `${host}:${port}`, '/ws', 'hello over the mesh', {
          'x-canary': 'true',
        });
        if (r.status !== 101) return `answered ${r.status}`;
        if (!r.acceptOk) return 'Sec-WebSocket-Accept does not match the key';
        if (r.headers['x-version'] !== 'v2')
          return `reached ${r.headers['x-pod']} (${r.headers['x-version']})`;
        return r.reply === 'hello over the mesh' ? undefined : `echo: ${String(r.reply)}`;
      },
    );

    await check(
      'the waypoint splits other traffic 90/10 (v2 share of 200 requests between 3 % and 20 %)',
      async () => {
        const versions: string[] = [];
        for (let i = 0; i < 200; i++)
          versions.push(String((await getVia(frontend.ip, `${upstream}/split`)).body.version));
        const v2 = shareOf(versions, 'v2');
        return v2 >= 0.03 && v2 <= 0.2 ? undefined : `v2 share ${(v2 * 100).toFixed(1)} %`;
      },
    );

    await check('L7 policy at the waypoint: /admin is denied with 403 RBAC: access denied', async () => {
      const r = await getVia(frontend.ip, `${upstream}/admin`);
      return r.status === 403 && r.body.text === 'RBAC: access denied'
        ? undefined
        : `answered ${r.status}: ${JSON.stringify(r.body)}`;
    });

    if (intruder) {
      await check(`${intruder.name} → ${frontend.upstream} is denied at the waypoint (403)`, async () => {
        const r = await getVia(intruder.ip, `${upstream}/`);
        return r.status === 403 ? undefined : `answered ${r.status}: ${JSON.stringify(r.body)}`;
      });
    }

    await check(
      'the waypoint sees the client pod identity; the backend ztunnel sees the waypoint identity',
      async () => {
        const wsa = `spiffe://cluster.local/ns/${waypoint.namespace}/sa/${waypoint.gateway}`;
        const viaWaypoint = await Promise.all(
          plan.nodes.map(async (n) =>
            sumMetric(await scrape(n.address), 'istio_tcp_connections_opened_total', {
              reporter: 'destination',
              source_principal: wsa,
            }),
          ),
        );
        if (viaWaypoint.every((v) => v === 0)) return `no destination-side connection from ${wsa}`;
        const w = await (await fetch(`http://${waypoint.ip}:15020/metrics`)).text();
        const fromFrontend = sumMetric(w, 'istio_requests_total', {
          source_principal: frontendSa,
          response_code: '200',
        });
        return fromFrontend > 0
          ? undefined
          : `the waypoint's istio_requests_total has no 200s from ${frontendSa}`;
      },
    );
  }

  if (intruder && direct) {
    await check(
      `${intruder.name} → ${direct.pod} by pod IP (bypassing the waypoint) is denied at L4 (401 at the destination)`,
      async () => {
        try {
          const s = await socksConnect({ host: intruder.ip, port: 15080 }, `${direct.ip}:${direct.port}`);
          s.destroy();
          return 'the connection was allowed';
        } catch (err) {
          if (!(err instanceof Socks5Error)) return `unexpected error: ${errorMessage(err)}`;
        }
        const line = await waitForAccess(
          ztunnels,
          (l) => l.status === 401 && l.response_flags === 'DENY' && l['dst.workload'] === direct.pod,
        );
        return line ? undefined : 'no 401/DENY access-log line at the destination';
      },
    );
  }

  if (legacy) {
    await check(
      `${frontend.pod} → ${legacy.pod} (outside the mesh) passes through as plain TCP`,
      async () => {
        const r = await getVia(frontend.ip, `http://legacy-web.legacy:${legacy.port}/`);
        if (r.status !== 200 || r.body.pod !== legacy.pod)
          return `answered ${r.status}: ${JSON.stringify(r.body)}`;
        const line = await waitForAccess(
          ztunnels,
          (l) => l.direction === 'outbound' && l['dst.workload'] === legacy.pod,
        );
        if (!line) return 'no outbound access-log line for the passthrough';
        if (line['src.identity'] !== undefined)
          return `passthrough should carry no identity: ${JSON.stringify(line)}`;
        return undefined;
      },
    );
  }
  return results;
}
