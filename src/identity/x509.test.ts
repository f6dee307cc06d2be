import { X509Certificate, createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, Name, Time } from '@peculiar/asn1-x509';
import { describe, expect, it } from 'vitest';
import { MeshCa } from './ca.js';
import { buildCsr, generateP256 } from './csr.js';
import { oid, unsignedInteger, x509Time } from './der.js';
import { toPem } from './pem.js';
import { opensslOk, openssl, tempDir, writeFiles } from './test-helpers/openssl.js';
import { LeafTemplate, buildCertificate, distinguishedName, keyIdOf, spkiOf } from './x509.js';

const URI = 'spiffe://cluster.local/ns/shop/sa/frontend';
const HOUR = 3_600_000;
const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** OpenSSL's "Nov 22 03:40:16 2026 GMT" → ms. */
const opensslDate = (s: string) => Date.parse(s.trim());

/** The hex key id OpenSSL prints ("AB:CD:…") of an X509v3 extension, by its heading. */
function keyIdIn(text: string, heading: string): string {
  const m = new RegExp(`${heading}: *\\n\\s+(?:keyid:)?([0-9A-F:]+)`).exec(text);
  if (!m?.[1]) throw new Error(`no ${heading} in\n${text}`);
  return m[1].replace(/:/g, '').toLowerCase();
}

