/**
 * Wire tests: the HBONE server driven by a raw node:http2 client over mTLS, as an independent
 * peer (Istio's ztunnel) would drive it; the pool is not involved.
 */
import { EventEmitter, once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshCa, issueWorkloadCertificate } from '../identity/index.js';
import { createRegistry, readMetric } from '../telemetry/metrics.js';
import type { HboneServer } from './server.js';
import {
  ID_CLIENT,
  ID_SERVER,
  certFor,
  closeOf,
  endOf,
  meshCa,
  rawHboneClient,
  rawRequest,
  readAll,
  startEcho,
  startHbone,
  withinMs,
  type AppServer,
  type RawSession,
} from './test-helpers/mesh.js';
import type { InboundDecision, InboundRequest, RejectedStream, TunnelHandle, TunnelRecord } from './types.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Fixture {
  server: HboneServer;
  port: number;
  app: AppServer;
  requests: InboundRequest[];
  records: TunnelRecord[];
  rejected: RejectedStream[];
  tunnels: TunnelHandle[];
  events: EventEmitter;
}

/** An HBONE server whose policy allows everything to the echo app unless `decide` says otherwise. */
async function fixture(
  decide?: (req: InboundRequest, app: AppServer) => InboundDecision,
  extra: Parameters<typeof startHbone>[0] extends infer O ? Partial<O> : never = {},
  host = '127.0.0.1',
): Promise<Fixture> {
  const app = await startEcho();
  cleanups.push(() => app.close());
  const f: Partial<Fixture> = {
    app,
    requests: [],
    records: [],
    rejected: [],
    tunnels: [],
    events: new EventEmitter(),
  };
  const { server, port } = await startHbone(
    {
      policy: (req) => {
        f.requests!.push(req);
        const d = decide?.(req, app) ?? { ok: true, target: { host: '127.0.0.1', port: app.port } };
        if (!d.ok) return d;
        return {
          ...d,
          observer: {
            established: (t) => f.tunnels!.push(t),
            closed: (r) => {
              f.records!.push(r);
              f.events!.emit('record', r);
            },
          },
        };
      },
      onStreamRejected: (r) => f.rejected!.push(r),
      ...extra,
    },
    host,
  );
  cleanups.push(() => server.close());
  return { ...(f as Fixture), server, port };
}

function session(
  port: number,
  ...rest: Parameters<typeof rawHboneClient> extends [number, ...infer R] ? R : never
) {
  const s = rawHboneClient(port, ...rest);
  cleanups.push(() => s.destroy());
  return s;
}

const connect = (authority: string, extra: http2.OutgoingHttpHeaders = {}): http2.OutgoingHttpHeaders => ({
  ':method': 'CONNECT',
  ':authority': authority,
  ...extra,
});

