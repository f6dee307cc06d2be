/**
 * PKCS#10 certificate signing requests in the shape Istio's ztunnel sends: a fresh ECDSA P-256
 * key, an empty subject, and exactly one extension requested, a critical URI SAN carrying the
 * SPIFFE id. Signed with SHA-256.
 */
import {
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Attribute, Extensions, Name } from '@peculiar/asn1-x509';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { MeshError } from '../errors.js';
import { pemToDer, toPem } from './pem.js';
import { ECDSA_WITH_SHA256, ecdsaSha256, spkiOf, uriSanExtension, urisOf } from './x509.js';

/** PKCS#9 extensionRequest attribute. */
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

export interface KeyAndCsr {
  /** PKCS#8 PEM of the new private key. */
  keyPem: string;
  privateKey: KeyObject;
  csrPem: string;
  csrDer: Buffer;
}

export function generateP256(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

export function buildCsr(spiffeUri: string): KeyAndCsr {
  const { privateKey, publicKey } = generateP256();
  const extensions = new Extensions([uriSanExtension(spiffeUri, true)]);
  const info = new CertificationRequestInfo({
    version: 0,
    subject: new Name(),
    subjectPKInfo: spkiOf(publicKey),
    attributes: new Attributes([
      new Attribute({ type: OID_EXTENSION_REQUEST, values: [AsnConvert.serialize(extensions)] }),
    ]),
  });
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  const signature = cryptoSign('sha256', infoDer, privateKey);
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: ecdsaSha256(),
    signature: new Uint8Array(signature).buffer,
  });
  const csrDer = Buffer.from(AsnConvert.serialize(csr));
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    privateKey,
    csrPem: toPem(csrDer, 'CERTIFICATE REQUEST'),
    csrDer,
  };
}

export interface ParsedCsr {
  publicKey: KeyObject;
  /** SubjectPublicKeyInfo DER, for embedding in the certificate. */
  spkiDer: Buffer;
  /** subjectPublicKey BIT STRING contents (the EC point), for the SKI. */
  publicKeyBits: Uint8Array;
  uris: string[];
}

const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const P256_PARAMS_DER = Buffer.from('06082a8648ce3d030107', 'hex'); // OID prime256v1

function csrError(message: string, cause?: unknown): MeshError {
  return new MeshError('MESH_ERR_CA_CSR', `invalid CSR: ${message}`, {
    cause,
    hint: 'send a PKCS#10 request signed with ECDSA P-256/SHA-256 carrying one URI SAN (spiffe://...)',
  });
}

/** Parse a PEM or DER CSR and check its self-signature. Throws MESH_ERR_CA_CSR. */
export function parseCsr(csr: string | Uint8Array): ParsedCsr {
  const der = typeof csr === 'string' ? pemToDer(csr) : Buffer.from(csr);
  let req: CertificationRequest;
  try {
    req = AsnConvert.parse(der, CertificationRequest);
  } catch (err) {
    throw csrError('not a DER/PEM PKCS#10 structure', err);
  }
  if (req.signatureAlgorithm.algorithm !== ECDSA_WITH_SHA256) {
    throw csrError(`signature algorithm ${req.signatureAlgorithm.algorithm} is not ecdsa-with-SHA256`);
  }
  // Import the key from its EC point (a JWK), not the DER: OpenSSL 3's DER decoder is ~2x slower
  // and this runs once per issued certificate.
  const spki = req.certificationRequestInfo.subjectPKInfo;
  const params = spki.algorithm.parameters ? Buffer.from(spki.algorithm.parameters) : undefined;
  const point = new Uint8Array(spki.subjectPublicKey);
  if (
    spki.algorithm.algorithm !== OID_EC_PUBLIC_KEY ||
    !params?.equals(P256_PARAMS_DER) ||
    point.length !== 65 ||
    point[0] !== 4
  ) {
    throw csrError('key is not an uncompressed EC P-256 public key');
  }
  let publicKey: KeyObject;
  try {
    const x = Buffer.from(point.subarray(1, 33)).toString('base64url');
    const y = Buffer.from(point.subarray(33)).toString('base64url');
    publicKey = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' });
  } catch (err) {
    throw csrError('the public key is not a point on P-256', err);
  }
  const raw = req.certificationRequestInfoRaw;
  if (!raw) throw csrError('missing request info');
  if (!cryptoVerify('sha256', new Uint8Array(raw), publicKey, new Uint8Array(req.signature))) {
    throw csrError('signature does not verify');
  }
  const uris: string[] = [];
  for (const attr of req.certificationRequestInfo.attributes) {
    if (attr.type !== OID_EXTENSION_REQUEST) continue;
    for (const v of attr.values) uris.push(...urisOf(AsnConvert.parse(v, Extensions)));
  }
  return {
    publicKey,
    spkiDer: publicKey.export({ type: 'spki', format: 'der' }),
    publicKeyBits: point,
    uris,
  };
}