describe.each([
  { intermediate: false, chainLength: 2 },
  { intermediate: true, chainLength: 3 },
])('leaf certificates (intermediate: $intermediate)', ({ intermediate, chainLength }) => {
  const ca = MeshCa.create({ intermediate });
  const ttlMs = 6 * HOUR;
  const before = Date.now();
  const { csrPem, privateKey } = buildCsr(URI);
  const issued = ca.sign(csrPem, { ttlMs });
  const [leafPem = '', ...rest] = issued.chainPem;
  const issuerPem = rest[0] ?? '';
  const leaf = new X509Certificate(leafPem);
  const issuer = new X509Certificate(issuerPem);
  const root = new X509Certificate(issued.rootPem);

  it('orders the chain leaf first, root last', () => {
    expect(issued.chainPem).toHaveLength(chainLength);
    expect(issued.chainPem.at(-1)).toBe(ca.rootCertPem);
    expect(issued.rootPem).toBe(ca.rootCertPem);
    expect(issued.leafPem).toBe(leafPem);
  });

  it('verifies with node:crypto: issuer, signature, SAN, validity, not a CA, the requested key', () => {
    expect(leaf.checkIssued(issuer)).toBe(true);
    expect(leaf.verify(issuer.publicKey)).toBe(true);
    expect(leaf.verify(generateP256().publicKey)).toBe(false);
    if (intermediate) {
      expect(issuer.checkIssued(root)).toBe(true);
      expect(issuer.verify(root.publicKey)).toBe(true);
      expect(leaf.checkIssued(root)).toBe(false);
    }
    expect(leaf.subjectAltName).toBe(`URI:${URI}`);
    // Node reports an empty subject as undefined.
    expect(leaf.subject ?? '').toBe('');
    expect(leaf.ca).toBe(false);
    expect(leaf.keyUsage).toEqual([OID_SERVER_AUTH, OID_CLIENT_AUTH]);
    expect(leaf.serialNumber).toBe(issued.serialNumber);
    const from = Date.parse(leaf.validFrom);
    const to = Date.parse(leaf.validTo);
    expect(from).toBe(issued.notBeforeMs);
    expect(to).toBe(issued.notAfterMs);
    expect(to - from).toBe(ttlMs);
    expect(from).toBeGreaterThan(before - 1000);
    expect(from).toBeLessThanOrEqual(Date.now());
    expect(
      leaf.publicKey
        .export({ type: 'spki', format: 'der' })
        .equals(createPublicKey(privateKey).export({ type: 'spki', format: 'der' })),
    ).toBe(true);
    expect(leaf.checkPrivateKey(privateKey)).toBe(true);
    expect(issued.identity).toEqual({
      trustDomain: 'cluster.local',
      namespace: 'shop',
      serviceAccount: 'frontend',
    });
  });

  it('verifies with openssl verify for TLS server and client use', async () => {
    const dir = await tempDir();
    const f = await writeFiles(dir, {
      leaf: leafPem,
      root: issued.rootPem,
      inter: rest.slice(0, -1).join(''),
    });
    const untrusted = intermediate ? ['-untrusted', f.inter] : [];
    for (const purpose of ['sslserver', 'sslclient']) {
      const r = await openssl(['verify', '-CAfile', f.root, ...untrusted, '-purpose', purpose, f.leaf]);
      expect(r.stdout + r.stderr).toMatch(/: OK\n/);
      expect(r.code).toBe(0);
    }
    if (intermediate) {
      // Without the intermediate, the leaf must not verify: the root did not sign it.
      const r = await openssl(['verify', '-CAfile', f.root, f.leaf]);
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/unable to get local issuer certificate/);
    }
    // A different mesh's root must not verify it.
    const other = await writeFiles(dir, { otherRoot: MeshCa.create().rootCertPem });
    const r = await openssl(['verify', '-CAfile', other.otherRoot, ...untrusted, f.leaf]);
    expect(r.code).not.toBe(0);
  });

  it('shows the expected extensions, subject and dates in openssl x509 -text', async () => {
    const dir = await tempDir();
    const f = await writeFiles(dir, { leaf: leafPem, issuer: issuerPem });
    const text = await opensslOk(['x509', '-in', f.leaf, '-noout', '-text']);
    expect(text).toMatch(/Version: 3 \(0x2\)/);
    expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(text).toMatch(/Subject: *\n/);
    expect(text).toMatch(/NIST CURVE: P-256/);
    expect(text).toMatch(
      /X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/frontend\n/,
    );
    expect(text).toMatch(
      /X509v3 Extended Key Usage: *\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/,
    );
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
    // SKI = SHA-1 of the leaf's public key bits; AKI = the issuer's SKI.
    const issuerText = await opensslOk(['x509', '-in', f.issuer, '-noout', '-text']);
    const ski = keyIdIn(text, 'X509v3 Subject Key Identifier');
    expect(ski).toBe(keyIdOf(spkiOf(leaf.publicKey)).toString('hex'));
    expect(keyIdIn(text, 'X509v3 Authority Key Identifier')).toBe(
      keyIdIn(issuerText, 'X509v3 Subject Key Identifier'),
    );
    const dates = await opensslOk(['x509', '-in', f.leaf, '-noout', '-startdate', '-enddate']);
    const start = opensslDate(/notBefore=(.*)/.exec(dates)?.[1] ?? '');
    const end = opensslDate(/notAfter=(.*)/.exec(dates)?.[1] ?? '');
    expect(start).toBe(issued.notBeforeMs);
    expect(end - start).toBe(ttlMs);
  });

  it('has CA certificates with CA:TRUE, keyCertSign and the trust domain in O=', async () => {
    const dir = await tempDir();
    const f = await writeFiles(dir, { root: issued.rootPem, issuer: issuerPem });
    const rootText = await opensslOk(['x509', '-in', f.root, '-noout', '-text']);
    expect(rootText).toMatch(/Issuer: O ?= ?cluster\.local, CN ?= ?meshd root CA/);
    expect(rootText).toMatch(/Subject: O ?= ?cluster\.local, CN ?= ?meshd root CA/);
    expect(rootText).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
    expect(rootText).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature, Certificate Sign, CRL Sign/);
    expect(rootText).toMatch(/NIST CURVE: P-256/);
    expect(root.ca).toBe(true);
    expect(root.checkIssued(root)).toBe(true);
    expect(root.verify(root.publicKey)).toBe(true);
    const years = (Date.parse(root.validTo) - Date.parse(root.validFrom)) / (365 * 86_400_000);
    expect(years).toBe(10);
    if (intermediate) {
      const text = await opensslOk(['x509', '-in', f.issuer, '-noout', '-text']);
      expect(text).toMatch(/Subject: O ?= ?cluster\.local, CN ?= ?meshd intermediate CA/);
      expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/);
      expect(keyIdIn(text, 'X509v3 Authority Key Identifier')).toBe(
        keyIdIn(rootText, 'X509v3 Subject Key Identifier'),
      );
    }
  });

  it('gives every certificate a distinct positive serial of at most 16 octets', () => {
    const serials = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const c = new X509Certificate(ca.sign(csrPem).leafPem);
      serials.add(c.serialNumber);
      expect(c.serialNumber.length).toBeLessThanOrEqual(32);
    }
    expect(serials.size).toBe(50);
  });
});

