/**
 * End to end: the compiled CLI (dist/main.js, built by `npm run build`, which `npm test` runs
 * first) creates a CA and issues certificates that the real openssl accepts, and refuses bad input
 * with a message that says what to fix.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { splitPem } from '../identity/index.js';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
const PACKAGE = fileURLToPath(new URL('../../package.json', import.meta.url));
const ID = 'spiffe://cluster.local/ns/shop/sa/frontend';

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first (npm test does)`);
});

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new Error(`cannot run ${cmd}: ${err.message}`));
      else resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

async function opensslOk(args: string[]): Promise<string> {
  const r = await run('openssl', args);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'meshd-cli-'));
  dirs.push(d);
  return d;
}

const meshd = (...args: string[]) => run(process.execPath, [MAIN, ...args]);
const mode = async (p: string) => (await stat(p)).mode & 0o777;

async function initCa(...extra: string[]): Promise<string> {
  const dir = join(await tempDir(), 'ca');
  const r = await meshd('ca', 'init', '--dir', dir, ...extra);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return dir;
}

describe('meshd', () => {
  it('prints its version from package.json', async () => {
    const { version } = JSON.parse(await readFile(PACKAGE, 'utf8')) as { version: string };
    const r = await meshd('--version');
    expect(r).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('prints help with the global options and the ca commands', async () => {
    const r = await meshd('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: meshd \[options\] \[command\]/);
    expect(r.stdout).toMatch(/--log-level <level>/);
    expect(r.stdout).toMatch(/--log-format <format>/);
    expect(r.stdout).toMatch(/\n {2}ca +manage the mesh certificate authority/);
    const ca = await meshd('ca', '--help');
    expect(ca.stdout).toMatch(/\n {2}init \[options\]/);
    expect(ca.stdout).toMatch(/\n {2}issue \[options\]/);
  });
});

describe('meshd ca init', () => {
  it('creates an ECDSA P-256 root valid 10 years, key mode 0600', async () => {
    const dir = await initCa();
    expect(await mode(join(dir, 'root-key.pem'))).toBe(0o600);
    const root = new X509Certificate(await readFile(join(dir, 'root-cert.pem')));
    expect(root.ca).toBe(true);
    expect(root.subject).toBe('O=cluster.local\nCN=meshd root CA');
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect((Date.parse(root.validTo) - Date.parse(root.validFrom)) / (365 * 86_400_000)).toBe(10);
    const text = await opensslOk(['x509', '-in', join(dir, 'root-cert.pem'), '-noout', '-text']);
    expect(text).toMatch(/CA:TRUE/);
  });

  it('takes --trust-domain and --intermediate', async () => {
    const dir = await initCa('--trust-domain', 'mesh.example', '--intermediate');
    const root = new X509Certificate(await readFile(join(dir, 'root-cert.pem')));
    expect(root.subject).toMatch(/^O=mesh\.example\n/);
    expect(await mode(join(dir, 'ca-key.pem'))).toBe(0o600);
    const inter = new X509Certificate(await readFile(join(dir, 'ca-cert.pem')));
    expect(inter.checkIssued(root) && inter.verify(root.publicKey)).toBe(true);
  });

  it('replaces an existing CA only with --force', async () => {
    const dir = await initCa();
    const before = await readFile(join(dir, 'root-cert.pem'), 'utf8');
    const refused = await meshd('ca', 'init', '--dir', dir);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `meshd: a mesh CA already exists in ${dir}\n` +
        '  fix: pass --force to replace it (every issued certificate then stops verifying), or choose another --dir\n',
    );
    expect(await readFile(join(dir, 'root-cert.pem'), 'utf8')).toBe(before);
    const forced = await meshd('ca', 'init', '--dir', dir, '--force');
    expect(forced.code).toBe(0);
    expect(await readFile(join(dir, 'root-cert.pem'), 'utf8')).not.toBe(before);
  });
});

describe('meshd ca issue', () => {
  it.each([
    { intermediate: false, certs: 2 },
    { intermediate: true, certs: 3 },
  ])('writes a chain openssl verifies (intermediate: $intermediate)', async ({ intermediate, certs }) => {
    const dir = await initCa(...(intermediate ? ['--intermediate'] : []));
    const out = join(await tempDir(), 'certs');
    const r = await meshd('ca', 'issue', '--dir', dir, '--spiffe', ID, '--out', out, '--ttl', '90m');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^issued ${ID} \\(serial [0-9A-F]+, valid .* to .*\\)\\n`));
    expect(r.stdout).toContain(`wrote cert-chain.pem, key.pem, root-cert.pem to ${out}`);

    expect(await mode(join(out, 'key.pem'))).toBe(0o600);
    const chain = splitPem(await readFile(join(out, 'cert-chain.pem'), 'utf8'));
    const rootPem = await readFile(join(out, 'root-cert.pem'), 'utf8');
    expect(chain).toHaveLength(certs);
    expect(chain.at(-1)).toBe(rootPem); // root last
    expect(rootPem).toBe(await readFile(join(dir, 'root-cert.pem'), 'utf8'));
    const leaf = new X509Certificate(chain[0] ?? '');
    expect(leaf.subjectAltName).toBe(`URI:${ID}`);
    expect(Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)).toBe(90 * 60_000);

    const f = { leaf: join(await tempDir(), 'leaf.pem') };
    await writeFile(f.leaf, chain[0] ?? '');
    const verify = await run('openssl', [
      'verify',
      '-CAfile',
      join(out, 'root-cert.pem'),
      '-untrusted',
      join(out, 'cert-chain.pem'),
      '-purpose',
      'sslclient',
      f.leaf,
    ]);
    expect(verify.stdout).toBe(`${f.leaf}: OK\n`);
    // key.pem is the leaf's key.
    const leafKey = await opensslOk(['x509', '-in', f.leaf, '-noout', '-pubkey']);
    expect(await opensslOk(['pkey', '-in', join(out, 'key.pem'), '-pubout'])).toBe(leafKey);
  });

  const bad: Array<{
    name: string;
    args: (ca: string, out: string) => string[];
    code: number;
    stderr: RegExp;
  }> = [
    {
      name: 'a malformed SPIFFE id',
      args: (ca, out) => ['--dir', ca, '--spiffe', 'spiffe://cluster.local/shop/frontend', '--out', out],
      code: 1,
      stderr:
        /^meshd: invalid SPIFFE id "spiffe:\/\/cluster\.local\/shop\/frontend": must have the form spiffe:\/\/<trust-domain>\/ns\/<namespace>\/sa\/<service-account>\n {2}fix: write it as spiffe:\/\/cluster\.local\/ns\/<namespace>\/sa\/<service-account>\n$/,
    },
    {
      name: "a trust domain other than the CA's",
      args: (ca, out) => ['--dir', ca, '--spiffe', 'spiffe://other.local/ns/shop/sa/frontend', '--out', out],
      code: 1,
      stderr:
        /^meshd: trust domain "other\.local" does not match the CA's "cluster\.local"\n {2}fix: request spiffe:\/\/cluster\.local\/ns\/<namespace>\/sa\/<service-account>, or use a CA created with --trust-domain other\.local\n$/,
    },
    {
      name: 'a TTL longer than the CA allows',
      args: (ca, out) => ['--dir', ca, '--spiffe', ID, '--out', out, '--ttl', '100d'],
      code: 1,
      stderr:
        /^meshd: TTL 2400h is longer than this CA allows \(2160h, limited by the maximum workload TTL\)\n {2}fix: ask for --ttl 24h or less\n$/,
    },
    {
      name: 'a malformed TTL',
      args: (ca, out) => ['--dir', ca, '--spiffe', ID, '--out', out, '--ttl', '24 hours'],
      code: 1,
      stderr:
        /^meshd: invalid --ttl "24 hours"\n {2}fix: write a duration like 500ms, 10s, 5m, 24h or 1h30m\n$/,
    },
    {
      name: 'a zero TTL',
      args: (ca, out) => ['--dir', ca, '--spiffe', ID, '--out', out, '--ttl', '0s'],
      code: 1,
      stderr: /^meshd: TTL must be at least 1s, got 0s\n {2}fix: use a TTL like 24h\n$/,
    },
    {
      name: 'a directory without a CA',
      args: (ca, out) => ['--dir', join(ca, 'missing'), '--spiffe', ID, '--out', out],
      code: 1,
      stderr:
        /^meshd: no mesh CA in .*missing: cannot read root-cert\.pem and root-key\.pem\n {2}fix: create one with: meshd ca init --dir .*missing\n$/,
    },
    {
      name: 'a missing --out',
      args: (ca) => ['--dir', ca, '--spiffe', ID],
      code: 2,
      stderr: /^error: required option '--out <dir>' not specified\n\(add --help for usage\)\n$/,
    },
  ];
  let ca = '';
  beforeAll(async () => {
    // One CA for the whole table (each CLI run costs a Node start-up); removed in afterAll.
    ca = await mkdtemp(join(tmpdir(), 'meshd-cli-ca-'));
    const r = await meshd('ca', 'init', '--dir', ca, '--force');
    expect(r.code).toBe(0);
  });
  afterAll(() => rm(ca, { recursive: true, force: true }));

  it.each(bad)('refuses $name, saying what to fix', async ({ args, code, stderr }) => {
    const out = join(await tempDir(), 'certs');
    const r = await meshd('ca', 'issue', ...args(ca, out));
    expect(r.stderr).toMatch(stderr);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(r.stdout).toBe('');
    expect(r.code).toBe(code);
    expect(existsSync(out)).toBe(false);
  });
});

describe('meshd command-line errors', () => {
  it.each([
    [
      ['ca', 'init', '--dir', 'x', '--trust-domain', 'Not Valid'],
      1,
      /^meshd: invalid trust domain "Not Valid"\n {2}fix: /,
    ],
    [
      ['--log-level', 'loud', 'ca', 'init', '--dir', 'x'],
      2,
      /argument 'loud' is invalid\. Allowed choices are fatal, error/,
    ],
    [
      ['--log-format', 'xml', 'ca', 'init', '--dir', 'x'],
      2,
      /argument 'xml' is invalid\. Allowed choices are json, pretty/,
    ],
    [['ca', 'destroy'], 2, /unknown command 'destroy'/],
    [['ca', 'init'], 2, /required option '--dir <dir>' not specified/],
  ])('meshd %j exits %i', async (args, code, stderr) => {
    const cwd = await tempDir();
    const r = await run(process.execPath, [MAIN, ...args.map((a) => (a === 'x' ? join(cwd, 'x') : a))]);
    expect(r.stderr).toMatch(stderr);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(code);
    expect(existsSync(join(cwd, 'x'))).toBe(false);
  });
});
