/**
 * `meshd ca init` and `meshd ca issue`: create the mesh CA on disk and issue workload
 * certificates from it, in Istio's file layout. All the logic lives in identity/.
 */
import type { Command } from 'commander';
import { relative } from 'node:path';
import {
  CA_FILES,
  DEFAULT_TRUST_DOMAIN,
  MeshCa,
  WORKLOAD_FILES,
  issueWorkloadCertificate,
  parseSpiffeId,
  writeWorkloadFiles,
} from '../identity/index.js';
import { parseDuration } from '../telemetry/duration.js';
import type { CliContext } from './context.js';

interface InitOptions {
  dir: string;
  trustDomain: string;
  force: boolean;
  intermediate: boolean;
}

interface IssueOptions {
  dir: string;
  spiffe: string;
  out: string;
  ttl: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function registerCaCommands(program: Command, ctx: CliContext): void {
  const ca = program.command('ca').description('manage the mesh certificate authority');

  ca.command('init')
    .description(
      `create the mesh CA: an ECDSA P-256 self-signed root valid 10 years, written as ${CA_FILES.rootCert} and ${CA_FILES.rootKey} (mode 0600)`,
    )
    .requiredOption('--dir <dir>', 'directory to hold the CA')
    .option('--trust-domain <domain>', 'trust domain of the mesh', DEFAULT_TRUST_DOMAIN)
    .option('--force', 'replace an existing CA (certificates it issued stop verifying)', false)
    .option(
      '--intermediate',
      `also create an intermediate CA (${CA_FILES.caCert}, ${CA_FILES.caKey}) that signs workload certificates`,
      false,
    )
    .action(async (opts: InitOptions) => {
      const created = MeshCa.create({ trustDomain: opts.trustDomain, intermediate: opts.intermediate });
      await created.save(opts.dir, { force: opts.force });
      const lines = [
        `created a mesh CA for trust domain ${created.trustDomain} in ${opts.dir}`,
        `  ${CA_FILES.rootCert}  root certificate, valid until ${iso(created.rootNotAfterMs)}`,
        `  ${CA_FILES.rootKey}   root private key (mode 0600): keep it secret`,
      ];
      if (opts.intermediate) {
        lines.push(`  ${CA_FILES.caCert}    intermediate certificate that signs workload certificates`);
        lines.push(`  ${CA_FILES.caKey}     intermediate private key (mode 0600)`);
      }
      ctx.io.out(lines.join('\n') + '\n');
    });

  ca.command('issue')
    .description(
      `issue a workload certificate for one SPIFFE id, written as ${WORKLOAD_FILES.certChain} (leaf first, root last), ${WORKLOAD_FILES.key} (mode 0600) and ${WORKLOAD_FILES.rootCert}`,
    )
    .requiredOption('--dir <dir>', 'directory of the CA (made by meshd ca init)')
    .requiredOption('--spiffe <id>', 'identity to issue: spiffe://<trust-domain>/ns/<namespace>/sa/<account>')
    .requiredOption('--out <dir>', 'directory to write the certificate files to')
    .option('--ttl <duration>', 'certificate lifetime, e.g. 24h or 90m', '24h')
    .action(async (opts: IssueOptions) => {
      const ttlMs = parseDuration(opts.ttl, '--ttl');
      const id = parseSpiffeId(opts.spiffe);
      const meshCa = await MeshCa.load(opts.dir);
      const cert = issueWorkloadCertificate(meshCa, id, ttlMs);
      const paths = await writeWorkloadFiles(opts.out, cert);
      const names = [paths.certChain, paths.key, paths.rootCert].map((p) => relative(opts.out, p)).join(', ');
      ctx.io.out(
        `issued ${cert.uri} (serial ${cert.serialNumber}, valid ${iso(cert.notBeforeMs)} to ${iso(cert.notAfterMs)})\n` +
          `  wrote ${names} to ${opts.out}\n`,
      );
    });
}
