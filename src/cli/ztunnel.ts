/**
 * `meshd ztunnel --config FILE --node NAME [--ca-dir DIR] [--capture]`: the per-node daemon. It
 * serves every enrolled pod of NODE from the YAML file: in local mode on the pods' own loopback
 * IPs; with --capture inside each pod's network namespace, where iptables redirects its traffic.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { buildZtunnel } from '../app.js';
import { globalOptionsOf, loggerFor, type CliContext } from './context.js';
import { addDaemonOptions, buildDaemonConfig, untilStopped, type DaemonFlags } from './daemon.js';

interface ZtunnelFlags extends DaemonFlags {
  config: string;
  node: string;
  caDir: string;
  capture?: boolean;
}

export function registerZtunnelCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('ztunnel')
    .description(
      'run the per-node ztunnel: HBONE mTLS for every enrolled pod of the node, SOCKS5 entry per pod',
    )
    .requiredOption(
      '--config <file>',
      'multi-document YAML of Kubernetes objects (Nodes, Namespaces, Pods, Services, policies); watched for changes',
    )
    .requiredOption('--node <name>', 'serve the pods whose spec.nodeName is this Node')
    .option('--ca-dir <dir>', 'mesh CA directory (created if it holds no CA)', './.meshd/ca')
    .option(
      '--capture',
      'capture mode (Linux, root): listeners inside each pod network namespace (Pod annotation meshd.io/netns), traffic redirected by iptables (scripts/meshd-redirect-inpod.sh)',
    );
  addDaemonOptions(cmd).action(async (flags: ZtunnelFlags, command: Command) => {
    const config = buildDaemonConfig(flags, globalOptionsOf(command), process.env);
    const logger = loggerFor(command);
    let stopped: () => void = () => undefined;
    const done = new Promise<void>((r) => (stopped = r));
    const ztunnel = await buildZtunnel({
      config,
      configPath: resolve(flags.config),
      nodeName: flags.node,
      caDir: resolve(flags.caDir),
      capture: flags.capture === true,
      version: ctx.version,
      logger,
      onExit: () => stopped(),
    });
    await untilStopped(() => ztunnel.shutdown(), done);
  });
}
