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
  const backendPods = plan.apps
    .filter((a) => a.kind === 'echo' && a.namespace === frontend?.namespace)
    .map((a) => a.pod);
  if (!frontend?.upstream)
    return [
      {
        name: 'the demo config has a frontend pod with meshd.io/demo-upstream',
        ok: false,
        detail: 'nothing to check',
      },
    ];
  const upstream = `http://${frontend.upstream}/check`;

  await check('every ztunnel is ready and holds Available certificates', async () => {
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
    return undefined;
  });

  await check(
    `${frontend.pod} → ${frontend.upstream}: 20 requests over mTLS reach backends on both nodes`,
    async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const r = await getVia(frontend.ip, upstream);
        if (r.status !== 200) return `request ${i} answered ${r.status}: ${JSON.stringify(r.body)}`;
        seen.add(String(r.body.pod));
      }
      const missing = backendPods.filter((p) => !seen.has(p) && !p.includes('v2'));
      return missing.length === 0
        ? undefined
        : `never reached ${missing.join(', ')} (saw ${[...seen].join(', ')})`;
    },
  );

  await check('access logs show the mTLS identities on the destination side', async () => {
    const line = await waitForAccess(
      ztunnels,
      (l) =>
        l.direction === 'inbound' &&
        l.status === 200 &&
        String(l['src.identity']).endsWith(`/sa/${frontend.pod.replace(/-\d+$/, '')}`),
    );
    if (!line) return 'no inbound access-log line from the frontend identity';
    if (!String(line['dst.identity']).startsWith('spiffe://cluster.local/ns/'))
      return `dst.identity missing: ${JSON.stringify(line)}`;
    return undefined;
  });

  await check('Istio TCP metrics count mutual_tls connections on both nodes', async () => {
    for (const n of plan.nodes) {
      const text = await scrape(n.address);
      const mtls = sumMetric(text, 'istio_tcp_connections_closed_total', {
        connection_security_policy: 'mutual_tls',
      });
      if (mtls === 0) return `${n.name}: no mutual_tls connections in istio_tcp_connections_closed_total`;
    }
    return undefined;
  });

  await check(`the frontend app calls ${frontend.upstream} through the mesh`, async () => {
    const r = await getVia(frontend.ip, `http://frontend.${frontend.namespace}/`);
    const up = r.body.upstream as Record<string, unknown> | undefined;
    if (r.status !== 200 || !up?.pod) return `answered ${r.status}: ${JSON.stringify(r.body)}`;
    return undefined;
  });

  if (intruder) {
    await check(
      `${intruder.name} → ${frontend.upstream} is denied by the AuthorizationPolicy (401 at the destination)`,
      async () => {
        try {
          const s = await socksConnect({ host: intruder.ip, port: 15080 }, frontend.upstream ?? '');
          s.destroy();
          return 'the connection was allowed';
        } catch (err) {
          if (!(err instanceof Socks5Error)) return `unexpected error: ${errorMessage(err)}`;
        }
        const line = await waitForAccess(ztunnels, (l) => l.status === 401 && l.response_flags === 'DENY');
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
