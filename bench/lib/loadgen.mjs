// The load generator, run in its own process so that it never shares an event loop with the
// servers or proxies it measures.
//
// Constant-rate requests, no catch-up bursts, coordinated omission counted (Istio/fortio's fixed
// QPS with wrk2's latency accounting):
// - every request has a scheduled send time, fixed in advance: connection i of n sends at
//   start + i·P/n + k·P, with P = 1 / (rate per connection);
// - a connection carries one request at a time (HTTP/1.1 keep-alive, no pipelining). When a slot
//   comes while the previous response is still outstanding, that request goes out as soon as the
//   connection is free, and its latency is still measured from its *scheduled* time, so a stall
//   shows up in every request it delayed rather than in one;
// - the schedule never shifts and is never compressed to make up for lost time; requests of the
//   window still unsent when the drain deadline passes are reported as missed;
// - latencies go into an HDR histogram (microseconds, 3 significant digits).
//
// Node timers have 1 ms granularity, so a request can leave up to ~1 ms after its slot; that
// delay counts in the latency (it is part of "from the scheduled time") and is the same in every
// scenario, which is why the benches report the latency *added* over direct.
//
// Parent side: startLoadgen(group) → { rate(job, hooks), closed(job, hooks), bulk(job), stop() }.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import hdr from 'hdr-histogram-js';
import { ResponseReader, buildBulkRequest, buildRequest } from './http1.mjs';
import { request as ask } from './processes.mjs';

const CHILD_FLAG = '--meshd-loadgen';
const SOCKS_CLIENT = new URL('../../dist/demo/socks5-client.js', import.meta.url);

// ---- parent side -------------------------------------------------------------------------------

export async function startLoadgen(group) {
  const proc = group.fork('loadgen', fileURLToPath(import.meta.url), [CHILD_FLAG]);
  /** One job; hooks.onWindowStart/onWindowEnd fire when the measured window opens/closes. */
  const windowed = async (type, job, hooks) => {
    const onMessage = (m) => {
      if (m.type === 'window-start') hooks.onWindowStart?.();
      if (m.type === 'window-end') hooks.onWindowEnd?.();
    };
    proc.child.on('message', onMessage);
    try {
      return (await ask(proc, { type, job }, `${type}-result`)).result;
    } finally {
      proc.child.off('message', onMessage);
    }
  };
  return {
    proc,
    /** Constant-rate run (latency from the schedule). */
    rate: (job, hooks = {}) => windowed('rate', job, hooks),
    /** Closed-loop run: each connection sends its next request as soon as a response completes. */
    closed: (job, hooks = {}) => windowed('closed', job, hooks),
    async bulk(job) {
      return (await ask(proc, { type: 'bulk', job }, 'bulk-result')).result;
    },
    stop: () => proc.stop(),
  };
}

// ---- child side --------------------------------------------------------------------------------

let socksConnect;
async function connect(ep) {
  if (ep.socks) {
    socksConnect ??= (await import(SOCKS_CLIENT.href)).socksConnect;
    const s = await socksConnect(ep.socks, `${ep.host}:${ep.port}`);
    s.setNoDelay(true);
    return s;
  }
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: ep.host, port: ep.port, localAddress: ep.localAddress, noDelay: true });
    s.once('connect', () => (s.off('error', reject), resolve(s)));
    s.once('error', reject);
  });
}

async function openAll(endpoints) {
  const sockets = new Array(endpoints.length);
  let next = 0;
  const worker = async () => {
    while (next < endpoints.length) {
      const i = next++;
      sockets[i] = await connect(endpoints[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(16, endpoints.length) }, worker));
  return sockets;
}

const newHistogram = () =>
  hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });

function summary(h) {
  const at = (p) => h.getValueAtPercentile(p) / 1000;
  return {
    count: h.totalCount,
    meanMs: h.mean / 1000,
    p50Ms: at(50),
    p90Ms: at(90),
    p99Ms: at(99),
    p999Ms: at(99.9),
    maxMs: h.maxValue / 1000,
  };
}

