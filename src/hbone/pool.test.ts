/**
 * HbonePool against real HBONE servers on 127.0.0.1: sharing, stream caps, GOAWAY, idle
 * eviction, dial serialization, keepalive, keys, shutdown, and the typed client errors.
 */
import { EventEmitter, once } from 'node:events';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { isMeshError, type MeshError } from '../errors.js';
import { MeshCa, issueWorkloadCertificate } from '../identity/index.js';
import { createRegistry, readMetric } from '../telemetry/metrics.js';
import { HboneStatusError } from './client.js';
import { HbonePool, type HbonePoolOptions, type PoolSessionEvent } from './pool.js';
import { poolKey } from './pool-request.js';
import type { HboneServer } from './server.js';
import {
  ID_CLIENT,
  ID_SERVER,
  TD,
  certFor,
  closeOf,
  readAll,
  startEcho,
  startHbone,
  testHttp2,
  withinMs,
} from './test-helpers/mesh.js';
import { connectRequest, startBlackhole, startOutbound, startRelay } from './test-helpers/tunnel.js';
import type { DialTarget, HboneServerSessionEvent, InboundDecision, InboundRequest } from './types.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function echoServer(
  over: Parameters<typeof startHbone>[0] extends infer O ? Partial<O> : never = {},
  decide?: (req: InboundRequest) => InboundDecision | undefined,
) {
  const app = await startEcho();
  cleanups.push(() => app.close());
  const registry = createRegistry();
  const { server, port } = await startHbone({
    policy: (req) => decide?.(req) ?? { ok: true, target: { host: '127.0.0.1', port: app.port } },
    registry,
    ...over,
  });
  cleanups.push(() => server.close());
  const handshakes = (): Promise<number> =>
    readMetric(registry, 'meshd_hbone_sessions_opened_total', { direction: 'inbound' });
  return { server, port, registry, handshakes, app };
}

/** A pool whose session events are also emitted on `events` for awaiting. */
function pool(opts: HbonePoolOptions = {}) {
  const events = new EventEmitter();
  const log: PoolSessionEvent[] = [];
  const registry = createRegistry();
  const p = new HbonePool({
    http2: testHttp2(),
    registry,
    onSessionEvent: (e) => {
      log.push(e);
      events.emit(e.kind, e);
    },
    ...opts,
  });
  cleanups.push(() => p.destroy());
  return { pool: p, events, log, registry };
}

async function openMany(p: HbonePool, port: number, n: number): Promise<Duplex[]> {
  const streams = await Promise.all(Array.from({ length: n }, () => p.connect(connectRequest(port))));
  for (const s of streams) cleanups.push(() => s.destroy());
  return streams;
}

async function roundTrip(s: Duplex, text: string): Promise<string> {
  s.write(text);
  const [chunk] = (await once(s, 'data')) as [Buffer];
  return chunk.toString();
}