describe('leaf fast path (LeafTemplate) vs the generic @peculiar/asn1-x509 path', () => {
  const issuerKey = generateP256();
  const issuerSpki = spkiOf(issuerKey.publicKey);
  const issuerName = distinguishedName('example.org', 'test CA');
  const issuerKeyId = keyIdOf(issuerSpki);
  const subject = generateP256();
  const subjectSpki = spkiOf(subject.publicKey);
  const notBeforeMs = Date.UTC(2030, 0, 2, 3, 4, 5);

  it.each([
    ['a 24 h leaf in the UTCTime era', notBeforeMs + 24 * HOUR],
    ['a leaf ending after 2049 (GeneralizedTime)', Date.UTC(2050, 6, 1)],
  ])('encodes %s with the same fields', (_name, notAfterMs) => {
    const generic = AsnConvert.parse(
      buildCertificate(
        {
          subject: new Name(),
          issuer: issuerName,
          subjectKey: subjectSpki,
          issuerKeyId,
          notBeforeMs,
          notAfterMs,
          isCa: false,
          uris: [URI],
        },
        issuerKey.privateKey,
      ),
      Certificate,
    );
    const template = new LeafTemplate(issuerName, issuerKeyId, issuerKey.privateKey);
    const spkiDer = subject.publicKey.export({ type: 'spki', format: 'der' });
    const fastDer = template.issue(
      spkiDer,
      new Uint8Array(subjectSpki.subjectPublicKey),
      URI,
      notBeforeMs,
      notAfterMs,
    ).der;
    // The fast path's bytes are canonical DER: parsing and re-encoding changes nothing.
    const fast = AsnConvert.parse(fastDer, Certificate);
    expect(Buffer.from(AsnConvert.serialize(fast)).equals(fastDer)).toBe(true);

    const ser = (v: unknown) => Buffer.from(AsnConvert.serialize(v)).toString('hex');
    const g = generic.tbsCertificate;
    const f = fast.tbsCertificate;
    expect(f.version).toBe(g.version);
    expect(ser(f.signature)).toBe(ser(g.signature));
    expect(ser(fast.signatureAlgorithm)).toBe(ser(generic.signatureAlgorithm));
    expect(ser(f.issuer)).toBe(ser(g.issuer));
    expect(ser(f.validity)).toBe(ser(g.validity));
    expect(ser(f.subject)).toBe(ser(g.subject));
    expect(ser(f.subjectPublicKeyInfo)).toBe(ser(g.subjectPublicKeyInfo));
    expect(f.extensions?.map((e) => [e.extnID, e.critical, ser(e.extnValue)])).toEqual(
      g.extensions?.map((e) => [e.extnID, e.critical, ser(e.extnValue)]),
    );
    expect(ser(f.extensions)).toBe(ser(g.extensions));
    expect(f.serialNumber.byteLength).toBeLessThanOrEqual(17);
    // Both are signed by the issuer key over their own TBS bytes.
    for (const cert of [fast, generic]) {
      const tbs = Buffer.from(AsnConvert.serialize(cert.tbsCertificate));
      expect(cryptoVerify('sha256', tbs, issuerKey.publicKey, new Uint8Array(cert.signatureValue))).toBe(
        true,
      );
    }
  });
});

describe('DER helpers agree with @peculiar/asn1-schema', () => {
  const hex = (b: Uint8Array | ArrayBuffer) =>
    Buffer.from(b instanceof ArrayBuffer ? new Uint8Array(b) : b).toString('hex');

  it.each([
    ['1999-12-31T23:59:59Z'],
    ['2026-06-01T00:00:00Z'],
    ['2049-12-31T23:59:59Z'],
    ['2050-01-01T00:00:00Z'],
    ['2130-07-04T12:00:00Z'],
  ])('x509Time(%s)', (iso) => {
    const d = new Date(iso);
    expect(hex(x509Time(d))).toBe(hex(AsnConvert.serialize(new Time(d))));
  });

  it.each([
    ['00', '020100'],
    ['7f', '02017f'],
    ['80', '02020080'],
    ['0000ff', '020200ff'],
    ['0102', '02020102'],
  ])('unsignedInteger(%s) = %s', (magnitude, want) => {
    expect(hex(unsignedInteger(Buffer.from(magnitude, 'hex')))).toBe(want);
  });

  it.each([
    ['2.5.29.17', '0603551d11'],
    ['1.2.840.10045.4.3.2', '06082a8648ce3d040302'],
    ['1.3.6.1.5.5.7.3.2', '06082b06010505070302'],
  ])('oid(%s)', (dotted, want) => {
    expect(hex(oid(dotted))).toBe(want);
  });

  it('hashes the SKI from the public key bits (RFC 5280 method 1)', () => {
    const { publicKey } = generateP256();
    const spki = spkiOf(publicKey);
    const point = publicKey.export({ type: 'spki', format: 'der' }).subarray(-65);
    expect(keyIdOf(spki).equals(createHash('sha1').update(point).digest())).toBe(true);
    expect(toPem(Buffer.from('00', 'hex'), 'X')).toBe('-----BEGIN X-----\nAA==\n-----END X-----\n');
  });
});
