import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshCa } from './ca.js';
import { buildCsr } from './csr.js';
import { issueWorkloadCertificate } from './source.js';
import {
  HBONE_CIPHERS,
  buildSecureContext,
  checkServerIdentity,
  clientTlsOptions,
  secureContextOptions,
  serverTlsOptions,
  spiffeIdOfCert,
  uriSansOf,
  verifyClientPeer,
  type PeerCheck,
  type WorkloadCertificate,
} from './tls.js';

const HOUR = 3_600_000;
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const BACKEND = 'spiffe://cluster.local/ns/shop/sa/backend';

describe('URI SANs from Node certificate strings', () => {
  it.each([
    [undefined, []],
    ['', []],
    [`URI:${FRONTEND}`, [FRONTEND]],
    [`DNS:backend.shop.svc, URI:${FRONTEND}, IP Address:10.0.0.1`, [FRONTEND]],
    [`URI:${FRONTEND}, URI:${BACKEND}`, [FRONTEND, BACKEND]],
    ['URI:"spiffe://cluster.local/ns/a,b/sa/c", DNS:x', ['spiffe://cluster.local/ns/a,b/sa/c']],
    ['DNS:spiffe.example', []],
  ])('uriSansOf(%j) = %j', (san, want) => {
    expect(uriSansOf(san)).toEqual(want);
  });

  it.each([
    [`URI:https://example.org, URI:${FRONTEND}`, FRONTEND],
    [`URI:spiffe://cluster.local/foo, URI:${BACKEND}, URI:${FRONTEND}`, BACKEND],
    ['URI:spiffe://cluster.local/foo', undefined],
    [undefined, undefined],
  ])('the peer identity of %j is the first SPIFFE id that parses: %s', (san, want) => {
    expect(spiffeIdOfCert(san)?.uri).toBe(want);
  });

  it.each<[string[], string | undefined, boolean]>([
    [[BACKEND], `URI:${BACKEND}`, true],
    [[FRONTEND, BACKEND], `URI:${BACKEND}`, true],
    [[BACKEND], `URI:${FRONTEND}`, false],
    [[BACKEND], `DNS:${BACKEND}`, false],
    [[BACKEND], `URI:${BACKEND}/x`, false],
    [[BACKEND], undefined, false],
    [[], `URI:${BACKEND}`, false],
  ])('checkServerIdentity(expected %j, %j) accepts: %s', (expected, san, ok) => {
    const err = checkServerIdentity(expected, san);
    expect(err === undefined).toBe(ok);
    if (err) expect(err.message).toMatch(/server identity mismatch/);
  });
});

function workloadCert(
  ca: MeshCa,
  uri: string,
  opts: { nowMs?: number; ttlMs?: number; extraRoots?: string[] } = {},
): WorkloadCertificate {
  const { csrPem, keyPem } = buildCsr(uri);
  const issued = ca.sign(csrPem, { ttlMs: opts.ttlMs ?? HOUR, nowMs: opts.nowMs });
  return {
    identity: issued.identity,
    uri,
    chainPem: issued.chainPem.slice(0, -1),
    keyPem,
    rootsPem: [issued.rootPem, ...(opts.extraRoots ?? [])],
    notBeforeMs: issued.notBeforeMs,
    notAfterMs: issued.notAfterMs,
    serialNumber: issued.serialNumber,
  };
}

interface Handshake {
  server: WorkloadCertificate;
  client?: WorkloadCertificate;
  expected: string[];
  /** Extra client options (for a TLS 1.2 client, other cipher suites, …). */
  clientOverrides?: tls.ConnectionOptions;
  /** Extra server options: `rejectUnauthorized: false` lets a test see why a client is refused. */
  serverOverrides?: tls.TlsOptions;
}

type ServerSide =
  | {
      kind: 'accepted';
      peer: PeerCheck;
      protocol: string | null;
      alpn: string | false | null;
      servername: unknown;
      authorizationError: unknown;
    }
  | { kind: 'handshake-failed'; error: Error & { code?: string } };

interface ClientSide {
  secureConnect: boolean;
  protocol: string | null;
  cipher: string | undefined;
  alpn: string | false | null;
  serverSans: string | undefined;
  error: (Error & { code?: string }) | undefined;
  received: string;
}

