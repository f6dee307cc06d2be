/**
 * Where certificates come from. The certificate manager asks a CertificateSource for a fresh
 * certificate for one identity; the local CA is one source, the gRPC CA client will be another.
 */
import type { MeshCa } from './ca.js';
import { buildCsr } from './csr.js';
import { formatSpiffeId, type SpiffeId } from './spiffe.js';
import type { WorkloadCertificate } from './tls.js';

export interface CertificateSource {
  /** A new key and certificate for `id`. Rejects if the source cannot provide one now. */
  fetchCertificate(id: SpiffeId): Promise<WorkloadCertificate>;
}

/** Issue a workload certificate from a CA in this process: new P-256 key, CSR, signed leaf. */
export function issueWorkloadCertificate(
  ca: MeshCa,
  id: SpiffeId | string,
  ttlMs?: number,
): WorkloadCertificate {
  const uri = typeof id === 'string' ? id : formatSpiffeId(id);
  const { csrPem, keyPem } = buildCsr(uri);
  const issued = ca.sign(csrPem, { ttlMs, expectIdentity: uri });
  return {
    identity: issued.identity,
    uri,
    chainPem: issued.chainPem.slice(0, -1),
    keyPem,
    rootsPem: [issued.rootPem],
    notBeforeMs: issued.notBeforeMs,
    notAfterMs: issued.notAfterMs,
    serialNumber: issued.serialNumber,
  };
}

/** The local CA as a CertificateSource (local mode, tests). */
export class LocalCaSource implements CertificateSource {
  constructor(
    private readonly ca: MeshCa,
    private readonly ttlMs: number,
  ) {}

  fetchCertificate(id: SpiffeId): Promise<WorkloadCertificate> {
    try {
      return Promise.resolve(issueWorkloadCertificate(this.ca, id, this.ttlMs));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