describe('HbonePool sharing and caps', () => {
  it('shares one session among 50 concurrent tunnels, with exactly one TLS handshake', async () => {
    const srv = await echoServer();
    const { pool: p } = pool();
    const streams = await openMany(p, srv.port, 50);
    expect(await srv.handshakes()).toBe(1);
    expect(p.stats()).toMatchObject({ sessions: 1, streams: 50, pooledSessions: 1 });
    expect(await roundTrip(streams[49]!, 'x')).toBe('x');
  });

  it('opens a second session for stream 101 (cap 100)', async () => {
    const srv = await echoServer();
    const { pool: p } = pool();
    await openMany(p, srv.port, 100);
    expect(p.stats()).toMatchObject({ sessions: 1, streams: 100, pooledSessions: 0 });
    const [s101] = await openMany(p, srv.port, 1);
    expect(await srv.handshakes()).toBe(2);
    expect(p.stats()).toMatchObject({ sessions: 2, streams: 101, pooledSessions: 1 });
    expect(await roundTrip(s101!, 'y')).toBe('y');
  });

  it("caps streams at the peer's SETTINGS_MAX_CONCURRENT_STREAMS when lower", async () => {
    const srv = await echoServer({ http2: testHttp2({ maxConcurrentStreams: 10 }) });
    const { pool: p } = pool();
    await openMany(p, srv.port, 11);
    expect(p.stats().sessions).toBe(2);
    expect(await srv.handshakes()).toBe(2);
  });

  it('closes a full session once its last stream ends and never reuses it', async () => {
    const srv = await echoServer();
    const { pool: p, events } = pool({ pool: { maxStreamsPerConnection: 2, idleTimeoutMs: 60_000 } });
    const [a, b] = await openMany(p, srv.port, 2);
    const closed = once(events, 'closed') as Promise<[PoolSessionEvent]>;
    a!.destroy();
    b!.destroy();
    const [e] = await withinMs(2_000, 'full session close', closed);
    expect(e.sessionId).toBe(1);
    await openMany(p, srv.port, 1);
    expect(await srv.handshakes()).toBe(2);
  });

  it('keys sessions by source identity, expected identities, destination and source IP', async () => {
    const srv = await echoServer();
    const { pool: p } = pool();
    const other = `spiffe://${TD}/ns/shop/sa/other`;
    const variants = [
      connectRequest(srv.port),
      connectRequest(srv.port, { source: { identity: other, cert: certFor(other) } }),
      connectRequest(srv.port, { expectedIdentities: [ID_SERVER, `spiffe://${TD}/ns/shop/sa/extra`] }),
      connectRequest(srv.port, { sourceIp: '127.0.0.2' }),
      connectRequest(srv.port), // same key as the first
    ];
    for (const v of variants)
      cleanups.push(
        (
          (s) => () =>
            s.destroy()
        )(await p.connect(v)),
      );
    expect(p.stats().sessions).toBe(4);
    expect(new Set(variants.map(poolKey)).size).toBe(4);
    expect(await srv.handshakes()).toBe(4);
  });

  it('binds the source IP so the server sees the real source', async () => {
    let seen = '';
    const srv = await echoServer({}, (req) => {
      seen = req.peerAddress.ip;
      return undefined;
    });
    const { pool: p } = pool();
    const s = await p.connect(connectRequest(srv.port, { sourceIp: '127.0.0.3' }));
    cleanups.push(() => s.destroy());
    expect(seen).toBe('127.0.0.3');
  });

  it("opens a new session's TCP connection through the request's connectSocket, once per session", async () => {
    let seen = '';
    const srv = await echoServer({}, (req) => {
      seen = req.peerAddress.ip;
      return undefined;
    });
    const { pool: p } = pool();
    const dials: DialTarget[] = [];
    const connectSocket = (t: DialTarget) => {
      dials.push(t);
      return net.connect({ host: t.host, port: t.port, localAddress: t.localAddress });
    };
    const streams = await Promise.all(
      [1, 2, 3].map(() => p.connect(connectRequest(srv.port, { sourceIp: '127.0.0.4', connectSocket }))),
    );
    for (const s of streams) cleanups.push(() => s.destroy());
    expect(dials).toEqual([{ host: '127.0.0.1', port: srv.port, localAddress: '127.0.0.4' }]);
    expect(seen).toBe('127.0.0.4');
    expect(await roundTrip(streams[0] as Duplex, 'ping')).toBe('ping');
  });

  it('notices a peer that goes away even when connectSocket hands over a half-open socket', async () => {
    const srv = await echoServer();
    const { pool: p } = pool();
    // A connector that (wrongly for TLS) allows half-open: the peer's FIN must still end the session.
    const connectSocket = (t: DialTarget) => net.connect({ host: t.host, port: t.port, allowHalfOpen: true });
    const tunnel = await p.connect(connectRequest(srv.port, { connectSocket }));
    cleanups.push(() => tunnel.destroy());
    const closed = once(tunnel, 'close');
    await srv.server.close();
    await withinMs(2_000, 'the tunnel to close after its peer went away', closed);
    expect(p.stats()).toMatchObject({ sessions: 0, streams: 0 });
  });
});

