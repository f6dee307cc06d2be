/**
 * The mesh CA: an ECDSA P-256 root (optionally with an intermediate) that signs workload CSRs
 * into SPIFFE leaf certificates.
 *
 * Invariants:
 * - a leaf carries exactly one URI SAN, a SPIFFE id in this CA's trust domain (critical, because
 *   the subject is empty), EKU serverAuth+clientAuth, SKI/AKI, and the requested TTL;
 * - a leaf never outlives its issuer, and never exceeds `maxTtlMs`;
 * - keys are node:crypto KeyObjects parsed once at load; the root key file is written mode 0600.
 * On disk the CA uses Istio's file names: root-cert.pem, root-key.pem, and for an intermediate
 * ca-cert.pem, ca-key.pem and cert-chain.pem (intermediate then root).
 */
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshError, errorMessage } from '../errors.js';
import { formatDuration } from '../telemetry/duration.js';
import { generateP256, parseCsr } from './csr.js';
import { writeSecretFile } from './files.js';
import { toPem } from './pem.js';
import { DEFAULT_TRUST_DOMAIN, formatSpiffeId, tryParseSpiffeId, type SpiffeId } from './spiffe.js';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, type Name } from '@peculiar/asn1-x509';
import { LeafTemplate, buildCertificate, distinguishedName, keyIdOf, spkiOf } from './x509.js';

const YEAR_MS = 365 * 86_400_000;
/** Root validity: 10 years, long enough that rotation is a planned event, as Istio's self-signed root. */
export const ROOT_VALIDITY_MS = 10 * YEAR_MS;
/** Workload certificates default to 24 h (Istio's DEFAULT_WORKLOAD_CERT_TTL). */
export const DEFAULT_LEAF_TTL_MS = 86_400_000;
/** Istio's MAX_WORKLOAD_CERT_TTL: 90 days. */
export const DEFAULT_MAX_TTL_MS = 90 * 86_400_000;

export const CA_FILES = {
  rootCert: 'root-cert.pem',
  rootKey: 'root-key.pem',
  caCert: 'ca-cert.pem',
  caKey: 'ca-key.pem',
  certChain: 'cert-chain.pem',
} as const;

interface Signer {
  /** The subject Name exactly as encoded in the certificate, reused as the issuer of what it signs. */
  subject: Name;
  certDer: Buffer;
  certPem: string;
  x509: X509Certificate;
  key: KeyObject;
  keyId: Buffer;
  /** Leaf fast path for certificates this signer issues. */
  leaves: LeafTemplate;
}

function signerOf(certPem: string, key: KeyObject): Signer {
  const x509 = new X509Certificate(certPem);
  const spki = spkiOf(x509.publicKey);
  const subject = AsnConvert.parse(x509.raw, Certificate).tbsCertificate.subject;
  const keyId = keyIdOf(spki);
  return {
    subject,
    certDer: Buffer.from(x509.raw),
    certPem,
    x509,
    key,
    keyId,
    leaves: new LeafTemplate(subject, keyId, key),
  };
}

export interface IssueOptions {
  ttlMs?: number;
  /** If set, the CSR's SAN must equal this identity (the CA API's ImpersonatedIdentity). */
  expectIdentity?: string;
  nowMs?: number;
}

export interface IssuedCertificate {
  /** Leaf first, then intermediates, root last: Istio's cert_chain order. */
  chainPem: string[];
  leafPem: string;
  rootPem: string;
  identity: SpiffeId;
  notBeforeMs: number;
  notAfterMs: number;
  serialNumber: string;
}

export class MeshCa {
  readonly trustDomain: string;
  readonly maxTtlMs: number;
  private readonly root: Signer;
  private readonly intermediate: Signer | undefined;
  private rootKeyPem: string | undefined;

  private constructor(trustDomain: string, root: Signer, intermediate: Signer | undefined, maxTtlMs: number) {
    this.trustDomain = trustDomain;
    this.root = root;
    this.intermediate = intermediate;
    this.maxTtlMs = maxTtlMs;
  }