async function runRate(job) {
  const {
    endpoints,
    ratePerConnection,
    warmupMs,
    durationMs,
    requestBytes = 1024,
    responseBytes = 1024,
  } = job;
  const drainMs = job.drainMs ?? 5_000;
  const sockets = await openAll(endpoints);
  const n = sockets.length;
  const periodMs = 1000 / ratePerConnection;
  const latency = newHistogram();
  const service = newHistogram();
  let completed = 0;
  let inWindow = 0;
  let errors = 0;
  const errorSamples = [];
  const start = performance.now() + 50;
  const windowStart = start + warmupMs;
  const windowEnd = windowStart + durationMs;
  let expected = 0;
  for (let i = 0; i < n; i++) {
    const first = start + (i / n) * periodMs;
    // Slots k with windowStart <= first + k·P < windowEnd, computed exactly as the sender does.
    for (
      let k = Math.max(0, Math.floor((windowStart - first) / periodMs) - 1);
      first + k * periodMs < windowEnd;
      k++
    )
      if (first + k * periodMs >= windowStart) expected++;
  }
  const cpu0 = { usage: undefined };
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  let open = n;
  const conns = sockets.map((socket, i) => {
    const c = {
      socket,
      first: start + (i / n) * periodMs,
      k: 0,
      next: start + (i / n) * periodMs,
      busy: false,
      dead: false,
      scheduled: 0,
      sentAt: 0,
      timer: undefined,
    };
    const req = buildRequest({ host: endpoints[i].host, requestBytes, responseBytes });
    const done = () => {
      if (c.dead) return;
      c.dead = true;
      if (c.timer) clearTimeout(c.timer);
      if (--open === 0) finish();
    };
    const fail = (why) => {
      errors++;
      if (errorSamples.length < 5) errorSamples.push(why);
      done();
      socket.destroy();
    };
    const send = () => {
      c.busy = true;
      c.scheduled = c.next;
      // first + k·P, not a running sum: the slots must be exactly the ones `expected` counted.
      c.next = c.first + ++c.k * periodMs;
      c.sentAt = performance.now();
      socket.write(req);
    };
    const schedule = () => {
      c.timer = undefined;
      if (c.dead || c.busy) return;
      if (c.next >= windowEnd) return done();
      const now = performance.now();
      if (c.next <= now) send();
      else c.timer = setTimeout(schedule, c.next - now);
    };
    const reader = new ResponseReader({
      onResponse: (status) => {
        const now = performance.now();
        c.busy = false;
        if (status !== 200) return fail(`HTTP ${status}`);
        if (now >= windowStart && now < windowEnd) inWindow++;
        if (c.scheduled >= windowStart) {
          completed++;
          latency.recordValue(Math.max(1, Math.round((now - c.scheduled) * 1000)));
          service.recordValue(Math.max(1, Math.round((now - c.sentAt) * 1000)));
        }
        schedule();
      },
    });
    socket.on('data', (chunk) => {
      try {
        reader.feed(chunk);
      } catch (err) {
        fail(String(err.message));
      }
    });
    socket.on('error', (err) => fail(err.message));
    socket.on('close', () => {
      if (!c.dead) fail('connection closed by the peer');
    });
    c.start = schedule;
    return c;
  });
  let windowClosed;
  const closed = new Promise((resolve) => (windowClosed = resolve));
  const marks = [
    setTimeout(() => {
      cpu0.usage = process.cpuUsage();
      process.send({ type: 'window-start' });
    }, windowStart - performance.now()),
    setTimeout(() => {
      process.send({ type: 'window-end' });
      windowClosed();
    }, windowEnd - performance.now()),
  ];
  for (const c of conns) c.timer = setTimeout(c.start, Math.max(0, c.next - performance.now()));
  const deadline = setTimeout(finish, windowEnd - performance.now() + drainMs);
  // Both: every connection is done (or the drain deadline passed), and the window has closed.
  await Promise.all([finished, closed]);
  clearTimeout(deadline);
  for (const t of marks) clearTimeout(t);
  const cpu = process.cpuUsage(cpu0.usage);
  for (const c of conns) {
    if (c.timer) clearTimeout(c.timer);
    c.dead = true;
    c.socket.destroy();
  }
  const result = {
    connections: n,
    targetRps: n * ratePerConnection,
    // Responses that arrived inside the window: what the path carried (a saturated path completes
    // the window's backlog only after it, so `completed` alone would overstate its rate).
    achievedRps: inWindow / (durationMs / 1000),
    expected,
    completed,
    missed: Math.max(0, expected - completed),
    errors,
    errorSamples,
    latency: summary(latency),
    service: summary(service),
    generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  latency.destroy();
  service.destroy();
  return result;
}

/**
 * Capacity: every connection keeps exactly one request in flight, sending the next as soon as a
 * response completes, for warmupMs and then a measured window of durationMs. Counts responses
 * completed inside the window (no latency: a closed loop hides queueing, see runRate).
 */
async function runClosed(job) {
  const { endpoints, warmupMs, durationMs, requestBytes = 1024, responseBytes = 1024 } = job;
  const sockets = await openAll(endpoints);
  let inWindow = 0;
  let errors = 0;
  const errorSamples = [];
  let measuring = false;
  let stopped = false;
  for (const [i, socket] of sockets.entries()) {
    const req = buildRequest({ host: endpoints[i].host, requestBytes, responseBytes });
    const fail = (why) => {
      if (stopped || socket.destroyed) return;
      errors++;
      if (errorSamples.length < 5) errorSamples.push(why);
      socket.destroy();
    };
    const reader = new ResponseReader({
      onResponse: (status) => {
        if (status !== 200) return fail(`HTTP ${status}`);
        if (measuring) inWindow++;
        if (!stopped) socket.write(req);
      },
    });
    socket.on('data', (chunk) => {
      try {
        reader.feed(chunk);
      } catch (err) {
        fail(String(err.message));
      }
    });
    socket.on('error', (err) => fail(err.message));
    socket.on('close', () => fail('connection closed by the peer'));
    socket.write(req);
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  await sleep(warmupMs);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  process.send({ type: 'window-start' });
  await sleep(durationMs);
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  process.send({ type: 'window-end' });
  const cpu = process.cpuUsage(cpu0);
  stopped = true;
  for (const socket of sockets) socket.destroy();
  return {
    connections: sockets.length,
    achievedRps: inWindow / seconds,
    completed: inWindow,
    errors,
    errorSamples,
    generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

/** Single-stream download of `bytes` through `endpoint`, `repeats` times: MB/s each (1 MB = 10^6 B). */
async function runBulk(job) {
  const out = [];
  for (let r = 0; r < (job.repeats ?? 1); r++) {
    const [socket] = await openAll([job.endpoint]);
    const mbps = await new Promise((resolve, reject) => {
      let got = 0;
      let t0 = 0;
      const reader = new ResponseReader({
        onHead: (status) => status !== 200 && reject(new Error(`bulk: HTTP ${status}`)),
        onBody: (k) => (got += k),
        onResponse: () => {
          const s = (performance.now() - t0) / 1000;
          socket.destroy();
          if (got !== job.bytes) reject(new Error(`bulk: got ${got} of ${job.bytes} bytes`));
          else resolve(job.bytes / 1e6 / s);
        },
      });
      socket.on('data', (c) => reader.feed(c));
      socket.on('error', reject);
      t0 = performance.now();
      socket.write(buildBulkRequest({ host: job.endpoint.host, bytes: job.bytes }));
    });
    out.push(mbps);
  }
  return out;
}

if (process.argv.includes(CHILD_FLAG)) {
  process.on('message', async (msg) => {
    try {
      if (msg.type === 'rate') process.send({ type: 'rate-result', result: await runRate(msg.job) });
      if (msg.type === 'closed') process.send({ type: 'closed-result', result: await runClosed(msg.job) });
      if (msg.type === 'bulk') process.send({ type: 'bulk-result', result: await runBulk(msg.job) });
    } catch (err) {
      process.send({ type: 'error', message: String(err?.stack ?? err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
