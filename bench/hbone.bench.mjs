// HBONE bench: bulk throughput (direct TCP, a plain TLS relay pair, HBONE), memory per idle
// tunnel on each side, and new tunnels per second on a warm pool.
//
// Topology (all on 127.0.0.1): the load generator (client and sink) runs in this process; each
// proxy side runs in its own child process (this same file, started with --child <role>), so
// that each side's RSS can be measured and the two sides can use both cores, as two nodes would.
//   direct:    client ─TCP─ sink
//   tls-relay: client ─TCP─ [relay A] ═TLS 1.3═ [relay B] ─TCP─ sink      (the reference)
//   hbone:     client ─TCP─ [entry → HbonePool] ═mTLS+HTTP/2 CONNECT═ [HboneServer] ─TCP─ sink
// Uses the compiled code in dist/ (npm run bench builds it; or npx tsc -p tsconfig.build.json).
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import h2 from 'node:http2';
import net from 'node:net';
import { pipeline } from 'node:stream';
import tls from 'node:tls';
import { setImmediate } from 'node:timers';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', 'dist');
const MiB = 1024 * 1024;
const CLIENT_ID = 'spiffe://cluster.local/ns/bench/sa/client';
const SERVER_ID = 'spiffe://cluster.local/ns/bench/sa/server';

async function load(mod) {
  const file = join(dist, mod);
  if (!existsSync(file)) throw new Error(`${file} is missing: run npx tsc -p tsconfig.build.json first`);
  return import(pathToFileURL(file).href);
}

// ───────────────────────────── child side ─────────────────────────────