describe('HbonePool session lifecycle', () => {
  it('after a GOAWAY (server drain) new streams go to a new session; the old tunnel lives on', async () => {
    const srv = await echoServer();
    const { pool: p, events } = pool();
    const [old] = await openMany(p, srv.port, 1);
    const goaway = once(events, 'goaway');
    const drained = srv.server.drain();
    await withinMs(2_000, 'GOAWAY at the pool', goaway);
    let servedBySecond = 0;
    // A new server binds the same address, as an upgraded daemon would.
    const second = await startHboneOnPort(srv.port, () => {
      servedBySecond++;
      return { ok: true, target: { host: '127.0.0.1', port: srv.app.port } };
    });
    const fresh = await p.connect(connectRequest(srv.port));
    cleanups.push(() => fresh.destroy());
    expect(servedBySecond).toBe(1);
    expect(await roundTrip(fresh, 'new')).toBe('new');
    expect(await roundTrip(old!, 'old')).toBe('old');
    old!.end();
    await readAll(old!);
    await withinMs(3_000, 'old server drained', drained);
    expect(second.sessionCount).toBe(1);
    expect(p.stats().sessions).toBe(1);
  });

  it('1,100 cleanly closed tunnels send no RST_STREAM: the session survives nghttp2 reset limits', async () => {
    // A Node (nghttp2) server answers more than 1,000 received resets in a burst with
    // GOAWAY(INTERNAL_ERROR). Clean closes (END_STREAM both ways) must not reset anything.
    const srv = await echoServer();
    const { pool: p, log } = pool();
    // Through an outbound entry, so the client-side copy's teardown is exercised as well.
    const entry = await startOutbound(p, () => connectRequest(srv.port));
    cleanups.push(() => entry.close());
    const one = async (): Promise<void> => {
      const s = net.connect({ port: entry.port, host: '127.0.0.1', allowHalfOpen: true });
      s.on('error', () => {});
      const closed = closeOf(s);
      s.end('x');
      expect((await readAll(s)).toString()).toBe('x');
      s.end();
      await closed;
    };
    let left = 1100;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (left-- > 0) await one();
      }),
    );
    expect(log.filter((e) => e.kind === 'goaway')).toEqual([]);
    expect(await srv.handshakes()).toBe(1);
    expect(p.stats()).toMatchObject({ sessions: 1 });
    expect(entry.errors).toEqual([]);
  });

  it('evicts an idle session after the idle timeout', async () => {
    const srv = await echoServer();
    const { pool: p, events } = pool({ pool: { maxStreamsPerConnection: 100, idleTimeoutMs: 150 } });
    const [s] = await openMany(p, srv.port, 1);
    const closed = once(events, 'closed');
    const t0 = Date.now();
    s!.destroy();
    await withinMs(3_000, 'idle eviction', closed);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(p.stats()).toMatchObject({ sessions: 0, keys: 0 });
    await openMany(p, srv.port, 1);
    expect(await srv.handshakes()).toBe(2);
  });

  it('drops a session whose peer stops answering PINGs, within the timeout', async () => {
    const srv = await echoServer();
    const relay = await startRelay(srv.port);
    cleanups.push(() => relay.close());
    const { pool: p, events } = pool({ http2: testHttp2({ pingIntervalMs: 100, pingTimeoutMs: 300 }) });
    const [s] = await openMany(p, relay.port, 1);
    const streamClosed = closeOf(s!);
    s!.on('error', () => {});
    const closed = once(events, 'closed') as Promise<[PoolSessionEvent]>;
    relay.pause();
    const t0 = Date.now();
    const [e] = await withinMs(2_000, 'ping-dead session dropped', closed);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(100 + 300 + 500);
    expect(e.error).toMatch(/did not answer a PING within 300 ms/);
    await streamClosed;
    expect(p.stats().sessions).toBe(0);
  });

  it('the server drops a client that stops answering PINGs', async () => {
    const serverEvents = new EventEmitter();
    const srv = await echoServer({
      http2: testHttp2({ pingIntervalMs: 100, pingTimeoutMs: 300 }),
      onSessionEvent: (e) => serverEvents.emit(e.kind, e),
    });
    const relay = await startRelay(srv.port);
    cleanups.push(() => relay.close());
    const { pool: p } = pool({ http2: testHttp2({ pingIntervalMs: 60_000, pingTimeoutMs: 60_000 }) });
    await openMany(p, relay.port, 1);
    expect(srv.server.sessionCount).toBe(1);
    const closed = once(serverEvents, 'closed') as Promise<[HboneServerSessionEvent]>;
    relay.pause();
    const [e] = await withinMs(2_000, 'server-side session drop', closed);
    expect(e.error).toMatch(/PING/);
    expect(srv.server.sessionCount).toBe(0);
    expect(
      await readMetric(srv.registry, 'meshd_hbone_sessions_closed_total', { direction: 'inbound' }),
    ).toBe(1);
  });

  it('close() lets live streams finish, then closes every session', async () => {
    const srv = await echoServer();
    const { pool: p } = pool();
    const [s] = await openMany(p, srv.port, 1);
    let closed = false;
    const closing = p.close().then(() => (closed = true));
    expect(await roundTrip(s!, 'z')).toBe('z');
    expect(closed).toBe(false);
    s!.end();
    await readAll(s!);
    await withinMs(2_000, 'pool close', closing);
    await expect(p.connect(connectRequest(srv.port))).rejects.toThrow(/pool is closed/);
  });

  it('records outbound metrics', async () => {
    const srv = await echoServer();
    const { pool: p, registry } = pool();
    const [s] = await openMany(p, srv.port, 3);
    expect(await readMetric(registry, 'meshd_hbone_streams_active', { direction: 'outbound' })).toBe(3);
    expect(await readMetric(registry, 'meshd_hbone_sessions_active', { direction: 'outbound' })).toBe(1);
    const closed = closeOf(s!);
    s!.destroy();
    await closed;
    expect(await readMetric(registry, 'meshd_hbone_streams_active', { direction: 'outbound' })).toBe(2);
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/# HELP meshd_hbone_sessions_active .*\(unstable\)/);
  });
});

