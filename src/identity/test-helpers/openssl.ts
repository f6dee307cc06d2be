/**
 * Test helpers: run the real `openssl` binary (the README lists it as a test requirement and CI
 * installs it), and make temporary directories that are removed after each test.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `openssl args…`; resolves with the exit code and output (never rejects on a non-zero exit). */
export function openssl(args: readonly string[], input?: string): Promise<RunResult> {
  return run('openssl', args, input);
}

export function run(cmd: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      [...args],
      { encoding: 'utf8', maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        // A numeric code is the exit status; anything else (ENOENT, a signal) is a failure to run.
        if (err && typeof err.code !== 'number') {
          reject(new Error(`cannot run ${cmd}: ${err.message}`, { cause: err }));
          return;
        }
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Like openssl() but fails the test with openssl's own message on a non-zero exit. */
export async function opensslOk(args: readonly string[], input?: string): Promise<string> {
  const r = await openssl(args, input);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A fresh temporary directory, removed after the current test. */
export async function tempDir(prefix = 'meshd-test-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Write files into `dir` and return their paths, keyed like the input. */
export async function writeFiles<K extends string>(
  dir: string,
  files: Record<K, string>,
): Promise<Record<K, string>> {
  const out = {} as Record<K, string>;
  for (const [name, text] of Object.entries(files) as Array<[K, string]>) {
    const p = join(dir, name);
    await writeFile(p, text);
    out[name] = p;
  }
  return out;
}

const NEWKEY = {
  p256: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  rsa: ['-newkey', 'rsa:2048'],
} as const;

/** A CSR made by openssl, SANs written as `-addext subjectAltName=` takes them. Returns PEM. */
export async function opensslCsr(
  dir: string,
  opts: { key: keyof typeof NEWKEY; sans?: string; digest?: string; subject?: string },
): Promise<string> {
  const keyOut = join(dir, `key-${Math.random().toString(36).slice(2)}.pem`);
  const args = [
    'req',
    '-new',
    ...NEWKEY[opts.key],
    '-nodes',
    '-keyout',
    keyOut,
    '-subj',
    opts.subject ?? '/',
  ];
  if (opts.sans) args.push('-addext', `subjectAltName=${opts.sans}`);
  args.push(`-${opts.digest ?? 'sha256'}`);
  return opensslOk(args);
}
