/**
 * PKCS#10 certificate signing requests in the shape Istio's ztunnel sends: a fresh ECDSA P-256
 * key, an empty subject, and exactly one extension requested, a critical URI SAN carrying the
 * SPIFFE id. Signed with SHA-256.
 */
import {
  createECDH,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { MeshError } from '../errors.js';
import {
  BOOLEAN_TRUE,
  DerError,
  bitString,
  bytesOf,
  childrenOf,
  contentOf,
  expectTlv,
  octetString,
  oid,
  oidToString,
  seq,
  tlv,
  type Tlv,
} from './der.js';
import { pemToDer, toPem } from './pem.js';
import { ECDSA_WITH_SHA256 } from './x509.js';

/*
 * Both directions are written against the DER directly: a CSR has one fixed shape here, and the
 * generic ASN.1 layer cost more than the two ECDSA operations together (csr.test.ts checks the
 * output against @peculiar/asn1-csr and openssl).
 */
const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const OID_PRIME256V1 = '1.2.840.10045.3.1.7';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
/** PKCS#9 extensionRequest attribute. */
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
/** AlgorithmIdentifier ecdsa-with-SHA256, parameters absent (RFC 5758). */
const ECDSA_SHA256_DER = seq(oid(ECDSA_WITH_SHA256));
/** AlgorithmIdentifier id-ecPublicKey with namedCurve prime256v1. */
const P256_KEY_ALG_DER = seq(oid(OID_EC_PUBLIC_KEY), oid(OID_PRIME256V1));
const SAN_OID_DER = oid(OID_SUBJECT_ALT_NAME);
const EXTENSION_REQUEST_OID_DER = oid(OID_EXTENSION_REQUEST);
const VERSION_0 = Buffer.from([0x02, 0x01, 0x00]);
const TAG_URI = 0x86; // GeneralName uniformResourceIdentifier: [6] IMPLICIT IA5String

export interface KeyAndCsr {
  /** PKCS#8 PEM of the new private key. */
  keyPem: string;
  privateKey: KeyObject;
  csrPem: string;
  csrDer: Buffer;
}

/** A P-256 key pair for CA keys. Never export one of these as a JWK: see newP256Key. */
export function generateP256(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

export function buildCsr(spiffeUri: string): KeyAndCsr {
  if (!/^[\x21-\x7e]+$/.test(spiffeUri)) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `cannot put "${spiffeUri}" in a CSR: not a URI`, {
      hint: 'pass a SPIFFE id such as spiffe://cluster.local/ns/<namespace>/sa/<service-account>',
    });
  }
  const { privateKey, point, d } = newP256Key();
  const key = p256KeyDer(point, d);
  const san = seq(SAN_OID_DER, BOOLEAN_TRUE, octetString(seq(tlv(TAG_URI, Buffer.from(spiffeUri, 'ascii')))));
  const attributes = tlv(0xa0, seq(EXTENSION_REQUEST_OID_DER, tlv(0x31, seq(san))));
  const info = seq(VERSION_0, seq(), key.spkiDer, attributes);
  const csrDer = seq(info, ECDSA_SHA256_DER, bitString(cryptoSign('sha256', info, privateKey)));
  return {
    keyPem: toPem(key.pkcs8Der, 'PRIVATE KEY'),
    privateKey,
    csrPem: toPem(csrDer, 'CERTIFICATE REQUEST'),
    csrDer,
  };
}

/**
 * A fresh P-256 key as a KeyObject plus its raw parts (the uncompressed point and the 32-byte
 * scalar). Made with ECDH and imported as a JWK, because:
 * - OpenSSL 3's DER/PEM encoders cost ~150 µs and ~100 µs a call, and the CSR needs both forms;
 * - KeyObject.export({ format: 'jwk' }) on a generateKeyPairSync key deadlocks Node 20 when a GC
 *   runs during the export (the finalised KeyGenJob locks the key's mutex the export holds; a
 *   loop of generate + export hangs within seconds), so raw parts cannot come from there.
 */