describe('HbonePool client errors', () => {
  async function expectError(
    p: Promise<unknown>,
    code: MeshError['code'],
    message: RegExp,
  ): Promise<MeshError> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isMeshError(err, code)).toBe(true);
    expect((err as Error).message).toMatch(message);
    return err as MeshError;
  }

  it.each([401, 503] as const)('a %d answer is an HboneStatusError with .status', async (status) => {
    const srv = await echoServer({}, () => ({ ok: false, status, reason: 'no' }));
    const { pool: p, registry } = pool();
    const err = await expectError(
      p.connect(connectRequest(srv.port)),
      'MESH_ERR_HBONE_STATUS',
      new RegExp(`http status ${status}`),
    );
    expect(err).toBeInstanceOf(HboneStatusError);
    expect((err as HboneStatusError).status).toBe(status);
    expect(await readMetric(registry, 'meshd_hbone_stream_responses_total', { status: String(status) })).toBe(
      1,
    );
    // The session stays usable: status errors are per stream.
    expect(p.stats().sessions).toBe(1);
  });

  it('a server presenting another identity is MESH_ERR_HBONE_IDENTITY', async () => {
    const impostor = `spiffe://${TD}/ns/shop/sa/impostor`;
    const srv = await echoServer({ certificate: certFor(impostor) });
    const { pool: p, registry } = pool();
    await expectError(
      p.connect(connectRequest(srv.port)),
      'MESH_ERR_HBONE_IDENTITY',
      /identity mismatch.*impostor/,
    );
    expect(await readMetric(registry, 'meshd_hbone_dial_failures_total', { reason: 'identity' })).toBe(1);
  });

  it('a server from another CA is MESH_ERR_HBONE_TLS', async () => {
    const otherCa = MeshCa.create({ trustDomain: TD });
    const srv = await echoServer({ certificate: issueWorkloadCertificate(otherCa, ID_SERVER) });
    const { pool: p } = pool();
    await expectError(p.connect(connectRequest(srv.port)), 'MESH_ERR_HBONE_TLS', /certificate/);
  });

  it('a server that rejects our certificate is MESH_ERR_HBONE_TLS', async () => {
    const otherCa = MeshCa.create({ trustDomain: TD });
    const { pool: p } = pool();
    const srv = await echoServer();
    const stranger = issueWorkloadCertificate(otherCa, ID_CLIENT);
    // We trust the server's root, but the server does not trust ours.
    const cert = { ...stranger, rootsPem: [...stranger.rootsPem, ...certFor(ID_SERVER).rootsPem] };
    await expectError(
      p.connect(connectRequest(srv.port, { source: { identity: ID_CLIENT, cert } })),
      'MESH_ERR_HBONE_TLS',
      /after the TLS handshake|unknown ca|closed/,
    );
    expect(srv.server.sessionCount).toBe(0);
  });

  it('a refused connection is MESH_ERR_HBONE_CONNECT', async () => {
    const { pool: p, registry } = pool();
    await expectError(p.connect(connectRequest(1)), 'MESH_ERR_HBONE_CONNECT', /ECONNREFUSED/);
    expect(await readMetric(registry, 'meshd_hbone_dial_failures_total', { reason: 'connect' })).toBe(1);
  });

  it('a connectSocket that throws is a failed connect (MESH_ERR_HBONE_CONNECT)', async () => {
    const { pool: p } = pool();
    const connectSocket = () => {
      throw new Error('open(netns): No such file or directory');
    };
    await expectError(
      p.connect(connectRequest(1, { connectSocket })),
      'MESH_ERR_HBONE_CONNECT',
      /No such file or directory/,
    );
    expect(p.stats()).toMatchObject({ sessions: 0, dialsInFlight: 0 });
  });

  it('a connect that times out says so and names port 15008 policies', async () => {
    const hole = await startBlackhole();
    cleanups.push(() => hole.close());
    const { pool: p, registry } = pool({ connectTimeoutMs: 300 });
    const t0 = Date.now();
    const err = await expectError(
      p.connect(connectRequest(hole.port)),
      'MESH_ERR_HBONE_CONNECT_TIMEOUT',
      new RegExp(
        `timed out connecting to 127.0.0.1:${hole.port}; is a NetworkPolicy blocking port ${hole.port}\\?`,
      ),
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(err.hint).toMatch(/NetworkPolicies/);
    expect(await readMetric(registry, 'meshd_hbone_dial_failures_total', { reason: 'connect_timeout' })).toBe(
      1,
    );
  });

  it('concurrent callers waiting on one failed dial all get its error, from one attempt', async () => {
    const { pool: p, registry } = pool();
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => p.connect(connectRequest(1))));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(await readMetric(registry, 'meshd_hbone_dial_failures_total', { reason: 'connect' })).toBe(1);
  });

  it.each([
    [{ expectedIdentities: [] }, /no expected server identity/],
    [{ dst: { ip: 'backend.shop', port: 15008 } }, /not an IP address/],
    [{ dst: { ip: '127.0.0.1', port: 0 } }, /port 0 is invalid/],
    [{ source: { identity: `spiffe://${TD}/ns/x/sa/y`, cert: certFor(ID_CLIENT) } }, /not the certificate's/],
  ])('rejects a malformed request %#', async (over, message) => {
    const { pool: p } = pool();
    await expectError(p.connect(connectRequest(15008, over)), 'MESH_ERR_INVALID_ARGUMENT', message);
  });
});