describe('HBONE server status codes', () => {
  const cases: Array<{
    name: string;
    headers: (port: number) => http2.OutgoingHttpHeaders;
    decide?: (req: InboundRequest, app: AppServer) => InboundDecision;
    status: number;
    reason?: RegExp;
  }> = [
    {
      name: 'GET instead of CONNECT → 400',
      headers: (p) => ({
        ':method': 'GET',
        ':path': '/',
        ':scheme': 'https',
        ':authority': `127.0.0.1:${p}`,
      }),
      status: 400,
      reason: /method GET is not CONNECT/,
    },
    {
      name: 'authority IP not the listener IP → 400',
      headers: () => connect('127.0.0.2:8080'),
      status: 400,
      reason: /ip mismatch: 127.0.0.1 != 127.0.0.2/,
    },
    {
      name: 'authority without port → 400',
      headers: () => connect('127.0.0.1'),
      status: 400,
      reason: /no port/,
    },
    {
      name: 'unbracketed IPv6 authority → 400',
      headers: () => connect('fd00::1:80'),
      status: 400,
      reason: /brackets/,
    },
    {
      name: 'policy: port does not resolve → 503',
      headers: () => connect('127.0.0.1:9999'),
      decide: () => ({ ok: false, status: 503, reason: 'no such port' }),
      status: 503,
    },
    {
      name: 'policy: authorization deny → 401',
      headers: () => connect('127.0.0.1:8080'),
      decide: () => ({ ok: false, status: 401, reason: 'denied' }),
      status: 401,
    },
    {
      name: 'dial failure → 503',
      headers: () => connect('127.0.0.1:8080'),
      // Port 1 on loopback: nothing listens there, the connect is refused at once.
      decide: () => ({ ok: true, target: { host: '127.0.0.1', port: 1 } }),
      status: 503,
    },
    {
      name: 'allowed and dialed → 200',
      headers: () => connect('127.0.0.1:8080'),
      status: 200,
    },
  ];

  it.each(cases)('$name', async ({ headers, decide, status, reason }) => {
    const f = await fixture(decide);
    const s = session(f.port);
    const res = await rawRequest(s, headers(f.port));
    expect(res.status).toBe(status);
    if (status === 400) {
      expect(f.requests).toHaveLength(0); // the policy never ran
      expect(f.rejected).toHaveLength(1);
      expect(f.rejected[0]?.reason).toMatch(reason!);
    }
    if (status !== 200) {
      // The error response ends the stream.
      await withinMs(2_000, 'stream end after an error status', readAll(res.stream));
    } else {
      res.stream.end('ping');
      expect((await readAll(res.stream)).toString()).toBe('ping');
    }
  });

  it('records a failed dial as a 503 with the reason', async () => {
    const f = await fixture(() => ({ ok: true, target: { host: '127.0.0.1', port: 1 } }));
    const res = await rawRequest(session(f.port), connect('127.0.0.1:8080'));
    expect(res.status).toBe(503);
    expect(f.records).toHaveLength(1);
    expect(f.records[0]).toMatchObject({ status: 503, bytesUp: 0, bytesDown: 0 });
    expect(f.records[0]?.error).toMatch(/ECONNREFUSED/);
  });

  it('passes the parsed request to the policy, traceparent as connection id', async () => {
    const f = await fixture();
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
    const s = session(f.port);
    const res = await rawRequest(
      s,
      connect('127.0.0.1:8080', {
        forwarded: 'for="127.0.0.9:5555";host=backend.shop.svc.cluster.local',
        traceparent: tp,
        baggage: 'k8s.namespace.name=shop',
      }),
    );
    expect(res.status).toBe(200);
    res.stream.end('abc');
    await readAll(res.stream);
    const req = f.requests[0]!;
    expect(req.connectionId).toBe(tp);
    expect(req.authority).toEqual({ kind: 'ip', ip: '127.0.0.1', port: 8080, family: 4 });
    expect(req.peer.uri).toBe(ID_CLIENT);
    expect(req.peer.id).toEqual({
      trustDomain: 'cluster.local',
      namespace: 'shop',
      serviceAccount: 'frontend',
    });
    expect(req.localAddress).toEqual({ ip: '127.0.0.1', port: f.port });
    expect(req.peerAddress.ip).toBe('127.0.0.1');
    expect(req.headers).toEqual({
      forwarded: 'for="127.0.0.9:5555";host=backend.shop.svc.cluster.local',
      traceparent: tp,
      baggage: 'k8s.namespace.name=shop',
    });
    expect(await withinMs(2_000, 'tunnel record', firstRecord(f))).toMatchObject({
      connectionId: tp,
      status: 200,
      bytesUp: 3,
      bytesDown: 3,
    });
  });

  it('hands a host:port authority to the policy and generates a connection id', async () => {
    const f = await fixture(() => ({ ok: false, status: 503, reason: 'unknown service' }));
    const res = await rawRequest(session(f.port), connect('backend.shop.svc.cluster.local:80'));
    expect(res.status).toBe(503);
    expect(f.requests[0]?.authority).toEqual({
      kind: 'host',
      host: 'backend.shop.svc.cluster.local',
      port: 80,
    });
    expect(f.requests[0]?.connectionId).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it('accepts a bracketed IPv6 authority on an IPv6 listener', async () => {
    const f = await fixture(undefined, {}, '::1');
    const s = session(f.port, certFor(ID_CLIENT), '[::1]');
    const res = await rawRequest(s, connect(`[::1]:8080`));
    expect(res.status).toBe(200);
    expect(f.requests[0]?.authority).toEqual({ kind: 'ip', ip: '::1', port: 8080, family: 6 });
    res.stream.end();
    await readAll(res.stream);
  });

  it('answers 503 when the policy throws', async () => {
    const f = await fixture(() => {
      throw new Error('boom');
    });
    expect((await rawRequest(session(f.port), connect('127.0.0.1:80'))).status).toBe(503);
  });
});

/** The first tunnel record, awaited on the observer's event. */
async function firstRecord(f: Fixture): Promise<TunnelRecord> {
  if (f.records[0]) return f.records[0];
  const [r] = (await once(f.events, 'record')) as [TunnelRecord];
  return r;
}

describe('HBONE server TLS admission', () => {
  it('closes a client without a certificate; no HTTP/2 session is made', async () => {
    const registry = createRegistry();
    const f = await fixture(undefined, { registry });
    const s = session(f.port, null);
    let gotSettings = false;
    s.on('remoteSettings', () => (gotSettings = true));
    // TLS 1.3: the client finishes first, then the server's alert ends the connection.
    expect(await withinMs(3_000, 'client failure', endOf(s.tlsSocket))).toMatch(
      /certificate required|closed|ECONNRESET/,
    );
    expect(gotSettings).toBe(false);
    expect(f.server.sessionCount).toBe(0);
    expect(await readMetric(registry, 'meshd_hbone_sessions_opened_total', { direction: 'inbound' })).toBe(0);
  });

  it('closes a client whose chain is from another CA (another trust domain)', async () => {
    const other = MeshCa.create({ trustDomain: 'other.example' });
    const foreign = issueWorkloadCertificate(other, 'spiffe://other.example/ns/shop/sa/frontend');
    const f = await fixture();
    const s = session(f.port, foreign);
    expect(await withinMs(3_000, 'client failure', endOf(s.tlsSocket))).toMatch(
      /unknown ca|closed|ECONNRESET/,
    );
    expect(f.requests).toHaveLength(0);
    expect(f.server.sessionCount).toBe(0);
  });

  it('closes a client whose chain verifies but whose trust domain is not ours', async () => {
    const other = MeshCa.create({ trustDomain: 'other.example' });
    const foreign = issueWorkloadCertificate(other, 'spiffe://other.example/ns/shop/sa/frontend');
    const registry = createRegistry();
    // The server trusts both roots: only the trust-domain check can reject this client.
    const own = certFor(ID_SERVER);
    const f = await fixture(undefined, {
      registry,
      certificate: { ...own, rootsPem: [...own.rootsPem, ...foreign.rootsPem] },
    });
    const s = session(f.port, foreign);
    expect(await withinMs(3_000, 'client failure', endOf(s.tlsSocket))).toMatch(/closed|ECONNRESET/);
    expect(f.server.sessionCount).toBe(0);
    expect(
      await readMetric(registry, 'meshd_hbone_handshake_failures_total', { reason: 'peer_identity' }),
    ).toBe(1);
  });

  it('closes plaintext HTTP/2 on the TLS port without hanging', async () => {
    const f = await fixture();
    const s = http2.connect(`http://127.0.0.1:${f.port}`);
    s.on('error', () => {});
    cleanups.push(() => s.destroy());
    await withinMs(2_000, 'plaintext h2 close', closeOf(s));
  });

  it('closes plaintext HTTP/1.1 on the TLS port without hanging', async () => {
    const f = await fixture();
    const sock = net.connect(f.port, '127.0.0.1');
    sock.on('error', () => {});
    cleanups.push(() => sock.destroy());
    await once(sock, 'connect');
    sock.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await withinMs(2_000, 'HTTP/1.1 close', closeOf(sock));
  });

  it('closes a TCP client that sends nothing after the handshake timeout', async () => {
    const f = await fixture(undefined, { tlsHandshakeTimeoutMs: 300 });
    const sock = net.connect(f.port, '127.0.0.1');
    sock.on('error', () => {});
    cleanups.push(() => sock.destroy());
    await once(sock, 'connect');
    const t0 = Date.now();
    await withinMs(3_000, 'silent client close', closeOf(sock));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('closes a TLS client that does not offer h2', async () => {
    const f = await fixture();
    const c = certFor(ID_CLIENT);
    const sock = tls.connect({
      host: '127.0.0.1',
      port: f.port,
      ca: c.rootsPem,
      cert: c.chainPem.join(''),
      key: c.keyPem,
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    });
    sock.on('error', () => {});
    cleanups.push(() => sock.destroy());
    await withinMs(2_000, 'non-h2 close', closeOf(sock));
    expect(f.server.sessionCount).toBe(0);
  });

  it('presents a rotated certificate to new connections', async () => {
    const f = await fixture();
    const first = session(f.port);
    await once(first, 'remoteSettings');
    const serialOf = (s: RawSession): string => s.tlsSocket.getPeerCertificate().serialNumber;
    const before = serialOf(first);
    const rotated = issueWorkloadCertificate(meshCa(), ID_SERVER);
    f.server.setCertificate(rotated);
    const second = session(f.port);
    await once(second, 'remoteSettings');
    expect(serialOf(second)).not.toBe(before);
    expect(serialOf(second).toLowerCase()).toBe(rotated.serialNumber.toLowerCase());
  });
});

describe('HBONE server lifecycle', () => {
  it('drain sends GOAWAY, lets the live tunnel finish, then resolves', async () => {
    const f = await fixture();
    const s = session(f.port);
    const res = await rawRequest(s, connect('127.0.0.1:8080'));
    expect(res.status).toBe(200);
    const goaway = once(s, 'goaway');
    let drained = false;
    const drain = f.server.drain().then(() => (drained = true));
    await withinMs(2_000, 'GOAWAY at the client', goaway);
    // The live tunnel still works after GOAWAY.
    res.stream.write('still here');
    const [echoed] = (await once(res.stream, 'data')) as [Buffer];
    expect(echoed.toString()).toBe('still here');
    expect(drained).toBe(false);
    // New connections are refused once draining.
    const late = net.connect(f.port, '127.0.0.1');
    const lateResult = await new Promise<string>((r) => {
      late.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
      late.once('close', () => r('closed'));
    });
    expect(['ECONNREFUSED', 'closed']).toContain(lateResult);
    res.stream.end();
    await readAll(res.stream);
    await withinMs(3_000, 'drain completion', drain);
    expect(drained).toBe(true);
  });

  it('a tunnel handle closes the tunnel from outside and the record says why', async () => {
    const f = await fixture();
    const s = session(f.port);
    const res = await rawRequest(s, connect('127.0.0.1:8080'));
    expect(f.tunnels).toHaveLength(1);
    const closed = once(res.stream, 'close');
    f.tunnels[0]!.close('policy now denies this connection');
    await withinMs(2_000, 'client stream close', closed);
    expect(await withinMs(2_000, 'record', firstRecord(f))).toMatchObject({
      status: 200,
      error: 'policy now denies this connection',
    });
  });

  it('close() ends live tunnels and sessions', async () => {
    const f = await fixture();
    const s = session(f.port);
    const res = await rawRequest(s, connect('127.0.0.1:8080'));
    expect(res.status).toBe(200);
    await withinMs(2_000, 'server close', f.server.close());
    await withinMs(2_000, 'client session close', s.closed ? Promise.resolve() : closeOf(s));
    expect(f.server.sessionCount).toBe(0);
  });
});

describe('HBONE server: a policy that terminates the stream itself (waypoint)', () => {
  /** The handler upper-cases what it reads and writes it back on the CONNECT stream. */
  const terminating = (handed: Duplex[]) => (): InboundDecision => ({
    ok: true,
    responseHeaders: { baggage: 'k8s.cluster.name=Kubernetes' },
    terminate: (stream) => {
      handed.push(stream);
      stream.on('data', (b: Buffer) => stream.write(b.toString().toUpperCase()));
      stream.on('end', () => stream.end());
    },
  });

  it('answers 200 without dialing and hands the stream over, bytes both ways', async () => {
    const handed: Duplex[] = [];
    let dialed = 0;
    const registry = createRegistry();
    const f = await fixture(terminating(handed), {
      registry,
      requireLocalAuthority: false,
      dialer: () => {
        dialed++;
        return Promise.resolve({ ok: false, reason: 'must not dial', timedOut: false });
      },
    });
    const s = session(f.port);
    const res = await rawRequest(s, connect('10.9.9.9:8080'));
    expect(res.status).toBe(200);
    expect(res.headers.baggage).toBe('k8s.cluster.name=Kubernetes');
    expect(handed).toHaveLength(1);
    res.stream.write('hello waypoint');
    const [echoed] = (await withinMs(2_000, 'echo', once(res.stream, 'data'))) as [Buffer];
    expect(echoed.toString()).toBe('HELLO WAYPOINT');
    res.stream.end();
    await withinMs(2_000, 'END_STREAM back', endOf(res.stream));
    expect(dialed).toBe(0);
    expect(f.records).toHaveLength(0);
    expect(
      await readMetric(registry, 'meshd_hbone_stream_responses_total', {
        direction: 'inbound',
        status: '200',
      }),
    ).toBe(1);
  });

  it('drain sends GOAWAY while a handed-over stream keeps working; close() ends it', async () => {
    const handed: Duplex[] = [];
    const f = await fixture(terminating(handed), { requireLocalAuthority: false });
    const s = session(f.port);
    const res = await rawRequest(s, connect('10.9.9.9:8080'));
    const goaway = once(s, 'goaway');
    void f.server.drain();
    await withinMs(2_000, 'GOAWAY at the client', goaway);
    res.stream.write('still');
    const [echoed] = (await withinMs(2_000, 'echo', once(res.stream, 'data'))) as [Buffer];
    expect(echoed.toString()).toBe('STILL');
    const closed = once(res.stream, 'close');
    await withinMs(2_000, 'server close', f.server.close());
    await withinMs(2_000, 'client stream close', closed);
    expect(handed[0]!.destroyed).toBe(true);
  });
});

describe('HBONE server HTTP/2 settings (DESIGN)', () => {
  it('advertises 4 MiB stream window, 1 MiB frames, 200 streams, 64 KiB headers, and a 16 MiB connection window', async () => {
    const f = await fixture(() => ({ ok: false, status: 503, reason: 'settings probe' }));
    const s = session(f.port);
    const [settings] = (await once(s, 'remoteSettings')) as [http2.Settings];
    expect(settings).toMatchObject({
      initialWindowSize: 4 * 1024 * 1024,
      maxFrameSize: 1024 * 1024,
      maxConcurrentStreams: 200,
      maxHeaderListSize: 64 * 1024,
    });
    // The connection WINDOW_UPDATE follows the SETTINGS, before any response.
    expect((await rawRequest(s, connect('127.0.0.1:80'))).status).toBe(503);
    expect(s.state.remoteWindowSize).toBe(16 * 1024 * 1024);
  });
});
