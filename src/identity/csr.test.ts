import { createPublicKey } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { Extensions, SubjectAlternativeName, id_ce_subjectAltName } from '@peculiar/asn1-x509';
import { DerError, oidToString, readTlv } from './der.js';
import { describe, expect, it } from 'vitest';
import { isMeshError } from '../errors.js';
import { buildCsr, newP256Key, p256KeyDer, parseCsr } from './csr.js';
import { pemToDer, toPem } from './pem.js';
import { openssl, opensslCsr, tempDir, writeFiles } from './test-helpers/openssl.js';

const URI = 'spiffe://cluster.local/ns/shop/sa/frontend';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('buildCsr', () => {
  it('has an empty subject, one critical URI SAN, a P-256 key and an ECDSA/SHA-256 signature', () => {
    const { csrDer, csrPem, privateKey, keyPem } = buildCsr(URI);
    expect(pemToDer(csrPem).equals(csrDer)).toBe(true);
    const req = AsnConvert.parse(csrDer, CertificationRequest);
    const info = req.certificationRequestInfo;
    expect(info.version).toBe(0);
    expect(info.subject.length).toBe(0);
    expect(req.signatureAlgorithm.algorithm).toBe('1.2.840.10045.4.3.2');
    expect(info.subjectPKInfo.algorithm.algorithm).toBe('1.2.840.10045.2.1');
    // namedCurve prime256v1
    expect(Buffer.from(info.subjectPKInfo.algorithm.parameters ?? new ArrayBuffer(0)).toString('hex')).toBe(
      '06082a8648ce3d030107',
    );
    expect(info.attributes).toHaveLength(1);
    const attr = info.attributes[0];
    expect(attr?.type).toBe('1.2.840.113549.1.9.14');
    expect(attr?.values).toHaveLength(1);
    const exts = AsnConvert.parse(attr?.values[0] ?? new ArrayBuffer(0), Extensions);
    expect(exts).toHaveLength(1);
    const san = exts[0];
    expect(san?.extnID).toBe(id_ce_subjectAltName);
    expect(san?.critical).toBe(true);
    const names = AsnConvert.parse(san?.extnValue.buffer ?? new ArrayBuffer(0), SubjectAlternativeName);
    expect(names.map((n) => n.uniformResourceIdentifier)).toEqual([URI]);
    // The returned key is the key in the CSR, and its PEM form is PKCS#8.
    expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    expect(Buffer.from(AsnConvert.serialize(info.subjectPKInfo)).equals(spki)).toBe(true);
  });

  it('verifies with openssl req -verify and shows the same shape there', async () => {
    const dir = await tempDir();
    const { csr } = await writeFiles(dir, { csr: buildCsr(URI).csrPem });
    const r = await openssl(['req', '-in', csr, '-verify', '-noout', '-text']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/verify OK/);
    expect(r.stdout).toMatch(/Subject: *\n/);
    expect(r.stdout).toMatch(/NIST CURVE: P-256/);
    expect(r.stdout).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(r.stdout).toMatch(
      /X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/frontend\n/,
    );
  });

  it('makes a fresh key for every request', () => {
    expect(buildCsr(URI).keyPem).not.toBe(buildCsr(URI).keyPem);
  });
});