  /** Create a new self-signed root (and optionally an intermediate that signs the leaves). */
  static create(
    opts: {
      trustDomain?: string;
      validityMs?: number;
      intermediate?: boolean;
      maxTtlMs?: number;
      nowMs?: number;
    } = {},
  ): MeshCa {
    const td = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    if (!/^[a-z0-9._-]+$/.test(td)) {
      throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `invalid trust domain "${td}"`, {
        hint: 'use lower-case letters, digits, ".", "-" and "_", e.g. cluster.local',
      });
    }
    const now = opts.nowMs ?? Date.now();
    const validity = opts.validityMs ?? ROOT_VALIDITY_MS;
    const { privateKey, publicKey } = generateP256();
    const spki = spkiOf(publicKey);
    const name = distinguishedName(td, 'meshd root CA');
    const rootDer = buildCertificate(
      {
        subject: name,
        issuer: name,
        subjectKey: spki,
        issuerKeyId: keyIdOf(spki),
        notBeforeMs: now,
        notAfterMs: now + validity,
        isCa: true,
      },
      privateKey,
    );
    const root = signerOf(toPem(rootDer, 'CERTIFICATE'), privateKey);
    let intermediate: Signer | undefined;
    if (opts.intermediate) {
      const ik = generateP256();
      const ispki = spkiOf(ik.publicKey);
      const iDer = buildCertificate(
        {
          subject: distinguishedName(td, 'meshd intermediate CA'),
          issuer: name,
          subjectKey: ispki,
          issuerKeyId: root.keyId,
          notBeforeMs: now,
          notAfterMs: now + validity / 2,
          isCa: true,
          pathLen: 0,
        },
        privateKey,
      );
      intermediate = signerOf(toPem(iDer, 'CERTIFICATE'), ik.privateKey);
    }
    const ca = new MeshCa(td, root, intermediate, opts.maxTtlMs ?? DEFAULT_MAX_TTL_MS);
    ca.rootKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    return ca;
  }

  /** Load a CA written by `save` (or by `meshd ca init`). */
  static async load(dir: string, opts: { maxTtlMs?: number } = {}): Promise<MeshCa> {
    const rootCertPath = join(dir, CA_FILES.rootCert);
    const rootKeyPath = join(dir, CA_FILES.rootKey);
    let rootPem: string;
    let rootKeyPem: string;
    try {
      [rootPem, rootKeyPem] = await Promise.all([
        readFile(rootCertPath, 'utf8'),
        readFile(rootKeyPath, 'utf8'),
      ]);
    } catch (err) {
      throw new MeshError(
        'MESH_ERR_CA_MISSING',
        `no mesh CA in ${dir}: cannot read ${CA_FILES.rootCert} and ${CA_FILES.rootKey}`,
        {
          cause: err,
          hint: `create one with: meshd ca init --dir ${dir}`,
        },
      );
    }
    const root = loadSigner(dir, rootPem, rootKeyPem, CA_FILES.rootCert, CA_FILES.rootKey);
    const td = trustDomainOf(root.x509);
    let intermediate: Signer | undefined;
    const caCert = await readFile(join(dir, CA_FILES.caCert), 'utf8').catch(() => undefined);
    if (caCert !== undefined) {
      const caKey = await readFile(join(dir, CA_FILES.caKey), 'utf8').catch((err: unknown) => {
        throw new MeshError(
          'MESH_ERR_CA_INVALID',
          `${dir} has ${CA_FILES.caCert} but no readable ${CA_FILES.caKey}`,
          {
            cause: err,
            hint: `restore ${CA_FILES.caKey}, or remove ${CA_FILES.caCert} to sign with the root directly`,
          },
        );
      });
      intermediate = loadSigner(dir, caCert, caKey, CA_FILES.caCert, CA_FILES.caKey);
      if (!intermediate.x509.checkIssued(root.x509) || !intermediate.x509.verify(root.x509.publicKey)) {
        throw new MeshError(
          'MESH_ERR_CA_INVALID',
          `${CA_FILES.caCert} in ${dir} was not issued by ${CA_FILES.rootCert}`,
          { hint: `recreate the CA with: meshd ca init --dir ${dir} --force --intermediate` },
        );
      }
    }
    const ca = new MeshCa(td, root, intermediate, opts.maxTtlMs ?? DEFAULT_MAX_TTL_MS);
    ca.rootKeyPem = rootKeyPem;
    return ca;
  }

  static async exists(dir: string): Promise<boolean> {
    try {
      await stat(join(dir, CA_FILES.rootCert));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Write the CA to `dir`. Refuses to overwrite an existing CA unless `force`; a forced write
   * also removes an intermediate left by the previous CA, which would not chain to the new root.
   */
  async save(dir: string, opts: { force?: boolean } = {}): Promise<void> {
    if (!opts.force && (await MeshCa.exists(dir))) {
      throw new MeshError('MESH_ERR_CA_EXISTS', `a mesh CA already exists in ${dir}`, {
        hint: 'pass --force to replace it (every issued certificate then stops verifying), or choose another --dir',
      });
    }
    if (!this.rootKeyPem) throw new MeshError('MESH_ERR_CA_MISSING', 'this CA has no root key to save');
    await mkdir(dir, { recursive: true });
    await writeSecretFile(join(dir, CA_FILES.rootKey), this.rootKeyPem);
    if (this.intermediate) {
      await writeSecretFile(
        join(dir, CA_FILES.caKey),
        this.intermediate.key.export({ type: 'pkcs8', format: 'pem' }).toString(),
      );
      await writeFile(join(dir, CA_FILES.caCert), this.intermediate.certPem);
      await writeFile(join(dir, CA_FILES.certChain), this.intermediate.certPem + this.root.certPem);
    } else {
      await Promise.all(
        [CA_FILES.caCert, CA_FILES.caKey, CA_FILES.certChain].map((f) => rm(join(dir, f), { force: true })),
      );
    }
    // The root certificate goes last: its presence is what marks the directory as holding a CA.
    await writeFile(join(dir, CA_FILES.rootCert), this.root.certPem);
  }

  get rootCertPem(): string {
    return this.root.certPem;
  }

  get rootNotAfterMs(): number {
    return Date.parse(this.root.x509.validTo);
  }

  /** Roots a peer must trust: just the root. */
  get trustBundlePem(): string[] {
    return [this.root.certPem];
  }

  /** Sign a CSR (PEM or DER) into a leaf certificate chain. */
  sign(csr: string | Uint8Array, opts: IssueOptions = {}): IssuedCertificate {
    const parsed = parseCsr(csr);
    if (parsed.uris.length !== 1) {
      throw new MeshError(
        'MESH_ERR_CA_CSR',
        `invalid CSR: want exactly one URI SAN, found ${parsed.uris.length}`,
        {
          hint: 'request exactly one SPIFFE id as a URI SAN',
        },
      );
    }
    const uri = parsed.uris[0] ?? '';
    const id = tryParseSpiffeId(uri);
    if (!id.ok) {
      throw new MeshError('MESH_ERR_SPIFFE_INVALID', `invalid SPIFFE id "${uri}" in CSR: ${id.reason}`, {
        hint: 'write it as spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>',
      });
    }
    if (id.id.trustDomain !== this.trustDomain) {
      throw new MeshError(
        'MESH_ERR_CA_TRUST_DOMAIN',
        `trust domain "${id.id.trustDomain}" does not match the CA's "${this.trustDomain}"`,
        {
          hint: `request spiffe://${this.trustDomain}/ns/<namespace>/sa/<service-account>, or use a CA created with --trust-domain ${id.id.trustDomain}`,
        },
      );
    }
    if (opts.expectIdentity !== undefined && opts.expectIdentity !== uri) {
      throw new MeshError(
        'MESH_ERR_CA_CSR',
        `CSR asks for ${uri} but the caller may only obtain ${opts.expectIdentity}`,
        {
          hint: `put ${opts.expectIdentity} in the CSR's URI SAN, or impersonate the identity the CSR names`,
        },
      );
    }
    const ttl = opts.ttlMs ?? DEFAULT_LEAF_TTL_MS;
    // X.509 validity has whole seconds: anything shorter could yield a certificate that is
    // already expired when it arrives.
    if (!(ttl >= 1000))
      throw new MeshError('MESH_ERR_CA_TTL', `TTL must be at least 1s, got ${formatDuration(ttl)}`, {
        hint: 'use a TTL like 24h',
      });
    const issuer = this.intermediate ?? this.root;
    const now = opts.nowMs ?? Date.now();
    const issuerNotAfter = Date.parse(issuer.x509.validTo);
    const untilIssuerExpiry = Math.floor((issuerNotAfter - now) / 1000) * 1000;
    if (untilIssuerExpiry < 1000) {
      throw new MeshError(
        'MESH_ERR_CA_TTL',
        `the CA certificate that signs leaves expires at ${new Date(issuerNotAfter).toISOString()}; it can issue nothing more`,
        { hint: 'create a new CA with: meshd ca init --force, then reissue every workload certificate' },
      );
    }
    if (ttl > this.maxTtlMs || ttl > untilIssuerExpiry) {
      const allowed = Math.min(this.maxTtlMs, untilIssuerExpiry);
      const why = ttl > this.maxTtlMs ? 'the maximum workload TTL' : "the CA certificate's own expiry";
      throw new MeshError(
        'MESH_ERR_CA_TTL',
        `TTL ${formatDuration(ttl)} is longer than this CA allows (${formatDuration(allowed)}, limited by ${why})`,
        { hint: `ask for --ttl ${formatDuration(Math.min(DEFAULT_LEAF_TTL_MS, allowed))} or less` },
      );
    }
    const notBeforeMs = Math.floor(now / 1000) * 1000;
    const notAfterMs = Math.floor((now + ttl) / 1000) * 1000;
    const leaf = issuer.leaves.issue(
      parsed.spkiDer,
      parsed.publicKeyBits,
      formatSpiffeId(id.id),
      notBeforeMs,
      notAfterMs,
    );
    const leafPem = toPem(leaf.der, 'CERTIFICATE');
    const chainPem = this.intermediate
      ? [leafPem, this.intermediate.certPem, this.root.certPem]
      : [leafPem, this.root.certPem];
    return {
      chainPem,
      leafPem,
      rootPem: this.root.certPem,
      identity: id.id,
      notBeforeMs,
      notAfterMs,
      serialNumber: leaf.serialHex,
    };
  }
}

/** Parse a certificate and its key from files, checking that they belong together. */
function loadSigner(dir: string, certPem: string, keyPem: string, certFile: string, keyFile: string): Signer {
  let x509: X509Certificate;
  let key: KeyObject;
  try {
    x509 = new X509Certificate(certPem);
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new MeshError(
      'MESH_ERR_CA_INVALID',
      `cannot parse ${certFile} or ${keyFile} in ${dir}: ${errorMessage(err)}`,
      {
        cause: err,
        hint: `restore the files, or recreate the CA with: meshd ca init --dir ${dir} --force`,
      },
    );
  }
  const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
  if (!x509.ca || !spki(x509.publicKey).equals(spki(createPublicKey(key)))) {
    throw new MeshError(
      'MESH_ERR_CA_INVALID',
      `${keyFile} in ${dir} is not the key of the CA certificate ${certFile}`,
      { hint: `restore the matching pair, or recreate the CA with: meshd ca init --dir ${dir} --force` },
    );
  }
  return signerOf(certPem, key);
}

function trustDomainOf(x: X509Certificate): string {
  const m = /(?:^|\n)O=([^\n]+)/.exec(x.subject);
  if (!m?.[1]) {
    throw new MeshError(
      'MESH_ERR_CA_MISSING',
      `root certificate subject "${x.subject}" names no trust domain (O=)`,
      {
        hint: 'use a root created by meshd ca init',
      },
    );
  }
  return m[1];
}