const servers: tls.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** One connection between two workloads: the server side as an HBONE listener would run it. */
async function handshake(h: Handshake): Promise<{ server: ServerSide; client: ClientSide; sni: string[] }> {
  const sni: string[] = [];
  const server = tls.createServer({
    ...serverTlsOptions(h.server, 5_000),
    ...h.serverOverrides,
    // Only called when a client sends SNI; HBONE clients must not.
    SNICallback: (name, cb) => {
      sni.push(name);
      cb(null, undefined);
    },
  });
  servers.push(server);
  const serverSide = new Promise<ServerSide>((resolve) => {
    server.on('secureConnection', (socket) => {
      const peer = verifyClientPeer(socket, h.server.identity.trustDomain);
      resolve({
        kind: 'accepted',
        peer,
        protocol: socket.getProtocol(),
        alpn: socket.alpnProtocol,
        servername: (socket as tls.TLSSocket & { servername?: unknown }).servername,
        authorizationError: socket.authorizationError,
      });
      if (peer.ok) socket.end(`hello ${peer.uri}`);
      else socket.destroy();
    });
    server.on('tlsClientError', (error) => resolve({ kind: 'handshake-failed', error }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const context = h.client
    ? buildSecureContext(h.client)
    : tls.createSecureContext({ ca: h.server.rootsPem });
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ...clientTlsOptions(context, h.expected),
    ...h.clientOverrides,
  });
  const client: ClientSide = {
    secureConnect: false,
    protocol: null,
    cipher: undefined,
    alpn: null,
    serverSans: undefined,
    error: undefined,
    received: '',
  };
  socket.on('secureConnect', () => {
    client.secureConnect = true;
    client.protocol = socket.getProtocol();
    client.cipher = socket.getCipher().standardName;
    client.alpn = socket.alpnProtocol;
    client.serverSans = socket.getPeerCertificate().subjectaltname;
  });
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    client.received += d;
  });
  socket.on('error', (err: Error & { code?: string }) => {
    client.error ??= err;
  });
  // Not once(): it rejects on 'error', and a refused handshake is an outcome here, not a failure.
  await new Promise((resolve) => socket.on('close', resolve));
  return { server: await serverSide, client, sni };
}