describe('parseCsr', () => {
  it('accepts its own CSRs as PEM and as DER, returning the key and the URI SANs', () => {
    const { csrPem, csrDer, privateKey } = buildCsr(URI);
    for (const input of [csrPem, csrDer, new Uint8Array(csrDer)]) {
      const parsed = parseCsr(input);
      expect(parsed.uris).toEqual([URI]);
      expect(parsed.spkiDer.equals(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }))).toBe(
        true,
      );
      expect(parsed.publicKeyBits).toHaveLength(65);
    }
  });

  it('accepts a P-256/SHA-256 CSR made by openssl (interoperability)', async () => {
    const dir = await tempDir();
    const pem = await opensslCsr(dir, { key: 'p256', sans: `critical,URI:${URI}` });
    expect(parseCsr(pem).uris).toEqual([URI]);
  });

  /** A CSR with one bit flipped inside the signed URI, or near the end (inside the signature). */
  function tampered(where: 'uri' | 'signature'): Buffer {
    const der = Buffer.from(buildCsr(URI).csrDer);
    const i = where === 'uri' ? der.indexOf(Buffer.from('frontend')) : der.length - 3;
    der[i] = (der[i] ?? 0) ^ 0x01;
    return der;
  }

  const rejected: Array<[string, () => Promise<string | Buffer> | string | Buffer, RegExp]> = [
    ['a changed URI (tampered request info)', () => tampered('uri'), /signature does not verify/],
    ['a changed signature', () => tampered('signature'), /signature does not verify|not a DER/],
    ['garbage', () => 'not a csr', /not a DER\/PEM PKCS#10/],
    [
      'a certificate instead of a CSR',
      () => toPem(Buffer.from('3003020101', 'hex'), 'CERTIFICATE'),
      /not a DER/,
    ],
    [
      'an RSA key (made by openssl)',
      async () => opensslCsr(await tempDir(), { key: 'rsa', sans: `URI:${URI}` }),
      /signature algorithm 1\.2\.840\.113549\.1\.1\.11 is not ecdsa-with-SHA256/,
    ],
    [
      'a P-384 key (made by openssl)',
      async () => opensslCsr(await tempDir(), { key: 'p384', sans: `URI:${URI}` }),
      /not an uncompressed EC P-256 public key/,
    ],
    [
      'a P-256 key signed with SHA-384 (made by openssl)',
      async () => opensslCsr(await tempDir(), { key: 'p256', sans: `URI:${URI}`, digest: 'sha384' }),
      /signature algorithm 1\.2\.840\.10045\.4\.3\.3 is not ecdsa-with-SHA256/,
    ],
  ];
  it.each(rejected)('rejects %s with MESH_ERR_CA_CSR', async (_name, make, message) => {
    const input = await make();
    const err = thrown(() => parseCsr(input));
    expect(isMeshError(err, 'MESH_ERR_CA_CSR')).toBe(true);
    expect((err as Error).message).toMatch(message);
    expect((err as { hint?: string }).hint).toMatch(/P-256\/SHA-256/);
  });

  it('reports every URI SAN, so the CA can refuse more or fewer than one', async () => {
    const dir = await tempDir();
    const two = await opensslCsr(dir, {
      key: 'p256',
      sans: `URI:${URI},URI:spiffe://cluster.local/ns/a/sa/b`,
    });
    expect(parseCsr(two).uris).toEqual([URI, 'spiffe://cluster.local/ns/a/sa/b']);
    const dnsOnly = await opensslCsr(dir, { key: 'p256', sans: 'DNS:frontend.shop.svc' });
    expect(parseCsr(dnsOnly).uris).toEqual([]);
    const none = await opensslCsr(dir, { key: 'p256', subject: '/CN=frontend' });
    expect(parseCsr(none).uris).toEqual([]);
  });
});

/** What the generic ASN.1 layer reads from a CSR: the reference the DER fast path must match. */
function referenceParse(pem: string): { uris: string[]; spki: string } {
  const req = AsnConvert.parse(pemToDer(pem), CertificationRequest);
  const uris: string[] = [];
  for (const attr of req.certificationRequestInfo.attributes) {
    if (attr.type !== '1.2.840.113549.1.9.14') continue;
    for (const v of attr.values) {
      for (const e of AsnConvert.parse(v, Extensions)) {
        if (e.extnID !== id_ce_subjectAltName) continue;
        for (const n of AsnConvert.parse(e.extnValue.buffer, SubjectAlternativeName))
          if (n.uniformResourceIdentifier) uris.push(n.uniformResourceIdentifier);
      }
    }
  }
  return {
    uris,
    spki: Buffer.from(AsnConvert.serialize(req.certificationRequestInfo.subjectPKInfo)).toString('hex'),
  };
}