export function newP256Key(): { privateKey: KeyObject; point: Buffer; d: Buffer } {
  const ecdh = createECDH('prime256v1');
  const point = ecdh.generateKeys();
  const raw = ecdh.getPrivateKey();
  const d = Buffer.alloc(32);
  raw.copy(d, 32 - raw.length); // the scalar comes without leading zero bytes
  const privateKey = createPrivateKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: point.subarray(1, 33).toString('base64url'),
      y: point.subarray(33).toString('base64url'),
      d: d.toString('base64url'),
    },
    format: 'jwk',
  });
  return { privateKey, point, d };
}

/** SPKI and PKCS#8 DER of a P-256 key from its raw parts: the bytes KeyObject.export writes. */
export function p256KeyDer(point: Uint8Array, d: Uint8Array): { spkiDer: Buffer; pkcs8Der: Buffer } {
  const ecPrivateKey = seq(Buffer.from([0x02, 0x01, 0x01]), octetString(d), tlv(0xa1, bitString(point)));
  return {
    spkiDer: seq(P256_KEY_ALG_DER, bitString(point)),
    pkcs8Der: seq(VERSION_0, P256_KEY_ALG_DER, octetString(ecPrivateKey)),
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

function csrError(message: string, cause?: unknown): MeshError {
  return new MeshError('MESH_ERR_CA_CSR', `invalid CSR: ${message}`, {
    cause,
    hint: 'send a PKCS#10 request signed with ECDSA P-256/SHA-256 carrying one URI SAN (spiffe://...)',
  });
}

interface CsrParts {
  info: Tlv;
  signatureAlgorithm: Tlv;
  signature: Tlv;
  spki: Tlv;
  spkiAlgorithm: Tlv;
  subjectPublicKey: Tlv;
  attributes: Tlv;
}

/** Split a CertificationRequest (RFC 2986) into the parts the CA looks at. Throws DerError. */
function splitCsr(der: Buffer): CsrParts {
  const outer = expectTlv(der, 0, der.length, 0x30, 'CertificationRequest');
  if (outer.end !== der.length) throw new DerError('trailing bytes after the request');
  const top = childrenOf(der, outer);
  const [info, signatureAlgorithm, signature] = top;
  if (top.length !== 3 || !info || !signatureAlgorithm || !signature)
    throw new DerError('a request has exactly three parts');
  const parts = childrenOf(der, info);
  const [version, subject, spki, attributes] = parts;
  if (parts.length !== 4 || !version || !subject || !spki || !attributes)
    throw new DerError('request info has exactly four parts');
  if (!Buffer.from(bytesOf(der, version)).equals(VERSION_0)) throw new DerError('version must be 0 (v1)');
  const tags: Array<[Tlv, number, string]> = [
    [info, 0x30, 'request info'],
    [signatureAlgorithm, 0x30, 'signature algorithm'],
    [signature, 0x03, 'signature'],
    [subject, 0x30, 'subject'],
    [spki, 0x30, 'subject public key info'],
    [attributes, 0xa0, 'attributes'],
  ];
  for (const [t, tag, what] of tags) if (t.tag !== tag) throw new DerError(`${what} has the wrong type`);
  const keyParts = childrenOf(der, spki);
  const [spkiAlgorithm, subjectPublicKey] = keyParts;
  if (keyParts.length !== 2 || !spkiAlgorithm || !subjectPublicKey || subjectPublicKey.tag !== 0x03)
    throw new DerError('malformed subject public key info');
  return { info, signatureAlgorithm, signature, spki, spkiAlgorithm, subjectPublicKey, attributes };
}

/** Content of a BIT STRING with no unused bits. */
function bitStringBytes(der: Buffer, t: Tlv): Uint8Array {
  const c = contentOf(der, t);
  if (c.length < 1 || c[0] !== 0) throw new DerError('bit string with unused bits');
  return c.subarray(1);
}

/** Every URI SAN in the request's extensionRequest attributes. */
function requestedUris(der: Buffer, attributes: Tlv): string[] {
  const uris: string[] = [];
  for (const attr of childrenOf(der, attributes)) {
    const [type, values] = childrenOf(der, attr);
    if (attr.tag !== 0x30 || type?.tag !== 0x06 || values?.tag !== 0x31)
      throw new DerError('malformed attribute');
    if (!Buffer.from(bytesOf(der, type)).equals(EXTENSION_REQUEST_OID_DER)) continue;
    for (const extensions of childrenOf(der, values)) {
      if (extensions.tag !== 0x30) throw new DerError('malformed extension request');
      for (const ext of childrenOf(der, extensions)) {
        const fields = ext.tag === 0x30 ? childrenOf(der, ext) : [];
        const id = fields[0];
        const value = fields.at(-1);
        if (fields.length < 2 || fields.length > 3 || id?.tag !== 0x06 || value?.tag !== 0x04)
          throw new DerError('malformed extension');
        if (!Buffer.from(bytesOf(der, id)).equals(SAN_OID_DER)) continue;
        const names = expectTlv(der, value.contentStart, value.end, 0x30, 'subjectAltName');
        if (names.end !== value.end) throw new DerError('trailing bytes after subjectAltName');
        for (const name of childrenOf(der, names)) {
          if (name.tag === TAG_URI) uris.push(Buffer.from(contentOf(der, name)).toString('latin1'));
        }
      }
    }
  }
  return uris;
}

/** Parse a PEM or DER CSR and check its self-signature. Throws MESH_ERR_CA_CSR. */
export function parseCsr(csr: string | Uint8Array): ParsedCsr {
  const der = typeof csr === 'string' ? pemToDer(csr) : Buffer.from(csr);
  let parts: CsrParts;
  let uris: string[];
  try {
    parts = splitCsr(der);
    uris = requestedUris(der, parts.attributes);
  } catch (err) {
    if (err instanceof DerError) throw csrError(`not a DER/PEM PKCS#10 structure (${err.message})`, err);
    throw err;
  }
  const sigAlg = bytesOf(der, parts.signatureAlgorithm);
  if (!Buffer.from(sigAlg).equals(ECDSA_SHA256_DER)) {
    throw csrError(
      `signature algorithm ${algorithmName(der, parts.signatureAlgorithm)} is not ecdsa-with-SHA256`,
    );
  }
  let point: Uint8Array;
  try {
    point = bitStringBytes(der, parts.subjectPublicKey);
  } catch (err) {
    throw csrError('malformed public key', err);
  }
  if (
    !Buffer.from(bytesOf(der, parts.spkiAlgorithm)).equals(P256_KEY_ALG_DER) ||
    point.length !== 65 ||
    point[0] !== 4
  ) {
    throw csrError('key is not an uncompressed EC P-256 public key');
  }
  // Import the key from its EC point (a JWK), not the DER: OpenSSL 3's DER decoder is ~2x slower
  // and this runs once per issued certificate. Import also checks that the point is on the curve.
  let publicKey: KeyObject;
  try {
    const x = Buffer.from(point.subarray(1, 33)).toString('base64url');
    const y = Buffer.from(point.subarray(33)).toString('base64url');
    publicKey = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' });
  } catch (err) {
    throw csrError('the public key is not a point on P-256', err);
  }
  let verified = false;
  try {
    verified = cryptoVerify(
      'sha256',
      bytesOf(der, parts.info),
      publicKey,
      bitStringBytes(der, parts.signature),
    );
  } catch {
    verified = false;
  }
  if (!verified) throw csrError('signature does not verify');
  return {
    publicKey,
    // The structure was checked byte for byte above, so the request's own SPKI is canonical DER.
    spkiDer: Buffer.from(bytesOf(der, parts.spki)),
    publicKeyBits: point,
    uris,
  };
}

/** The dotted OID of an AlgorithmIdentifier, for error messages. */
function algorithmName(der: Buffer, alg: Tlv): string {
  try {
    const first = childrenOf(der, alg)[0];
    return first?.tag === 0x06 ? oidToString(contentOf(der, first)) : 'unknown';
  } catch {
    return 'unknown';
  }
}
