/**
 * Certificate files on disk, under the names Istio uses, so tools and mounts written for Istio
 * carry over: cert-chain.pem (leaf first, root last), key.pem and root-cert.pem.
 *
 * Invariant: a private key is never readable by anyone but its owner, not even for an instant. It
 * is written to a fresh temporary file created with mode 0600 and renamed over the target, so an
 * existing world-readable file is replaced rather than rewritten in place.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { WorkloadCertificate } from './tls.js';

export const WORKLOAD_FILES = {
  certChain: 'cert-chain.pem',
  key: 'key.pem',
  rootCert: 'root-cert.pem',
} as const;

/** Write `data` to `path` with mode 0600, atomically (temporary file + rename). */
export async function writeSecretFile(path: string, data: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    // open() applies the process umask, which can only clear bits; set exactly 0600 regardless.
    await fh.chmod(0o600);
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Write a workload's certificate as Istio lays it out: cert-chain.pem holds the leaf, any
 * intermediates and then the root(s); key.pem (mode 0600); root-cert.pem holds the trust roots.
 * Returns the paths written.
 */
export async function writeWorkloadFiles(
  dir: string,
  cert: WorkloadCertificate,
): Promise<{ certChain: string; key: string; rootCert: string }> {
  await mkdir(dir, { recursive: true });
  const paths = {
    certChain: join(dir, WORKLOAD_FILES.certChain),
    key: join(dir, WORKLOAD_FILES.key),
    rootCert: join(dir, WORKLOAD_FILES.rootCert),
  };
  await writeSecretFile(paths.key, cert.keyPem);
  await writeFile(paths.certChain, [...cert.chainPem, ...cert.rootsPem].join(''));
  await writeFile(paths.rootCert, cert.rootsPem.join(''));
  return paths;
}