describe('parseCsr reads what @peculiar/asn1-csr reads', () => {
  const variants: Array<[string, { sans?: string; subject?: string; extra?: string }]> = [
    ['one critical URI', { sans: `critical,URI:${URI}` }],
    ['one non-critical URI', { sans: `URI:${URI}` }],
    [
      'URIs mixed with DNS, IP and email SANs',
      { sans: `DNS:a.example,URI:${URI},IP:10.1.2.3,email:a@b.c,URI:spiffe://x/ns/y/sa/z` },
    ],
    ['a subject and no SAN', { subject: '/O=shop/CN=frontend' }],
    [
      'a SAN next to other requested extensions',
      { sans: `URI:${URI}`, extra: 'keyUsage=critical,digitalSignature' },
    ],
  ];
  it.each(variants)('%s (made by openssl)', async (_name, v) => {
    const dir = await tempDir();
    const args = [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${dir}/k.pem`,
      '-subj',
      v.subject ?? '/',
    ];
    if (v.sans) args.push('-addext', `subjectAltName=${v.sans}`);
    if (v.extra) args.push('-addext', v.extra);
    const r = await openssl(args);
    expect(r.code).toBe(0);
    const parsed = parseCsr(r.stdout);
    const want = referenceParse(r.stdout);
    expect(parsed.uris).toEqual(want.uris);
    expect(parsed.spkiDer.toString('hex')).toBe(want.spki);
  });

  it('for its own CSRs', () => {
    for (const uri of [URI, 'spiffe://td_1/ns/n1/sa/s_1']) {
      const { csrPem } = buildCsr(uri);
      const want = referenceParse(csrPem);
      const parsed = parseCsr(csrPem);
      expect(parsed.uris).toEqual(want.uris);
      expect(parsed.spkiDer.toString('hex')).toBe(want.spki);
    }
  });

  it('answers every corrupted CSR with MESH_ERR_CA_CSR, never another error', () => {
    const der = buildCsr(URI).csrDer;
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const bad = Buffer.from(der);
      const kind = i % 3;
      if (kind === 0) bad[rand(bad.length)] = rand(256);
      else if (kind === 1) {
        const at = rand(bad.length);
        bad[at] = (bad[at] ?? 0) ^ (1 << rand(8));
      }
      const input = kind === 2 ? bad.subarray(0, rand(bad.length)) : bad;
      if (input.equals(der)) continue;
      try {
        parseCsr(input);
        accepted++;
      } catch (err) {
        expect(isMeshError(err, 'MESH_ERR_CA_CSR'), String(err)).toBe(true);
      }
    }
    expect(accepted).toBe(0);
  });

  it('refuses to put a non-ASCII URI in a CSR', () => {
    const err = thrown(() => buildCsr('spiffe://cluster.local/ns/shöp/sa/a'));
    expect(isMeshError(err, 'MESH_ERR_INVALID_ARGUMENT')).toBe(true);
  });
});

describe('DER reader', () => {
  it.each<[string, string, RegExp | { tag: number; contentStart: number; end: number }]>([
    ['short form', '0403aabbcc', { tag: 4, contentStart: 2, end: 5 }],
    ['long form', '04819a' + 'aa'.repeat(0x9a), { tag: 4, contentStart: 3, end: 3 + 0x9a }],
    ['empty', '3000', { tag: 0x30, contentStart: 2, end: 2 }],
    ['truncated header', '30', /truncated element/],
    ['indefinite length', '308000', /indefinite length/],
    ['non-minimal long form', '30810100', /not minimally encoded/],
    ['leading zero length byte', '3082000500', /not minimally encoded/],
    ['overrun', '3005aabb', /overruns its container/],
    ['multi-byte tag', '1f0100', /multi-byte tags/],
    ['huge length', '3084ffffffff', /too long/],
  ])('%s', (_name, hex, want) => {
    const buf = Buffer.from(hex, 'hex');
    if (want instanceof RegExp) {
      const err = thrown(() => readTlv(buf, 0));
      expect(err).toBeInstanceOf(DerError);
      expect((err as Error).message).toMatch(want);
    } else {
      expect(readTlv(buf, 0)).toEqual({ ...want, start: 0 });
    }
  });

  it.each([
    ['2a8648ce3d040302', '1.2.840.10045.4.3.2'],
    ['551d11', '2.5.29.17'],
    ['2a864886f70d01010b', '1.2.840.113549.1.1.11'],
    ['8837', '2.999'],
  ])('oidToString(%s) = %s', (hex, dotted) => {
    expect(oidToString(Buffer.from(hex, 'hex'))).toBe(dotted);
  });
});

describe('P-256 keys for CSRs', () => {
  it('assembles the same SPKI and PKCS#8 bytes as KeyObject.export', () => {
    for (let i = 0; i < 200; i++) {
      const { privateKey, point, d } = newP256Key();
      expect(point).toHaveLength(65);
      expect(d).toHaveLength(32);
      const { spkiDer, pkcs8Der } = p256KeyDer(point, d);
      expect(spkiDer.equals(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }))).toBe(true);
      expect(pkcs8Der.equals(privateKey.export({ type: 'pkcs8', format: 'der' }))).toBe(true);
    }
    const { privateKey, keyPem } = buildCsr(URI);
    expect(keyPem).toBe(privateKey.export({ type: 'pkcs8', format: 'pem' }));
  });

  it('pads a short private scalar to 32 bytes', () => {
    // About 1 key in 256 has a leading zero byte; draw until one does.
    let found: ReturnType<typeof newP256Key> | undefined;
    for (let i = 0; i < 20_000 && !found; i++) {
      const k = newP256Key();
      if (k.d[0] === 0) found = k;
    }
    expect(found).toBeDefined();
    if (!found) return;
    const jwkD = Buffer.from(found.privateKey.export({ format: 'jwk' }).d ?? '', 'base64url');
    expect(jwkD.equals(found.d)).toBe(true);
  });
});