async function startHboneOnPort(port: number, policy: () => InboundDecision): Promise<HboneServer> {
  const { HboneServer: Server } = await import('./server.js');
  const server = new Server({ certificate: certFor(ID_SERVER), http2: testHttp2(), policy });
  await server.listen({ host: '127.0.0.1', port });
  cleanups.push(() => server.close());
  return server;
}

/** A plain node:http2 peer with the server's certificate; `onStream` answers each CONNECT. */
async function rawPeer(
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
): Promise<number> {
  const cert = certFor(ID_SERVER);
  const peer = http2.createSecureServer({
    cert: cert.chainPem.join(''),
    key: cert.keyPem,
    ca: cert.rootsPem,
    requestCert: true,
    minVersion: 'TLSv1.3',
  });
  peer.on('stream', onStream);
  peer.listen(0, '127.0.0.1');
  await once(peer, 'listening');
  cleanups.push(() => peer.close());
  return (peer.address() as AddressInfo).port;
}

describe('HbonePool against a misbehaving peer', () => {
  it('a reset right after the 200 neither crashes nor leaks a stream slot', async () => {
    const port = await rawPeer((stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200 });
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    const { pool: p } = pool();
    for (let i = 0; i < 5; i++) {
      const s = await p.connect(connectRequest(port)).catch(() => undefined);
      if (s && !s.destroyed) await closeOf(s);
    }
    expect(p.stats().streams).toBe(0);
  });
});

