// Identity bench: how fast the mesh CA issues certificates (one thread), and how many full mTLS
// handshakes HBONE's TLS settings sustain (TLS 1.3, client certificate verified, SPIFFE checks,
// a new connection each time over loopback, server and client in separate processes).
//
// Run with `npm run bench -- identity [--quick]`. Imports the compiled code from dist/.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Name } from '@peculiar/asn1-x509';

const SERVER_FLAG = '--identity-bench-tls-server';
const DIST = new URL('../dist/identity/', import.meta.url);
const TD = 'cluster.local';
const uri = (sa) => `spiffe://${TD}/ns/bench/sa/${sa}`;

async function loadDist() {
  if (!existsSync(new URL('index.js', DIST))) throw new Error('dist/ is missing: run `npm run build` first');
  const identity = await import(new URL('index.js', DIST).href);
  const x509 = await import(new URL('x509.js', DIST).href);
  const csr = await import(new URL('csr.js', DIST).href);
  return { identity, x509, csr };
}

/** Operations per second of `fn` over `ms` of wall time, single thread (after a short warm-up). */
function rate(fn, ms) {
  for (let i = 0; i < 50; i++) fn(i);
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let k = 0; k < 10; k++) fn(n++);
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median of `rounds` runs: the machine is shared, so one run can land on a busy moment. */
function measure(fn, ms, rounds) {
  const runs = [];
  for (let r = 0; r < rounds; r++) runs.push(rate(fn, ms));
  return median(runs);
}

async function issuance({ identity, x509, csr }, ms, rounds, log) {
  const { MeshCa, buildCsr, parseCsr, generateP256, issueWorkloadCertificate } = identity;
  const root = MeshCa.create();
  const withIntermediate = MeshCa.create({ intermediate: true });
  const csrs = Array.from({ length: 256 }, (_, i) => buildCsr(uri(`sa-${i}`)).csrPem);
  const ttlMs = 86_400_000;
  const rows = [];
  const add = (key, label, fn) => {
    const perSec = measure(fn, ms, rounds);
    rows.push({ key, label, perSec });
    log(`${label}: ${Math.round(perSec)}/s`);
  };
  add('signCsr', 'CA signs a CSR (parse, verify, issue leaf), root signer', (i) =>
    root.sign(csrs[i % csrs.length], { ttlMs }),
  );
  add('signCsrIntermediate', 'CA signs a CSR, intermediate signer', (i) =>
    withIntermediate.sign(csrs[i % csrs.length], { ttlMs }),
  );
  add('endToEnd', 'end to end: P-256 keygen + CSR + CA signs', (i) =>
    issueWorkloadCertificate(root, uri(`e2e-${i % 64}`), ttlMs),
  );
  add('keygen', 'part: P-256 key for a CSR (ECDH, imported as a KeyObject)', () => csr.newP256Key());
  add('buildCsr', 'part: keygen + build and sign a CSR', (i) => buildCsr(uri(`c-${i % 64}`)));
  add('parseCsr', 'part: parse and verify a CSR', (i) => parseCsr(csrs[i % csrs.length]));

  // Leaf encoding + signature alone: the DER template against the generic @peculiar/asn1-x509 path.
  const issuerKey = generateP256();
  const issuerName = x509.distinguishedName(TD, 'bench CA');
  const issuerKeyId = x509.keyIdOf(x509.spkiOf(issuerKey.publicKey));
  const subject = generateP256().publicKey;
  const subjectSpki = x509.spkiOf(subject);
  const spkiDer = subject.export({ type: 'spki', format: 'der' });
  const bits = new Uint8Array(subjectSpki.subjectPublicKey);
  const template = new x509.LeafTemplate(issuerName, issuerKeyId, issuerKey.privateKey);
  const now = Date.now();
  add('leafTemplate', 'part: encode + sign a leaf, DER template', () =>
    template.issue(spkiDer, bits, uri('leaf'), now, now + ttlMs),
  );
  add('leafGeneric', 'part: encode + sign a leaf, generic @peculiar/asn1-x509', () =>
    x509.buildCertificate(
      {
        subject: new Name(), // empty, as in every workload certificate
        issuer: issuerName,
        subjectKey: subjectSpki,
        issuerKeyId,
        notBeforeMs: now,
        notAfterMs: now + ttlMs,
        isCa: false,
        uris: [uri('leaf')],
      },
      issuerKey.privateKey,
    ),
  );
  return rows;
}

// ---- mTLS handshakes: the server runs in a child process --------------------------------------

async function runServer() {
  const { identity } = await loadDist();
  process.on('message', (msg) => {
    if (msg.type === 'start') {
      const cert = msg.cert;
      const server = tls.createServer(identity.serverTlsOptions(cert, 10_000));
      let accepted = 0;
      let refused = 0;
      server.on('secureConnection', (socket) => {
        const peer = identity.verifyClientPeer(socket, cert.identity.trustDomain);
        if (!peer.ok) {
          refused++;
          socket.destroy();
          return;
        }
        accepted++;
        socket.on('error', () => {});
        socket.end('k'); // one byte: the client knows its certificate was checked and accepted
      });
      server.on('tlsClientError', () => refused++);
      server.listen(0, '127.0.0.1', () => {
        process.send({ type: 'listening', port: server.address().port });
      });
      process.on('message', (m) => {
        if (m.type === 'cpu-mark')
          process.send({ type: 'cpu', usage: process.cpuUsage(), accepted, refused });
        if (m.type === 'stop') server.close(() => process.exit(0));
      });
    }
  });
}

