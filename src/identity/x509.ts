/**
 * X.509 construction over @peculiar/asn1-x509 with signing in node:crypto.
 *
 * The ASN.1 layer only encodes structures; every key is a node:crypto KeyObject parsed once, and
 * every signature is ECDSA P-256 with SHA-256 (DER-encoded, as X.509 requires). This keeps
 * issuance in native code: thousands of certificates per second on one core.
 */
import { createHash, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { BOOLEAN_TRUE, bitString, octetString, oid, seq, tlv, unsignedInteger, x509Time } from './der.js';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_clientAuth,
  id_kp_serverAuth,
} from '@peculiar/asn1-x509';

/** ecdsa-with-SHA256 (RFC 5758): parameters absent. */
export const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const OID_ORGANIZATION = '2.5.4.10';
const OID_COMMON_NAME = '2.5.4.3';

export function ecdsaSha256(): AlgorithmIdentifier {
  return new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 });
}

export function spkiOf(publicKey: KeyObject): SubjectPublicKeyInfo {
  return AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bit string. */
export function keyIdOf(spki: SubjectPublicKeyInfo): Buffer {
  return createHash('sha1').update(new Uint8Array(spki.subjectPublicKey)).digest();
}

/** O=<org>, CN=<cn>: a CA's subject. The trust domain goes in O=, as in Istio's self-signed roots. */
export function distinguishedName(org: string, cn: string): Name {
  const rdn = (type: string, v: string) =>
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: v }) }),
    ]);
  return new Name([rdn(OID_ORGANIZATION, org), rdn(OID_COMMON_NAME, cn)]);
}

/** A positive 128-bit serial (high bit cleared so DER needs no sign byte beyond 16 octets). */
export function randomSerial(): ArrayBuffer {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f;
  if (b[0] === 0) b[0] = 0x01;
  return new Uint8Array(b).buffer;
}

function ext(id: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID: id, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** X.509 Time encodes whole seconds; floor so notBefore never lies in the future. */
function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

export interface CertTemplate {
  subject: Name;
  issuer: Name;
  subjectKey: SubjectPublicKeyInfo;
  issuerKeyId: Buffer;
  notBeforeMs: number;
  notAfterMs: number;
  isCa: boolean;
  /** CA path length constraint; undefined = unconstrained. */
  pathLen?: number;
  /** URI SANs (critical when the subject is empty, per RFC 5280 §4.2.1.6). */
  uris?: string[];
}

/** Build and sign a certificate; returns DER. */
export function buildCertificate(t: CertTemplate, signingKey: KeyObject): Buffer {
  const skid = keyIdOf(t.subjectKey);
  const exts: Extension[] = [];
  if (t.isCa) {
    exts.push(
      ext(id_ce_basicConstraints, true, new BasicConstraints({ cA: true, pathLenConstraint: t.pathLen })),
    );
    exts.push(
      ext(
        id_ce_keyUsage,
        true,
        new KeyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign | KeyUsageFlags.digitalSignature),
      ),
    );
  } else {
    exts.push(ext(id_ce_basicConstraints, true, new BasicConstraints({ cA: false })));
    exts.push(
      ext(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment)),
    );
    exts.push(ext(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth, id_kp_clientAuth])));
  }
  exts.push(ext(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(new Uint8Array(skid))));
  exts.push(
    ext(
      id_ce_authorityKeyIdentifier,
      false,
      new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(new Uint8Array(t.issuerKeyId)) }),
    ),
  );
  if (t.uris && t.uris.length > 0) {
    const emptySubject = t.subject.length === 0;
    exts.push(
      ext(
        id_ce_subjectAltName,
        emptySubject,
        new SubjectAlternativeName(t.uris.map((u) => new GeneralName({ uniformResourceIdentifier: u }))),
      ),
    );
  }
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: randomSerial(),
    signature: ecdsaSha256(),
    issuer: t.issuer,
    validity: new Validity({ notBefore: wholeSeconds(t.notBeforeMs), notAfter: wholeSeconds(t.notAfterMs) }),
    subject: t.subject,
    subjectPublicKeyInfo: t.subjectKey,
    extensions: new Extensions(exts),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = cryptoSign('sha256', tbsDer, signingKey);
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: ecdsaSha256(),
    signatureValue: new Uint8Array(signature).buffer,
  });
  return Buffer.from(AsnConvert.serialize(cert));
}

/**
 * Leaf issuance fast path. The constant parts of every leaf an issuer signs (version, algorithm,
 * issuer Name, basicConstraints, keyUsage, EKU, AKI) are encoded once by @peculiar/asn1-x509;
 * only serial, validity, key, SKI and SAN are encoded per certificate. The output is the same
 * DER the asn1-x509 path produces (checked in x509.test.ts), at a fraction of the cost.
 */
export class LeafTemplate {
  private readonly head: Buffer;
  private readonly issuerAndAlg: { alg: Buffer; issuer: Buffer };
  private readonly constExts: Buffer;

  constructor(
    issuerSubject: Name,
    issuerKeyId: Buffer,
    private readonly signingKey: KeyObject,
  ) {
    this.head = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]); // [0] EXPLICIT INTEGER v3
    this.issuerAndAlg = {
      alg: Buffer.from(AsnConvert.serialize(ecdsaSha256())),
      issuer: Buffer.from(AsnConvert.serialize(issuerSubject)),
    };
    const der = (e: Extension) => Buffer.from(AsnConvert.serialize(e));
    this.constExts = Buffer.concat([
      der(ext(id_ce_basicConstraints, true, new BasicConstraints({ cA: false }))),
      der(
        ext(
          id_ce_keyUsage,
          true,
          new KeyUsage(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment),
        ),
      ),
      der(ext(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth, id_kp_clientAuth]))),
    ]);
    this.akiExt = der(
      ext(
        id_ce_authorityKeyIdentifier,
        false,
        new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(new Uint8Array(issuerKeyId)) }),
      ),
    );
  }

  private readonly akiExt: Buffer;

  /**
   * @param spkiDer the subject's SubjectPublicKeyInfo, DER
   * @param publicKeyBits the subjectPublicKey BIT STRING contents (for the SKI)
   */
  issue(
    spkiDer: Uint8Array,
    publicKeyBits: Uint8Array,
    uri: string,
    notBeforeMs: number,
    notAfterMs: number,
  ): { der: Buffer; serialHex: string } {
    const serial = Buffer.from(randomSerial());
    const ski = createHash('sha1').update(publicKeyBits).digest();
    const exts = Buffer.concat([
      this.constExts,
      seq(oid(id_ce_subjectKeyIdentifier), octetString(octetString(ski))),
      this.akiExt,
      seq(oid(id_ce_subjectAltName), BOOLEAN_TRUE, octetString(seq(tlv(0x86, Buffer.from(uri, 'ascii'))))),
    ]);
    const tbs = seq(
      this.head,
      unsignedInteger(serial),
      this.issuerAndAlg.alg,
      this.issuerAndAlg.issuer,
      seq(x509Time(wholeSeconds(notBeforeMs)), x509Time(wholeSeconds(notAfterMs))),
      seq(), // empty subject: identity lives in the critical URI SAN
      spkiDer,
      tlv(0xa3, seq(exts)),
    );
    const signature = cryptoSign('sha256', tbs, this.signingKey);
    return {
      der: seq(tbs, this.issuerAndAlg.alg, bitString(signature)),
      serialHex: serial.toString('hex').toUpperCase(),
    };
  }
}
