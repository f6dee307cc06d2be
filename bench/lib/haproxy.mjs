// An HAProxy L4 pair, the native reference of the same shape as two ztunnels: client → haproxy A
// (plain TCP in) → mutual TLS 1.3 → haproxy B → the app. Both in TCP mode, one thread each (as
// each meshd process is one event loop), with certificates issued by the same mesh CA.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

export function haproxyVersion() {
  try {
    const out = execFileSync('haproxy', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return /version (\S+)/.exec(out)?.[1] ?? 'unknown';
  } catch {
    return undefined;
  }
}

function issue(mesh, sa) {
  const cert = mesh.issue(`spiffe://cluster.local/ns/bench/sa/${sa}`);
  const pem = join(mesh.dir, `${sa}.pem`);
  const root = join(mesh.dir, `${sa}-root.pem`);
  writeFileSync(pem, [...cert.chainPem, cert.keyPem].join('\n'));
  writeFileSync(root, cert.rootsPem.join('\n'));
  return { pem, root };
}

const GLOBAL = `global
  nbthread 1
  maxconn 4096
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
`;

function waitListening(host, port, proc, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect({ host, port });
      s.once('connect', () => (s.destroy(), resolve()));
      s.once('error', () => {
        if (proc.exitCode !== null) return reject(new Error(`${proc.name} exited:\n${proc.tail()}`));
        if (Date.now() > deadline) return reject(new Error(`${proc.name} not listening on ${host}:${port}`));
        setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/** Start the pair (a bad config makes haproxy exit, reported with its output); returns { entry, procs: [a, b] }. */
export async function startHaproxyPair(group, mesh, { aIp, bIp, app }) {
  const a = issue(mesh, 'haproxy-a');
  const b = issue(mesh, 'haproxy-b');
  const aCfg = join(mesh.dir, 'haproxy-a.cfg');
  const bCfg = join(mesh.dir, 'haproxy-b.cfg');
  writeFileSync(
    aCfg,
    `${GLOBAL}listen hop-a
  bind ${aIp}:9000
  server hop-b ${bIp}:9443 ssl crt ${a.pem} ca-file ${a.root} verify required
`,
  );
  writeFileSync(
    bCfg,
    `${GLOBAL}listen hop-b
  bind ${bIp}:9443 ssl crt ${b.pem} ca-file ${b.root} verify required
  server app ${app.host}:${app.port}
`,
  );
  const pb = group.spawn('haproxy B', 'haproxy', ['-db', '-f', bCfg]);
  const pa = group.spawn('haproxy A', 'haproxy', ['-db', '-f', aCfg]);
  await Promise.all([waitListening(bIp, 9443, pb), waitListening(aIp, 9000, pa)]);
  return { entry: { host: aIp, port: 9000 }, procs: [pa, pb] };
}
