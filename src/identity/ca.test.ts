import { X509Certificate } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMeshError, type MeshErrorCode } from '../errors.js';
import { CA_FILES, DEFAULT_MAX_TTL_MS, MeshCa, type IssueOptions } from './ca.js';
import { buildCsr } from './csr.js';
import { writeSecretFile } from './files.js';
import { issueWorkloadCertificate } from './source.js';
import { opensslCsr, tempDir } from './test-helpers/openssl.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const URI = 'spiffe://cluster.local/ns/shop/sa/frontend';

async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

const mode = async (p: string) => (await stat(p)).mode & 0o777;

/** The leaf verifies, through the chain the CA returned, up to `rootPem`. */
function chainVerifies(chainPem: string[], rootPem: string): boolean {
  const certs = [...chainPem.slice(0, -1), rootPem].map((p) => new X509Certificate(p));
  return certs.every((c, i) => {
    const issuer = certs[Math.min(i + 1, certs.length - 1)] as X509Certificate;
    return c.checkIssued(issuer) && c.verify(issuer.publicKey);
  });
}

describe('MeshCa.sign refuses what it must not sign', () => {
  const ca = MeshCa.create();
  const shortCa = MeshCa.create({ validityMs: 2 * HOUR });
  const shortIntermediateCa = MeshCa.create({ validityMs: 4 * HOUR, intermediate: true });
  const expiredCa = MeshCa.create({ validityMs: HOUR, nowMs: Date.now() - 2 * HOUR });
  const csr = (uri: string) => () => Promise.resolve(buildCsr(uri).csrPem);
  const withSans = (sans: string) => async () => opensslCsr(await tempDir(), { key: 'p256', sans });

  const rows: Array<{
    name: string;
    ca?: MeshCa;
    csr: () => Promise<string>;
    opts?: IssueOptions;
    code: MeshErrorCode;
    message: RegExp;
  }> = [
    {
      name: 'no SAN at all',
      csr: async () => opensslCsr(await tempDir(), { key: 'p256', subject: '/CN=frontend' }),
      code: 'MESH_ERR_CA_CSR',
      message: /exactly one URI SAN, found 0/,
    },
    {
      name: 'only a DNS SAN',
      csr: withSans('DNS:frontend.shop'),
      code: 'MESH_ERR_CA_CSR',
      message: /found 0/,
    },
    {
      name: 'two URI SANs',
      csr: withSans(`critical,URI:${URI},URI:spiffe://cluster.local/ns/shop/sa/admin`),
      code: 'MESH_ERR_CA_CSR',
      message: /exactly one URI SAN, found 2/,
    },
    {
      name: 'a URI that is not a SPIFFE id of the Istio shape',
      csr: csr('spiffe://cluster.local/workload/frontend'),
      code: 'MESH_ERR_SPIFFE_INVALID',
      message: /invalid SPIFFE id .* in CSR: must have the form/,
    },
    {
      name: 'a foreign trust domain',
      csr: csr('spiffe://other.example/ns/shop/sa/frontend'),
      code: 'MESH_ERR_CA_TRUST_DOMAIN',
      message: /trust domain "other\.example" does not match the CA's "cluster\.local"/,
    },
    {
      name: 'a TTL beyond the maximum (90 days)',
      csr: csr(URI),
      opts: { ttlMs: DEFAULT_MAX_TTL_MS + DAY },
      code: 'MESH_ERR_CA_TTL',
      message: /TTL 2184h is longer than this CA allows \(2160h, limited by the maximum workload TTL\)/,
    },
    {
      name: "a TTL beyond the root's own expiry",
      ca: shortCa,
      csr: csr(URI),
      opts: { ttlMs: 3 * HOUR },
      code: 'MESH_ERR_CA_TTL',
      message:
        /TTL 3h is longer than this CA allows \((\d+s|2h), limited by the CA certificate's own expiry\)/,
    },
    {
      name: "a TTL beyond the intermediate's own expiry (half the root's)",
      ca: shortIntermediateCa,
      csr: csr(URI),
      opts: { ttlMs: 3 * HOUR },
      code: 'MESH_ERR_CA_TTL',
      message: /limited by the CA certificate's own expiry/,
    },
    {
      name: 'any TTL from an expired CA',
      ca: expiredCa,
      csr: csr(URI),
      opts: { ttlMs: HOUR },
      code: 'MESH_ERR_CA_TTL',
      message: /can issue nothing more/,
    },
    {
      name: 'a zero TTL',
      csr: csr(URI),
      opts: { ttlMs: 0 },
      code: 'MESH_ERR_CA_TTL',
      message: /at least 1s/,
    },
    {
      name: 'a sub-second TTL',
      csr: csr(URI),
      opts: { ttlMs: 500 },
      code: 'MESH_ERR_CA_TTL',
      message: /at least 1s/,
    },
    {
      name: 'an identity other than the ImpersonatedIdentity',
      csr: csr(URI),
      opts: { expectIdentity: 'spiffe://cluster.local/ns/shop/sa/admin' },
      code: 'MESH_ERR_CA_CSR',
      message:
        /CSR asks for spiffe:\/\/cluster\.local\/ns\/shop\/sa\/frontend but the caller may only obtain spiffe:\/\/cluster\.local\/ns\/shop\/sa\/admin/,
    },
    {
      name: 'an RSA CSR',
      csr: async () => opensslCsr(await tempDir(), { key: 'rsa', sans: `URI:${URI}` }),
      code: 'MESH_ERR_CA_CSR',
      message: /not ecdsa-with-SHA256/,
    },
    {
      name: 'a P-384 CSR',
      csr: async () => opensslCsr(await tempDir(), { key: 'p384', sans: `URI:${URI}` }),
      code: 'MESH_ERR_CA_CSR',
      message: /not an uncompressed EC P-256/,
    },
  ];

  it.each(rows)('refuses $name', async (row) => {
    const pem = await row.csr();
    const err = await caught(() => (row.ca ?? ca).sign(pem, row.opts));
    expect(isMeshError(err, row.code), String(err)).toBe(true);
    expect((err as Error).message).toMatch(row.message);
    expect((err as { hint?: string }).hint).toBeTruthy();
  });

  it('signs the ImpersonatedIdentity when it matches, a CSR made by openssl, and a TTL up to the maximum', async () => {
    expect(ca.sign(buildCsr(URI).csrPem, { expectIdentity: URI }).identity.serviceAccount).toBe('frontend');
    const openSslCsr = await opensslCsr(await tempDir(), { key: 'p256', sans: `URI:${URI}` });
    expect(ca.sign(openSslCsr).leafPem).toMatch(/BEGIN CERTIFICATE/);
    const max = ca.sign(buildCsr(URI).csrPem, { ttlMs: DEFAULT_MAX_TTL_MS });
    expect(max.notAfterMs - max.notBeforeMs).toBe(DEFAULT_MAX_TTL_MS);
    const within = shortCa.sign(buildCsr(URI).csrPem, { ttlMs: HOUR });
    expect(within.notAfterMs).toBeLessThanOrEqual(shortCa.rootNotAfterMs);
  });

  it('honours nowMs, so tests can make already-expired certificates', () => {
    const past = Date.now() - 3 * HOUR;
    const old = ca.sign(buildCsr(URI).csrPem, { ttlMs: HOUR, nowMs: past });
    expect(old.notBeforeMs).toBe(Math.floor(past / 1000) * 1000);
    expect(old.notAfterMs).toBeLessThan(Date.now());
  });

  it('rejects an invalid trust domain at creation', async () => {
    const err = await caught(() => MeshCa.create({ trustDomain: 'Cluster Local' }));
    expect(isMeshError(err, 'MESH_ERR_INVALID_ARGUMENT')).toBe(true);
  });
});

describe('MeshCa on disk', () => {
  it.each([false, true])('round-trips through save and load (intermediate: %s)', async (intermediate) => {
    const dir = join(await tempDir(), 'ca');
    const ca = MeshCa.create({ trustDomain: 'mesh.example', intermediate });
    await ca.save(dir);
    const files = (await readdir(dir)).sort();
    expect(files).toEqual(
      intermediate
        ? [CA_FILES.caCert, CA_FILES.caKey, CA_FILES.certChain, CA_FILES.rootCert, CA_FILES.rootKey].sort()
        : [CA_FILES.rootCert, CA_FILES.rootKey].sort(),
    );
    expect(await mode(join(dir, CA_FILES.rootKey))).toBe(0o600);
    if (intermediate) {
      expect(await mode(join(dir, CA_FILES.caKey))).toBe(0o600);
      const chain = await readFile(join(dir, CA_FILES.certChain), 'utf8');
      expect(chain.endsWith(ca.rootCertPem)).toBe(true);
    }

    const loaded = await MeshCa.load(dir);
    expect(loaded.trustDomain).toBe('mesh.example');
    expect(loaded.rootCertPem).toBe(ca.rootCertPem);
    const cert = issueWorkloadCertificate(loaded, 'spiffe://mesh.example/ns/a/sa/b', HOUR);
    const issued = [...cert.chainPem, ...cert.rootsPem];
    expect(issued).toHaveLength(intermediate ? 3 : 2);
    expect(chainVerifies(issued, ca.rootCertPem)).toBe(true);
    // Saving what was loaded writes the same CA again.
    const again = join(await tempDir(), 'ca');
    await loaded.save(again);
    expect(await readFile(join(again, CA_FILES.rootKey), 'utf8')).toBe(
      await readFile(join(dir, CA_FILES.rootKey), 'utf8'),
    );
  });

  it('refuses to overwrite an existing CA unless forced', async () => {
    const dir = await tempDir();
    const first = MeshCa.create();
    await first.save(dir);
    const err = await caught(() => MeshCa.create().save(dir));
    expect(isMeshError(err, 'MESH_ERR_CA_EXISTS')).toBe(true);
    expect((err as { hint?: string }).hint).toMatch(/--force/);
    expect((await MeshCa.load(dir)).rootCertPem).toBe(first.rootCertPem);

    const second = MeshCa.create();
    await second.save(dir, { force: true });
    expect((await MeshCa.load(dir)).rootCertPem).toBe(second.rootCertPem);
    expect(await mode(join(dir, CA_FILES.rootKey))).toBe(0o600);
  });

  it('a forced CA without an intermediate removes the old intermediate, which would not chain to it', async () => {
    const dir = await tempDir();
    await MeshCa.create({ intermediate: true }).save(dir);
    const plain = MeshCa.create();
    await plain.save(dir, { force: true });
    expect((await readdir(dir)).sort()).toEqual([CA_FILES.rootCert, CA_FILES.rootKey].sort());
    const cert = issueWorkloadCertificate(await MeshCa.load(dir), URI, HOUR);
    expect(chainVerifies([...cert.chainPem, ...cert.rootsPem], plain.rootCertPem)).toBe(true);
  });

  it('says how to create a CA when the directory has none', async () => {
    const dir = join(await tempDir(), 'nowhere');
    const err = await caught(() => MeshCa.load(dir));
    expect(isMeshError(err, 'MESH_ERR_CA_MISSING')).toBe(true);
    expect((err as Error).message).toContain(dir);
    expect((err as { hint?: string }).hint).toBe(`create one with: meshd ca init --dir ${dir}`);
    expect(await MeshCa.exists(dir)).toBe(false);
  });

  const broken: Array<[string, (dir: string) => Promise<void>, RegExp]> = [
    [
      'a root key that belongs to another CA',
      async (dir) => {
        const other = await tempDir();
        await MeshCa.create().save(other);
        await writeFile(join(dir, CA_FILES.rootKey), await readFile(join(other, CA_FILES.rootKey)));
      },
      /root-key\.pem in .* is not the key of the CA certificate root-cert\.pem/,
    ],
    [
      'an unparsable root certificate',
      (dir) => writeFile(join(dir, CA_FILES.rootCert), 'garbage'),
      /cannot parse root-cert\.pem or root-key\.pem/,
    ],
    [
      'an intermediate from another CA',
      async (dir) => {
        const other = await tempDir();
        await MeshCa.create({ intermediate: true }).save(other);
        for (const f of [CA_FILES.caCert, CA_FILES.caKey])
          await writeFile(join(dir, f), await readFile(join(other, f)));
      },
      /ca-cert\.pem in .* was not issued by root-cert\.pem/,
    ],
    [
      'an intermediate certificate without its key',
      async (dir) => {
        const other = await tempDir();
        await MeshCa.create({ intermediate: true }).save(other);
        await writeFile(join(dir, CA_FILES.caCert), await readFile(join(other, CA_FILES.caCert)));
      },
      /has ca-cert\.pem but no readable ca-key\.pem/,
    ],
  ];
  it.each(broken)('refuses to load %s', async (_name, breakIt, message) => {
    const dir = await tempDir();
    await MeshCa.create().save(dir);
    await breakIt(dir);
    const err = await caught(() => MeshCa.load(dir));
    expect(isMeshError(err, 'MESH_ERR_CA_INVALID'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(message);
    expect((err as { hint?: string }).hint).toBeTruthy();
  });

  it('writes secret files mode 0600 even over a world-readable file', async () => {
    const p = join(await tempDir(), 'key.pem');
    await writeFile(p, 'old', { mode: 0o644 });
    await writeSecretFile(p, 'new');
    expect(await mode(p)).toBe(0o600);
    expect(await readFile(p, 'utf8')).toBe('new');
    expect((await readdir(join(p, '..'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