describe('HBONE mutual TLS between workloads', () => {
  const ca = MeshCa.create();
  const frontend = workloadCert(ca, FRONTEND);
  const backend = workloadCert(ca, BACKEND);

  it('connects two identities of one trust domain over TLS 1.3, h2, an allowed suite and no SNI', async () => {
    const { server, client, sni } = await handshake({
      server: backend,
      client: frontend,
      expected: [BACKEND],
    });
    expect(client.error).toBeUndefined();
    expect(client.received).toBe(`hello ${FRONTEND}`);
    expect(client.protocol).toBe('TLSv1.3');
    expect(HBONE_CIPHERS.split(':')).toContain(client.cipher);
    expect(client.alpn).toBe('h2');
    expect(uriSansOf(client.serverSans)).toEqual([BACKEND]);
    expect(server.kind).toBe('accepted');
    if (server.kind !== 'accepted') return;
    expect(server.peer).toEqual({ ok: true, uri: FRONTEND, id: frontend.identity });
    expect(server.protocol).toBe('TLSv1.3');
    expect(server.alpn).toBe('h2');
    expect(server.servername).toBeFalsy();
    expect(sni).toEqual([]);
  });

  it('accepts any of several expected identities (service SANs plus the workload)', async () => {
    const { client } = await handshake({
      server: backend,
      client: frontend,
      expected: ['spiffe://cluster.local/ns/shop/sa/other', BACKEND],
    });
    expect(client.received).toBe(`hello ${FRONTEND}`);
  });

  it('works through an intermediate CA (the client sends leaf + intermediate, peers trust the root)', async () => {
    const withIntermediate = MeshCa.create({ intermediate: true });
    const c = workloadCert(withIntermediate, FRONTEND);
    const s = workloadCert(withIntermediate, BACKEND);
    expect(c.chainPem).toHaveLength(2);
    const { client } = await handshake({ server: s, client: c, expected: [BACKEND] });
    expect(client.error).toBeUndefined();
    expect(client.received).toBe(`hello ${FRONTEND}`);
  });

  it("rejects a client from another trust domain at the server's trust-domain check", async () => {
    // The server trusts both roots, so the chain verifies: only the trust-domain check can refuse.
    const otherCa = MeshCa.create({ trustDomain: 'other.example' });
    const foreign = workloadCert(otherCa, 'spiffe://other.example/ns/shop/sa/frontend', {
      extraRoots: [ca.rootCertPem],
    });
    const server = workloadCert(ca, BACKEND, { extraRoots: [otherCa.rootCertPem] });
    const r = await handshake({ server, client: foreign, expected: [BACKEND] });
    expect(r.server).toMatchObject({
      kind: 'accepted',
      peer: { ok: false, reason: 'client trust domain "other.example" is not ours ("cluster.local")' },
    });
    expect(r.client.received).toBe('');
  });

  it('rejects a server whose SAN is not an expected identity (client side)', async () => {
    const r = await handshake({
      server: backend,
      client: frontend,
      expected: ['spiffe://cluster.local/ns/shop/sa/db'],
    });
    expect(r.client.error?.code).toBe('ERR_MESH_IDENTITY');
    expect(r.client.error?.message).toMatch(
      /presented \[spiffe:\/\/cluster\.local\/ns\/shop\/sa\/backend\], expected one of \[spiffe:\/\/cluster\.local\/ns\/shop\/sa\/db\]/,
    );
    expect(r.client.received).toBe('');
    expect(r.server.kind).toBe('handshake-failed');
  });

  /**
   * Node's TLS server checks the client chain after the handshake and then just closes the socket,
   * so the refusal itself carries no reason. Run the same client against a server that reports
   * instead of refusing, to show why the real one refused.
   */
  async function refusalReason(client: WorkloadCertificate): Promise<string> {
    const r = await handshake({
      server: backend,
      client,
      expected: [BACKEND],
      serverOverrides: { rejectUnauthorized: false },
    });
    if (r.server.kind !== 'accepted') throw new Error('the probe server refused the handshake');
    expect(r.server.peer).toMatchObject({ ok: false, reason: /client certificate rejected/ });
    return String(r.server.authorizationError);
  }

  const past = Date.now() - 3 * HOUR;
  it.each([
    [
      'an expired client certificate',
      () => workloadCert(ca, FRONTEND, { nowMs: past, ttlMs: HOUR }),
      /CERT_HAS_EXPIRED/,
    ],
    [
      'a client certificate from another CA of the same trust domain',
      () => workloadCert(MeshCa.create(), FRONTEND, { extraRoots: [ca.rootCertPem] }),
      /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN/,
    ],
  ])('rejects %s (server side)', async (_name, make, reason) => {
    const client = make();
    const r = await handshake({ server: backend, client, expected: [BACKEND] });
    expect(r.server.kind).toBe('handshake-failed');
    expect(r.client.received).toBe('');
    expect(await refusalReason(client)).toMatch(reason);
  });

  it('rejects an expired server certificate (client side)', async () => {
    const expired = workloadCert(ca, BACKEND, { nowMs: past, ttlMs: HOUR });
    const r = await handshake({ server: expired, client: frontend, expected: [BACKEND] });
    expect(r.client.error?.code).toBe('CERT_HAS_EXPIRED');
    expect(r.client.received).toBe('');
  });

  it('rejects a server certificate from another CA of the same trust domain (client side)', async () => {
    const impostor = workloadCert(MeshCa.create(), BACKEND, { extraRoots: [ca.rootCertPem] });
    const r = await handshake({ server: impostor, client: frontend, expected: [BACKEND] });
    // OpenSSL completes the server's chain from its trust store, so the unknown root arrives too.
    expect(r.client.error?.code).toMatch(
      /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/,
    );
    expect(r.client.received).toBe('');
  });

  it('rejects a client that presents no certificate', async () => {
    const r = await handshake({ server: backend, expected: [BACKEND] });
    expect(r.server.kind).toBe('handshake-failed');
    expect(r.client.received).toBe('');
  });

  it('rejects a TLS 1.2 client', async () => {
    const r = await handshake({
      server: backend,
      client: frontend,
      expected: [BACKEND],
      // Versions live in the SecureContext, which takes precedence over connect options.
      clientOverrides: {
        secureContext: tls.createSecureContext({
          ...secureContextOptions(frontend),
          minVersion: 'TLSv1.2',
          maxVersion: 'TLSv1.2',
          ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384',
        }),
      },
    });
    expect(r.client.secureConnect).toBe(false);
    expect(r.client.error?.code).toMatch(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/);
    expect(r.server.kind).toBe('handshake-failed');
  });

  it('rejects a client offering only ChaCha20 (not an HBONE suite)', async () => {
    const r = await handshake({
      server: backend,
      client: frontend,
      expected: [BACKEND],
      clientOverrides: {
        secureContext: tls.createSecureContext({
          ...secureContextOptions(frontend),
          ciphers: 'TLS_CHACHA20_POLY1305_SHA256',
        }),
      },
    });
    expect(r.client.secureConnect).toBe(false);
    expect(r.client.error?.code).toMatch(/HANDSHAKE_FAILURE/);
  });

  it('rotates the server certificate with setSecureContext', async () => {
    const server = tls.createServer(serverTlsOptions(backend, 5_000));
    servers.push(server);
    server.on('secureConnection', (s) => s.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const serialSeen = async () => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        ...clientTlsOptions(buildSecureContext(frontend), [BACKEND]),
      });
      await once(socket, 'secureConnect');
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      return serial;
    };
    expect(await serialSeen()).toBe(backend.serialNumber);
    const renewed = issueWorkloadCertificate(ca, BACKEND, HOUR);
    server.setSecureContext(secureContextOptions(renewed));
    expect(await serialSeen()).toBe(renewed.serialNumber);
    expect(renewed.serialNumber).not.toBe(backend.serialNumber);
  });
});