function ask(child, type, reply) {
  const p = new Promise((resolve) => {
    const on = (m) => {
      if (m.type === reply) {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
  });
  child.send({ type });
  return p;
}

async function handshakes({ identity }, ms, concurrency, log) {
  const ca = identity.MeshCa.create();
  const serverCert = identity.issueWorkloadCertificate(ca, uri('server'), 86_400_000);
  const clientCert = identity.issueWorkloadCertificate(ca, uri('client'), 86_400_000);
  const child = fork(fileURLToPath(import.meta.url), [SERVER_FLAG], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const listening = new Promise((resolve) => child.once('message', resolve));
    child.send({ type: 'start', cert: serverCert });
    const { port } = await listening;
    const context = identity.buildSecureContext(clientCert);
    const options = { host: '127.0.0.1', port, ...identity.clientTlsOptions(context, [serverCert.uri]) };

    const one = () =>
      new Promise((resolve, reject) => {
        const t0 = performance.now();
        const s = tls.connect(options);
        let ok = false;
        let proto = '';
        s.once('secureConnect', () => {
          proto = `${s.getProtocol()} ${s.getCipher().standardName} ${s.alpnProtocol}`;
        });
        s.once('data', () => {
          ok = true;
          s.destroy();
        });
        s.once('error', (err) => reject(err));
        s.once('close', () =>
          ok ? resolve({ ms: performance.now() - t0, proto }) : reject(new Error('closed early')),
        );
      });

    const runFor = async (durationMs) => {
      const latencies = [];
      let proto = '';
      const deadline = performance.now() + durationMs;
      const worker = async () => {
        while (performance.now() < deadline) {
          const r = await one();
          latencies.push(r.ms);
          proto = r.proto;
        }
      };
      const t0 = performance.now();
      await Promise.all(Array.from({ length: concurrency }, worker));
      return { latencies, seconds: (performance.now() - t0) / 1000, proto };
    };

    await runFor(Math.min(300, ms)); // warm-up
    const before = await ask(child, 'cpu-mark', 'cpu');
    const clientCpu0 = process.cpuUsage();
    const { latencies, seconds, proto } = await runFor(ms);
    const clientCpu = process.cpuUsage(clientCpu0);
    const after = await ask(child, 'cpu-mark', 'cpu');
    const n = latencies.length;
    const serverCpuUs = after.usage.user + after.usage.system - (before.usage.user + before.usage.system);
    const sorted = latencies.sort((a, b) => a - b);
    const result = {
      handshakesPerSec: n / seconds,
      handshakes: n,
      concurrency,
      p50Ms: sorted[Math.floor(n * 0.5)],
      p99Ms: sorted[Math.floor(n * 0.99)],
      serverCpuUsPerHandshake: serverCpuUs / n,
      clientCpuUsPerHandshake: (clientCpu.user + clientCpu.system) / n,
      refusedByServer: after.refused - before.refused,
      negotiated: proto,
    };
    log(`mTLS: ${Math.round(result.handshakesPerSec)}/s, ${result.negotiated}`);
    return result;
  } finally {
    child.send({ type: 'stop' });
    await once(child, 'exit');
  }
}

const fmt = (x) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));

export async function run({ quick = false, log = () => {} } = {}) {
  const dist = await loadDist();
  const ms = quick ? 300 : 2000;
  const rounds = quick ? 1 : 3;
  const rows = await issuance(dist, ms, rounds, log);
  const tlsResult = await handshakes(dist, quick ? 1000 : 5000, 8, log);
  const sign = rows.find((r) => r.key === 'signCsr').perSec;

  const lines = [
    `Single thread, median of ${rounds} run(s) of ${ms} ms each. Target: ≥ 1,000 certificates/s on one core — ` +
      `${sign >= 1000 ? 'met' : 'NOT met'} (${fmt(sign)}/s).`,
    '',
    '| certificates | per second | µs each |',
    '|---|---:|---:|',
    ...rows.map((r) => `| ${r.label} | ${fmt(r.perSec)} | ${fmt(1e6 / r.perSec)} |`),
    '',
    `Full mTLS handshakes: new TCP + TLS connection each time over loopback, ${tlsResult.negotiated}, ` +
      'client certificate verified by the server plus its SPIFFE trust-domain check, server SAN checked by the client, ' +
      `then one byte back; server in its own process, ${tlsResult.concurrency} connections in flight.`,
    '',
    '| handshakes/s | p50 | p99 | server CPU per handshake | client CPU per handshake |',
    '|---:|---:|---:|---:|---:|',
    `| ${fmt(tlsResult.handshakesPerSec)} | ${tlsResult.p50Ms.toFixed(2)} ms | ${tlsResult.p99Ms.toFixed(2)} ms | ` +
      `${fmt(tlsResult.serverCpuUsPerHandshake)} µs | ${fmt(tlsResult.clientCpuUsPerHandshake)} µs |`,
  ];
  return {
    title: 'Identity: certificate issuance and mTLS handshakes',
    markdown: lines.join('\n'),
    data: {
      issuance: Object.fromEntries(rows.map((r) => [r.key, Math.round(r.perSec)])),
      mtls: tlsResult,
      settings: { ms, rounds },
    },
  };
}

if (process.argv.includes(SERVER_FLAG)) await runServer();
