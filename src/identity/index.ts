/** identity/: SPIFFE ids, the mesh CA, CSRs, the certificate manager and HBONE's TLS settings. */
export {
  DEFAULT_TRUST_DOMAIN,
  formatSpiffeId,
  parseSpiffeId,
  principalOf,
  sameSpiffeId,
  spiffeIdOf,
  tryParseSpiffeId,
  type SpiffeId,
  type SpiffeParseResult,
} from './spiffe.js';
export {
  CA_FILES,
  DEFAULT_LEAF_TTL_MS,
  DEFAULT_MAX_TTL_MS,
  MeshCa,
  ROOT_VALIDITY_MS,
  type IssueOptions,
  type IssuedCertificate,
} from './ca.js';
export { buildCsr, generateP256, parseCsr, type KeyAndCsr, type ParsedCsr } from './csr.js';
export { pemToDer, splitPem, toPem } from './pem.js';
export { LocalCaSource, issueWorkloadCertificate, type CertificateSource } from './source.js';
export {
  CertificateManager,
  DEFAULT_BACKOFF,
  Priority,
  type BackoffPolicy,
  type CertStateName,
  type CertificateManagerOptions,
  type CertificateStatus,
} from './cert-manager.js';
export {
  HBONE_ALPN,
  HBONE_CIPHERS,
  buildSecureContext,
  checkServerIdentity,
  clientTlsOptions,
  describeCertificate,
  secureContextOptions,
  serverTlsOptions,
  spiffeIdOfCert,
  uriSansOf,
  verifyClientPeer,
  type PeerCheck,
  type WorkloadCertificate,
} from './tls.js';
export { WORKLOAD_FILES, writeSecretFile, writeWorkloadFiles } from './files.js';