describe('HbonePool dial bounds', () => {
  it('fails instead of redialing forever when every new session is closed at once', async () => {
    const cert = certFor(ID_SERVER);
    const peer = http2.createSecureServer({
      cert: cert.chainPem.join(''),
      key: cert.keyPem,
      ca: cert.rootsPem,
      requestCert: true,
      minVersion: 'TLSv1.3',
    });
    let sessions = 0;
    peer.on('session', (s) => {
      sessions++;
      s.close(); // GOAWAY right after the preface
    });
    peer.listen(0, '127.0.0.1');
    await once(peer, 'listening');
    cleanups.push(() => peer.close());
    const { pool: p } = pool();
    await expect(p.connect(connectRequest((peer.address() as AddressInfo).port))).rejects.toMatchObject({
      code: 'MESH_ERR_HBONE_SESSION',
    });
    expect(sessions).toBeGreaterThanOrEqual(1);
    expect(sessions).toBeLessThanOrEqual(3);
  });

  it('serves a burst of 250 first callers from three sessions (a filled session is progress)', async () => {
    const srv = await echoServer();
    const { pool: p } = pool();
    const streams = await openMany(p, srv.port, 250);
    expect(streams).toHaveLength(250);
    expect(p.stats().sessions).toBe(3);
    expect(await srv.handshakes()).toBe(3);
  });
});

describe('HbonePool HTTP/2 settings (DESIGN)', () => {
  it('sends 4 MiB stream window, 1 MiB frames, 16 KiB headers, push off, and a 16 MiB connection window', async () => {
    // An independent peer: a plain node:http2 server with the server's certificate.
    const seen: Array<{ settings: http2.Settings; window: number; method?: string; authority?: string }> = [];
    const port = await rawPeer((stream, headers) => {
      const session = stream.session!;
      seen.push({
        settings: session.remoteSettings,
        window: session.state.remoteWindowSize ?? 0,
        method: headers[':method'],
        authority: headers[':authority'],
      });
      stream.respond({ ':status': 200 });
    });
    const { pool: p } = pool();
    const s = await p.connect(connectRequest(port, { authority: '10.1.2.3:8080' }));
    cleanups.push(() => s.destroy());
    expect(seen[0]).toMatchObject({
      settings: {
        initialWindowSize: 4 * 1024 * 1024,
        maxFrameSize: 1024 * 1024,
        maxHeaderListSize: 16 * 1024,
        enablePush: false,
      },
      window: 16 * 1024 * 1024,
      method: 'CONNECT',
      authority: '10.1.2.3:8080',
    });
  });
});