async function childMain(role) {
  const [init] = await once(process, 'message');
  const hbone = await load('hbone/index.js');
  const identity = await load('identity/index.js');
  const { DEFAULT_CONFIG } = await load('config.js');
  const http2 = { ...DEFAULT_CONFIG.http2, ...init.http2 };
  const pool = { ...DEFAULT_CONFIG.pool, ...init.pool };
  let port = 0;
  let hbonePool;
  /** Objects held idle by the floor roles. */
  const held = [];
  const request = () => ({
    source: { identity: CLIENT_ID, cert: init.clientCert },
    expectedIdentities: [SERVER_ID],
    dst: { ip: '127.0.0.1', port: init.peerPort },
    authority: `127.0.0.1:${init.targetPort}`,
    headers: { forwarded: 'for="127.0.0.1:1"', traceparent: hbone.buildTraceparent() },
  });

  if (role === 'hbone-client') {
    hbonePool = new hbone.HbonePool({ http2, pool });
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => {
      sock.on('error', () => {});
      hbonePool.connect(request()).then(
        (stream) => {
          hbone.copyBidirectional(sock, stream);
          sock.resume();
        },
        () => sock.destroy(),
      );
    });
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
    await once(server, 'listening');
    port = server.address().port;
  } else if (role === 'hbone-server') {
    const server = new hbone.HboneServer({
      certificate: init.serverCert,
      http2,
      policy: () => ({ ok: true, target: { host: '127.0.0.1', port: init.targetPort } }),
    });
    port = (await server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 })).port;
  } else if (role === 'tls-a') {
    const ctx = identity.buildSecureContext(init.clientCert);
    const server = net.createServer((c) => {
      const t = tls.connect({
        ...identity.clientTlsOptions(ctx, [SERVER_ID]),
        host: '127.0.0.1',
        port: init.peerPort,
      });
      c.setNoDelay(true);
      t.setNoDelay(true);
      pipeline(c, t, () => {});
      pipeline(t, c, () => {});
    });
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
    await once(server, 'listening');
    port = server.address().port;
  } else if (role === 'tls-b') {
    const server = tls.createServer(identity.serverTlsOptions(init.serverCert, 10_000), (t) => {
      const c = net.connect({ host: '127.0.0.1', port: init.targetPort, noDelay: true });
      pipeline(t, c, () => {});
      pipeline(c, t, () => {});
    });
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
    await once(server, 'listening');
    port = server.address().port;
  } else if (role === 'floor-tcp') {
    const server = net.createServer((c) => held.push(c));
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
    await once(server, 'listening');
    port = server.address().port;
  } else if (role === 'floor-h2-server') {
    const server = h2.createServer({ settings: { maxConcurrentStreams: 1e6 }, maxSessionMemory: 1e4 });
    server.on('stream', (st) => {
      st.on('error', () => {});
      st.respond({ ':status': 200 });
      held.push(st);
    });
    server.listen({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    port = server.address().port;
  } else if (role === 'floor-h2-client') {
    // Streams are opened on request ('open'), to a server in the parent.
  } else {
    throw new Error(`unknown role ${role}`);
  }

  process.on('message', async (m) => {
    if (m.cmd === 'rss') {
      for (let i = 0; i < 4; i++) {
        globalThis.gc();
        await new Promise((r) => setImmediate(r));
      }
      const mu = process.memoryUsage();
      process.send({ rss: mu.rss, heapUsed: mu.heapUsed, external: mu.external, pool: hbonePool?.stats() });
    } else if (m.cmd === 'heapsnapshot') {
      const v8 = await import('node:v8');
      process.send({ file: v8.writeHeapSnapshot(m.file) });
    } else if (m.cmd === 'count') {
      process.send({ count: held.length });
    } else if (m.cmd === 'open') {
      const session = h2.connect(`http://127.0.0.1:${m.port}`, {
        maxSessionMemory: 1e4,
        peerMaxConcurrentStreams: 1e6,
      });
      session.on('error', () => {});
      await once(session, 'remoteSettings');
      held.push(session);
      let last;
      for (let i = 0; i < m.n; i++) {
        const st = session.request({ ':method': 'CONNECT', ':authority': '127.0.0.1:1' });
        st.on('error', () => {});
        held.push(st);
        last = st;
        if (i % 500 === 499 || i === m.n - 1) await once(st, 'response');
      }
      process.send({ opened: held.length - 1, ok: !!last });
    } else if (m.cmd === 'cpu') {
      const u = process.cpuUsage();
      process.send({ cpuUs: u.user + u.system });
    } else if (m.cmd === 'exit') {
      process.exit(0);
    } else if (m.cmd === 'rate') {
      process.send(await measureRate(hbonePool, request, m.durationMs, m.concurrency));
    }
  });
  process.send({ ready: true, port });
}

/**
 * Tunnels per second on a warm pool, each a full lifecycle: CONNECT → 200 (the server dials the
 * app), one byte each way, then a clean close both ways (END_STREAM, FIN), no resets.
 */
async function measureRate(pool, request, durationMs, concurrency) {
  const once1 = async () => {
    const s = await pool.connect(request());
    s.on('error', () => {});
    const closed = once(s, 'close');
    s.end('x');
    s.resume();
    await closed;
  };
  await once1();
  let n = 0;
  let failed = 0;
  const errors = [];
  const t0 = process.hrtime.bigint();
  const end = Date.now() + durationMs;
  const worker = async () => {
    while (Date.now() < end) {
      try {
        await once1();
        n++;
      } catch (err) {
        failed++;
        if (errors.length < 5) errors.push(String(err?.message ?? err));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return { perSecond: n / secs, tunnels: n, failed, secs, errors, sessions: pool.stats().sessions };
}

// ───────────────────────────── parent side ─────────────────────────────

async function startChild(role, init) {
  const child = fork(fileURLToPath(import.meta.url), ['--child', role], {
    execArgv: ['--expose-gc', ...(process.env.HBONE_BENCH_CHILD_ARGS ?? '').split(' ').filter(Boolean)],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.send(init);
  const [msg] = await once(child, 'message');
  if (!msg.ready) throw new Error(`child ${role} failed to start`);
  const ask = async (m) => {
    child.send(m);
    const [reply] = await once(child, 'message');
    return reply;
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.send({ cmd: 'exit' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };
  return { port: msg.port, ask, stop };
}

/** Sink: counts bytes; echo: returns them. */
async function startApp(kind) {
  const sockets = new Set();
  let received = 0;
  const waiters = [];
  const server = net.createServer({ noDelay: true, backlog: 8192 }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    if (kind === 'echo') s.pipe(s);
    else
      s.on('data', (c) => {
        received += c.length;
        for (const w of waiters.splice(0)) w();
      });
  });
  server.listen({ host: '127.0.0.1', port: 0, backlog: 8192 });
  await once(server, 'listening');
  return {
    port: server.address().port,
    get received() {
      return received;
    },
    /** Resolves once `total` bytes arrived. */
    until: (total) =>
      new Promise((resolve) => {
        const check = () => (received >= total ? resolve() : waiters.push(check));
        check();
      }),
    reset: () => (received = 0),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** One connection to `port`, `total` bytes one way, as fast as the path takes them. */
async function bulk(port, sink, total) {
  sink.reset();
  const sock = net.connect({ host: '127.0.0.1', port, noDelay: true });
  await once(sock, 'connect');
  const chunk = Buffer.alloc(MiB, 0x5a);
  const t0 = process.hrtime.bigint();
  let sent = 0;
  while (sent < total) {
    const n = Math.min(chunk.length, total - sent);
    sent += n;
    if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n))) await once(sock, 'drain');
  }
  await sink.until(total);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  sock.destroy();
  return total / MiB / secs;
}

/** Open `n` tunnels through `port` to an echo app, check each with one byte, keep them idle. */
async function openIdle(port, n) {
  const sockets = [];
  const batch = 200;
  for (let i = 0; i < n; i += batch) {
    const group = await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, async () => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.on('error', () => {});
        await once(s, 'connect');
        s.write('x');
        await once(s, 'data');
        return s;
      }),
    );
    sockets.push(...group);
  }
  return sockets;
}

const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function measureThroughput({ certs, total, rounds, sink, log, children }) {
  const tlsB = await startChild('tls-b', { serverCert: certs.server, targetPort: sink.port });
  const tlsA = await startChild('tls-a', { clientCert: certs.client, peerPort: tlsB.port });
  const hbS = await startChild('hbone-server', { serverCert: certs.server, targetPort: sink.port });
  const hbC = await startChild('hbone-client', {
    clientCert: certs.client,
    peerPort: hbS.port,
    targetPort: 8080,
  });
  children.push(tlsA, tlsB, hbS, hbC);
  const mibps = { direct: [], tls: [], hbone: [] };
  // CPU seconds per GiB in the two proxy processes: steadier than throughput on a shared machine.
  const cpu = { tls: [], hbone: [] };
  const cpuOf = async (procs) => {
    let us = 0;
    for (const p of procs) us += (await p.ask({ cmd: 'cpu' })).cpuUs;
    return us;
  };
  for (let r = 0; r < rounds; r++) {
    for (const [name, port, procs] of [
      ['direct', sink.port, []],
      ['tls', tlsA.port, [tlsA, tlsB]],
      ['hbone', hbC.port, [hbC, hbS]],
    ]) {
      const cpu0 = await cpuOf(procs);
      const rate = await bulk(port, sink, total);
      const cpuPerGiB = ((await cpuOf(procs)) - cpu0) / 1e6 / (total / 1024 / MiB);
      log(`round ${r + 1} ${name}: ${fmt(rate)} MiB/s, proxies' CPU ${fmt(cpuPerGiB, 2)} s/GiB`);
      mibps[name].push(rate);
      if (name !== 'direct') cpu[name].push(cpuPerGiB);
    }
  }
  await Promise.all(children.splice(0).map((c) => c.stop()));
  const med = { direct: median(mibps.direct), tls: median(mibps.tls), hbone: median(mibps.hbone) };
  const best = {
    direct: Math.max(...mibps.direct),
    tls: Math.max(...mibps.tls),
    hbone: Math.max(...mibps.hbone),
  };
  const cpuMed = { tls: median(cpu.tls), hbone: median(cpu.hbone) };
  return { samples: mibps, median: med, best, cpuSecondsPerGiB: cpuMed, cpuSamples: cpu };
}

async function measureMemory({ certs, idleTunnels, echo, log, children, oneSession = false }) {
  // oneSession: raise the pool cap and the server's stream limit so all tunnels share one session.
  const wide = oneSession
    ? {
        http2: { maxConcurrentStreams: idleTunnels + 100 },
        pool: { maxStreamsPerConnection: idleTunnels + 100 },
      }
    : {};
  const memS = await startChild('hbone-server', { serverCert: certs.server, targetPort: echo.port, ...wide });
  const memC = await startChild('hbone-client', {
    clientCert: certs.client,
    peerPort: memS.port,
    targetPort: 8080,
    ...wide,
  });
  children.push(memS, memC);
  const warm = await openIdle(memC.port, 10);
  const before = { c: await memC.ask({ cmd: 'rss' }), s: await memS.ask({ cmd: 'rss' }) };
  const idle = await openIdle(memC.port, idleTunnels);
  const after = { c: await memC.ask({ cmd: 'rss' }), s: await memS.ask({ cmd: 'rss' }) };
  if (process.env.HBONE_BENCH_HEAPSNAPSHOT) {
    await memC.ask({
      cmd: 'heapsnapshot',
      file: `${process.env.HBONE_BENCH_HEAPSNAPSHOT}-client.heapsnapshot`,
    });
    await memS.ask({
      cmd: 'heapsnapshot',
      file: `${process.env.HBONE_BENCH_HEAPSNAPSHOT}-server.heapsnapshot`,
    });
  }
  const per = (k, side) => (after[side][k] - before[side][k]) / idleTunnels;
  const result = {
    sessions: after.c.pool?.sessions,
    client: { rss: per('rss', 'c'), heap: per('heapUsed', 'c') },
    server: { rss: per('rss', 's'), heap: per('heapUsed', 's') },
  };
  log(`idle tunnels: ${idleTunnels}; pool ${JSON.stringify(after.c.pool)}; ${JSON.stringify(result)}`);
  for (const s of [...warm, ...idle]) s.destroy();
  return { result };
}

/** What Node itself costs per idle object, measured the same way: the floor under a tunnel. */
async function measureFloor({ n, log, children }) {
  const floor = {};
  const per = (a, b) => ({ rss: (b.rss - a.rss) / n, heap: (b.heapUsed - a.heapUsed) / n });
  const measure = async (role, load) => {
    const child = await startChild(role, {});
    children.push(child);
    const before = await child.ask({ cmd: 'rss' });
    const keep = await load(child);
    const after = await child.ask({ cmd: 'rss' });
    for (const k of keep) k.destroy();
    await child.stop();
    children.splice(children.indexOf(child), 1);
    return per(before, after);
  };
  // An idle accepted TCP socket.
  floor.tcp = await measure('floor-tcp', async (child) => {
    const socks = [];
    for (let i = 0; i < n; i++) {
      const s = net.connect(child.port, '127.0.0.1');
      s.on('error', () => {});
      socks.push(s);
      if (i % 500 === 499 || i === n - 1) await once(s, 'connect');
    }
    while ((await child.ask({ cmd: 'count' })).count < n) await new Promise((r) => setImmediate(r));
    return socks;
  });
  // An idle server-side HTTP/2 stream (CONNECT answered 200), the stream alone.
  floor['h2-server'] = await measure('floor-h2-server', async (child) => {
    const session = h2.connect(`http://127.0.0.1:${child.port}`, {
      maxSessionMemory: 1e4,
      peerMaxConcurrentStreams: 1e6,
    });
    session.on('error', () => {});
    await once(session, 'remoteSettings');
    for (let i = 0; i < n; i++) {
      const st = session.request({ ':method': 'CONNECT', ':authority': '127.0.0.1:1' });
      st.on('error', () => {});
      if (i % 500 === 499 || i === n - 1) await once(st, 'response');
    }
    return [session];
  });
  // An idle client-side HTTP/2 stream, opened by the child to a server here.
  const server = h2.createServer({ settings: { maxConcurrentStreams: 1e6 }, maxSessionMemory: 1e4 });
  server.on('stream', (st) => {
    st.on('error', () => {});
    st.respond({ ':status': 200 });
  });
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  floor['h2-client'] = await measure('floor-h2-client', async (child) => {
    await child.ask({ cmd: 'open', port: server.address().port, n });
    return [];
  });
  server.close();
  log(`floor: ${JSON.stringify(floor)}`);
  return floor;
}

export async function run({ quick, log }) {
  // Tuning knobs: HBONE_BENCH_MIB (transfer size), HBONE_BENCH_ROUNDS, HBONE_BENCH_TUNNELS,
  // HBONE_BENCH_PARTS=throughput,memory,rate (default all).
  const env = process.env;
  const parts = new Set((env.HBONE_BENCH_PARTS ?? 'throughput,memory,rate').split(','));
  const identity = await load('identity/index.js');
  const ca = identity.MeshCa.create({ trustDomain: 'cluster.local' });
  const certs = {
    client: identity.issueWorkloadCertificate(ca, CLIENT_ID),
    server: identity.issueWorkloadCertificate(ca, SERVER_ID),
  };
  const total = (Number(env.HBONE_BENCH_MIB) || (quick ? 128 : 1024)) * MiB;
  const rounds = Number(env.HBONE_BENCH_ROUNDS) || (quick ? 1 : 3);
  const idleTunnels = Number(env.HBONE_BENCH_TUNNELS) || (quick ? 500 : 5000);
  const rateMs = quick ? 1000 : 3000;
  const children = [];
  let memC;
  const sink = await startApp('sink');
  const echo = await startApp('echo');
  const data = { bytesPerTransfer: total, rounds, idleTunnels };
  const md = [];
  const kb = (b) => fmt(b / 1024, 1);
  try {
    if (parts.has('throughput')) {
      const t = await measureThroughput({ certs, total, rounds, sink, log, children });
      const ratio = (m) => ({ hboneOverDirect: m.hbone / m.direct, hboneOverTls: m.hbone / m.tls });
      Object.assign(data, { throughput: t, ratioMedian: ratio(t.median), ratioBest: ratio(t.best) });
      md.push(
        `One-way bulk over one connection, ${fmt(total / MiB)} MiB per transfer, ${rounds} rounds (median, best); each proxy in its own process.`,
        '',
        '| path | MiB/s median | MiB/s best | proxies CPU s/GiB (median) |',
        '|---|---:|---:|---:|',
        `| direct TCP | ${fmt(t.median.direct)} | ${fmt(t.best.direct)} | – |`,
        `| TLS 1.3 relay pair (A → B) | ${fmt(t.median.tls)} | ${fmt(t.best.tls)} | ${fmt(t.cpuSecondsPerGiB.tls, 2)} |`,
        `| HBONE (entry → pool → server) | ${fmt(t.median.hbone)} | ${fmt(t.best.hbone)} | ${fmt(t.cpuSecondsPerGiB.hbone, 2)} |`,
        '',
        `HBONE/direct = ${fmt(data.ratioMedian.hboneOverDirect, 2)}; HBONE/TLS relay = ${fmt(data.ratioMedian.hboneOverTls, 2)} (median), ${fmt(data.ratioBest.hboneOverTls, 2)} (best) — goal ≥ 0.80; CPU per byte HBONE/TLS relay = ${fmt(t.cpuSecondsPerGiB.hbone / t.cpuSecondsPerGiB.tls, 2)}.`,
        '',
      );
    }
    if (parts.has('memory')) {
      const m = await measureMemory({ certs, idleTunnels, echo, log, children });
      await Promise.all(children.splice(0).map((c) => c.stop()));
      const one = await measureMemory({ certs, idleTunnels, echo, log, children, oneSession: true });
      await Promise.all(children.splice(0).map((c) => c.stop()));
      const floor = await measureFloor({ n: idleTunnels, log, children });
      Object.assign(data, { memory: m.result, memoryOneSession: one.result, floor });
      const fl = {
        client: floor['tcp'].rss + floor['h2-client'].rss,
        server: floor['tcp'].rss + floor['h2-server'].rss,
      };
      const row = (label, r, side) =>
        `| ${label} | ${kb(r[side].rss)} KiB | ${kb(r[side].heap)} KiB | ${kb(fl[side])} KiB |`;
      md.push(
        `Memory per idle tunnel, ${fmt(idleTunnels)} tunnels (RSS delta after GC ÷ tunnels; each side in its own process). Goal ≤ 8 KB per side. "Defaults": pool cap 100 and server limit 200, so ${m.result.sessions ?? '?'} HTTP/2 sessions; "one session": both limits raised to ${fmt(idleTunnels + 100)} for this measurement only. The floor is what Node alone costs for the same objects (one idle TCP socket + one idle HTTP/2 stream, no TLS, one session), measured the same way:`,
        '',
        '| side | RSS per tunnel | JS heap per tunnel | Node floor (socket + stream) |',
        '|---|---:|---:|---:|',
        row('client, defaults (entry socket + pooled stream + copy)', m.result, 'client'),
        row('client, one session', one.result, 'client'),
        row('server, defaults (stream + app socket + copy)', m.result, 'server'),
        row('server, one session', one.result, 'server'),
        '',
        `Floor parts: idle TCP socket ${kb(floor['tcp'].rss)} KiB, server-side HTTP/2 stream ${kb(floor['h2-server'].rss)} KiB, client-side HTTP/2 stream ${kb(floor['h2-client'].rss)} KiB.`,
        '',
      );
    }
    if (parts.has('rate')) {
      {
        const s = await startChild('hbone-server', { serverCert: certs.server, targetPort: echo.port });
        memC = await startChild('hbone-client', {
          clientCert: certs.client,
          peerPort: s.port,
          targetPort: 8080,
        });
        children.push(s, memC);
      }
      const rate = await memC.ask({ cmd: 'rate', durationMs: rateMs, concurrency: 16 });
      log(`rate: ${JSON.stringify(rate)}`);
      data.rate = rate;
      md.push(
        `New tunnels per second on a warm pool, measured in the client process (each: CONNECT → 200 after the server dialed an echo app, one byte each way, clean close both ways; 16 in flight): **${fmt(rate.perSecond)}/s** (${fmt(rate.tunnels)} in ${fmt(rate.secs, 1)} s, ${rate.failed} failed, ${rate.sessions} session(s) at the end).`,
      );
    }
    return { title: 'HBONE: throughput, memory per tunnel, tunnel rate', markdown: md.join('\n'), data };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    sink.close();
    echo.close();
  }
}

if (process.argv[2] === '--child') {
  childMain(process.argv[3]).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
