/**
 * TLS for HBONE, as Istio's ztunnel configures it:
 * - TLS 1.3 only, TLS_AES_256_GCM_SHA384 and TLS_AES_128_GCM_SHA256, ALPN h2;
 * - the server presents the certificate of the workload that owns the listener (never chosen by
 *   SNI), requires a client certificate chaining to the mesh roots, and accepts only peers whose
 *   SPIFFE id is in its own trust domain (which identities may connect is authorization's job);
 * - the client sends no SNI, never resumes a session, checks the chain, and accepts the server only
 *   if one of its URI SANs equals one of the expected identities (DNS names are ignored).
 * One SecureContext is built per identity and certificate, then reused for every connection.
 */
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { tryParseSpiffeId, type SpiffeId } from './spiffe.js';

export const HBONE_CIPHERS = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256';
export const HBONE_ALPN = ['h2'];

/** A workload's certificate as the certificate manager hands it out. */
export interface WorkloadCertificate {
  identity: SpiffeId;
  /** spiffe://… form of `identity`. */
  uri: string;
  /** Leaf first, then intermediates; never the root. */
  chainPem: string[];
  /** PKCS#8 PEM private key. */
  keyPem: string;
  /** Trust roots returned by the CA with the chain. */
  rootsPem: string[];
  notBeforeMs: number;
  notAfterMs: number;
  serialNumber: string;
}

/** SecureContext options for `cert`: TLS 1.3 only, the two AES-GCM suites, our chain and roots. */
export function secureContextOptions(cert: WorkloadCertificate): tls.SecureContextOptions {
  return {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: HBONE_CIPHERS,
    cert: cert.chainPem.join(''),
    key: cert.keyPem,
    ca: cert.rootsPem,
  };
}

export function buildSecureContext(cert: WorkloadCertificate): tls.SecureContext {
  return tls.createSecureContext(secureContextOptions(cert));
}

/** URI SANs of a certificate, from Node's subjectaltname string ("URI:a, DNS:b", values may be JSON-quoted). */
export function uriSansOf(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  // Node quotes values with special characters as JSON strings; split on ", " outside quotes.
  const re = /(\w+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const m of subjectAltName.matchAll(re)) {
    if (m[1] !== 'URI') continue;
    const raw = m[2] ?? '';
    out.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return out;
}

/** The first SPIFFE URI SAN that parses, as ztunnel extracts the peer identity. */
export function spiffeIdOfCert(
  subjectAltName: string | undefined,
): { uri: string; id: SpiffeId } | undefined {
  for (const uri of uriSansOf(subjectAltName)) {
    const r = tryParseSpiffeId(uri);
    if (r.ok) return { uri, id: r.id };
  }
  return undefined;
}

export type PeerCheck = { ok: true; uri: string; id: SpiffeId } | { ok: false; reason: string };

/**
 * Server side, after the handshake: the chain was verified by OpenSSL (rejectUnauthorized);
 * now require a SPIFFE id in our trust domain.
 */
export function verifyClientPeer(socket: tls.TLSSocket, trustDomain: string): PeerCheck {
  if (!socket.authorized)
    return {
      ok: false,
      reason: `client certificate rejected: ${String(socket.authorizationError ?? 'none presented')}`,
    };
  const cert = socket.getPeerCertificate();
  const peer = spiffeIdOfCert(cert.subjectaltname);
  if (!peer) return { ok: false, reason: 'client certificate carries no SPIFFE URI SAN' };
  if (peer.id.trustDomain !== trustDomain) {
    return {
      ok: false,
      reason: `client trust domain "${peer.id.trustDomain}" is not ours ("${trustDomain}")`,
    };
  }
  return { ok: true, ...peer };
}

/** Client side: one URI SAN must equal one of the expected identities. */
export function checkServerIdentity(
  expected: readonly string[],
  subjectAltName: string | undefined,
): Error | undefined {
  const sans = uriSansOf(subjectAltName);
  if (sans.some((s) => expected.includes(s))) return undefined;
  const err = new Error(
    `server identity mismatch: presented [${sans.join(', ') || 'no URI SAN'}], expected one of [${expected.join(', ')}]`,
  ) as Error & { code: string };
  err.code = 'ERR_MESH_IDENTITY';
  return err;
}

/**
 * Options for a TLS server on a workload's listener. Node's tls.Server builds its own context
 * from these (it ignores a `secureContext` option), so rotation is
 * `server.setSecureContext(secureContextOptions(newCert))`.
 */
export function serverTlsOptions(cert: WorkloadCertificate, handshakeTimeoutMs: number): tls.TlsOptions {
  return {
    ...secureContextOptions(cert),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: HBONE_ALPN,
    handshakeTimeout: handshakeTimeoutMs,
  };
}

/** Options for a client connection presenting `secureContext` and expecting one of `expected`. */
export function clientTlsOptions(
  secureContext: tls.SecureContext,
  expected: readonly string[],
): tls.ConnectionOptions {
  return {
    secureContext,
    ALPNProtocols: HBONE_ALPN,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    // An empty servername sends no SNI: the server picks its certificate by listener, not by name.
    servername: '',
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) => checkServerIdentity(expected, cert.subjectaltname),
  };
}

/** Validity and serial of a PEM certificate, for /config_dump. */
export function describeCertificate(pem: string): {
  serialNumber: string;
  validFrom: string;
  expirationTime: string;
} {
  const x = new X509Certificate(pem);
  return {
    serialNumber: x.serialNumber,
    validFrom: new Date(x.validFrom).toISOString(),
    expirationTime: new Date(x.validTo).toISOString(),
  };
}
